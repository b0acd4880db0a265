#pragma once
// The connections of one I/O thread. It closes them all at shutdown and enforces their
// deadlines (keep-alive, connect timeout, flush grace) with one sweep four times a
// second instead of a timer per connection, which would cost an idle connection a
// timer and a pending wait. Everything but size() and shutdown_all() runs on the
// thread's own io_context.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace mqttd {

class connection;

class connection_set {
public:
    static constexpr std::chrono::milliseconds sweep_interval{250};

    explicit connection_set(boost::asio::io_context& ctx);
    connection_set(const connection_set&) = delete;
    connection_set& operator=(const connection_set&) = delete;

    boost::asio::io_context& context() noexcept { return ctx_; }

    void add(std::shared_ptr<connection> c);
    void remove(connection& c);  // may destroy c
    // Connections in the set (any thread).
    std::size_t size() const noexcept { return count_.load(std::memory_order_relaxed); }

    // Starts the sweep; stop() ends it (any thread).
    void start();
    void stop();
    // Asks every connection to close (any thread).
    void shutdown_all();

private:
    void arm();
    void sweep();

    boost::asio::io_context& ctx_;
    boost::asio::steady_timer timer_;
    // Owns its open connections (a connection knows its index): one whose reading is
    // paused while the hooks hold its acks has no pending operation to keep it alive.
    std::vector<std::shared_ptr<connection>> members_;
    std::atomic<std::size_t> count_{0};
    bool stopped_ = false;
};

}  // namespace mqttd
