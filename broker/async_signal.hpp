#pragma once
// Wakes one coroutine waiting on the same executor. The waiter checks its condition
// before waiting; since notifier and waiter share one thread, nothing is lost between.
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/as_tuple.hpp>

namespace mqttd {

class async_signal {
public:
    explicit async_signal(const boost::asio::any_io_executor& ex)
        : timer_(ex, boost::asio::steady_timer::time_point::max()) {}

    boost::asio::awaitable<void> wait() {
        timer_.expires_at(boost::asio::steady_timer::time_point::max());
        co_await timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    void notify() { timer_.cancel(); }

private:
    boost::asio::steady_timer timer_;
};

}  // namespace mqttd
