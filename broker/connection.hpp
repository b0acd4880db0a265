#pragma once
// One client's network connection: the I/O around its MQTT rules (connection_rules).
// It reads bytes into the decoder and hands the packets to the rules, writes what the
// rules produce through one queue that gathers everything pending into a single write,
// and does what the rules' state asks: pause or resume reading, flush, shut down the
// sending side and linger, close. Everything here runs on the connection's own
// io_context thread; other threads reach it only through wake(), taken_over() and
// shutdown(), which post.
//
// Reading and writing are completion handlers rather than coroutines, and deadlines
// are enforced by the thread's connection_set: an idle connection holds no coroutine
// frame, no buffer and no timer, only a pending readiness wait.
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "broker/connection_rules.hpp"
#include "broker/session.hpp"
#include "broker/transport.hpp"
#include "protocol/decoder.hpp"

namespace mqttd {

class broker;
class connection_set;

class connection final : public session_owner,
                         public transport_events,
                         public std::enable_shared_from_this<connection> {
public:
    connection(broker& b, std::unique_ptr<transport> t);
    ~connection() override;

    // Joins `set` (the connections of its I/O thread) and starts reading; on that thread.
    void start(connection_set& set);

    // session_owner (thread-safe)
    void wake() override;
    void taken_over() override;
    // Server shutting down: DISCONNECT 0x8B for 5.0 clients, then close (thread-safe;
    // shutdown_now() on the connection's thread).
    void shutdown();
    void shutdown_now();

    // When on_deadline() is due: keep-alive or connect timeout, a stalled output, or the
    // end of the grace a closing connection has to flush and linger.
    std::chrono::steady_clock::time_point deadline() const noexcept;
    void on_deadline(std::chrono::steady_clock::time_point now);

private:
    using clock = std::chrono::steady_clock;

    // transport_events
    void on_readable(const boost::system::error_code& ec) override;
    void on_written(const boost::system::error_code& ec, std::size_t n) override;

    void read_available();
    // Hands what the decoder holds to the rules, while they are connected; false when it
    // held no whole packet.
    bool take_packets(clock::time_point now);
    void resume_reading();
    // Reads what is there without using it: a closing connection drains what the client
    // still sends, so that closing the socket does not answer it with a reset.
    bool discard_available(boost::system::error_code& ec);
    // Does what the rules' state asks for after every event.
    void follow_rules();
    void schedule_write();  // a write of the pending output soon (after the current handler)
    void start_write();
    void end_connection();  // closes the socket and leaves the set (may destroy this)

    boost::asio::any_io_executor executor() const { return transport_->executor(); }

    broker& broker_;
    std::unique_ptr<transport> transport_;
    mqtt::decoder decoder_;
    // Made in start(): the rules know this connection as the session's owner.
    std::optional<connection_rules> rules_;
    connection_set* set_ = nullptr;
    std::size_t set_index_ = 0;  // kept by set_
    friend class connection_set;

    std::string writing_;  // the bytes of the write in progress
    std::uint32_t read_size_;
    // Reading is active (a wait pending, a turn posted or running) unless paused by the
    // rules or ended.
    bool read_active_ = false;
    bool write_active_ = false;  // a write in progress
    bool write_posted_ = false;
    bool closed_ = false;  // the socket is closed
    std::atomic<bool> wake_posted_{false};
};

}  // namespace mqttd
