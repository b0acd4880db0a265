#pragma once
// Wakes the one coroutine that waits on it, or lets it sleep until a deadline. The waiter
// re-checks its condition after every return; notifier and waiter share one thread, so
// nothing is lost between the check and the wait. One waiter per event: a second
// wait_until() would cancel the first wait.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace bench {

class event {
public:
    using time_point = boost::asio::steady_timer::time_point;

    explicit event(const boost::asio::any_io_executor& ex) : timer_(ex) {}

    boost::asio::awaitable<void> wait_until(time_point deadline) {
        timer_.expires_at(deadline);
        co_await timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    void notify() { timer_.cancel(); }

private:
    boost::asio::steady_timer timer_;
};

}  // namespace bench
