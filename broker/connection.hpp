#pragma once
// One client's network connection: reads bytes into the decoder, applies MQTT's rules
// to each packet, and writes through one queue that gathers everything pending into a
// single write. Everything here runs on the connection's own io_context thread; other
// threads reach it only through wake(), taken_over() and shutdown(), which post.
//
// Reading and writing are completion handlers rather than coroutines, and deadlines
// are enforced by the thread's connection_set: an idle connection holds no coroutine
// frame, no buffer and no timer, only a pending readiness wait.
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/ack_gate.hpp"
#include "broker/fifo.hpp"
#include "broker/hooks.hpp"
#include "broker/outbound_aliases.hpp"
#include "broker/session.hpp"
#include "broker/transport.hpp"
#include "protocol/decoder.hpp"
#include "protocol/packet.hpp"

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

    // When on_deadline() is due: keep-alive or connect timeout, or the end of the grace
    // a closing connection has to flush.
    std::chrono::steady_clock::time_point deadline() const noexcept;
    void on_deadline(std::chrono::steady_clock::time_point now);

    const client_info& client() const noexcept { return client_; }

private:
    using clock = std::chrono::steady_clock;

    // transport_events
    void on_readable(const boost::system::error_code& ec) override;
    void on_written(const boost::system::error_code& ec, std::size_t n) override;

    std::size_t max_pending_acks() const noexcept;
    void arm_read();
    void read_available();
    void reading_stopped();  // the network or the protocol ended the input: close, finish
    void schedule_write();   // a write of out_ soon (after the current handler)
    void start_write();
    void writes_ended();

    void on_packet(mqtt::packet& p);
    void on_connect(mqtt::connect& c);
    void on_publish(mqtt::publish& p);
    void on_puback(const mqtt::puback& a);
    void on_pubrec(const mqtt::pubrec& a);
    void on_pubrel(const mqtt::pubrel& a);
    void on_pubcomp(const mqtt::pubcomp& a);
    void on_subscribe(const mqtt::subscribe& s);
    void on_unsubscribe(const mqtt::unsubscribe& u);
    void on_disconnect(const mqtt::disconnect& d);
    void on_decode_error(std::error_code ec);

    void refuse_connect(mqtt::reason_code rc);
    bool authenticate(const mqtt::connect& c) const;

    void send(const mqtt::packet& p);
    // Adds a Reason String saying what `rc` means to a 5.0 failure packet, when the client
    // allows it (Request Problem Information; always for CONNACK and DISCONNECT, where
    // `gated` is false) and the packet still fits the client's Maximum Packet Size.
    template <class Packet>
    void explain(Packet& p, mqtt::reason_code rc, bool gated);
    // Moves deliveries from the session into the write buffer.
    void pull_from_session();
    void append_publish(const session::publish_out& po);
    // The publisher's acks, sent in the order the publishes came in, each once its gate
    // is open.
    void queue_ack(std::uint16_t id, mqtt::packet_type type, ack_gate_ptr gate);
    void flush_acks();

    // Protocol violation or server-side close: 5.0 clients get DISCONNECT with the
    // reason first. The will is published unless the client disconnected normally.
    void close(std::optional<mqtt::reason_code> reason);
    void finish();
    // The will as the message it becomes (null if there is none).
    message_ptr will_message();
    // A message from this client (a PUBLISH or the will), as receivers get it.
    std::shared_ptr<message> make_message(std::string topic, mqtt::shared_payload payload, mqtt::qos qos, bool retain,
                                          const mqtt::properties& props);

    boost::asio::any_io_executor executor() const { return transport_->executor(); }
    bool v5() const noexcept { return version_ == mqtt::protocol_version::v5; }

    broker& broker_;
    std::unique_ptr<transport> transport_;
    mqtt::decoder decoder_;
    connection_set* set_ = nullptr;
    std::size_t set_index_ = 0;  // kept by set_
    friend class connection_set;

    std::string out_;       // pending bytes, swapped into the write
    std::string writing_;   // the bytes of the write in progress
    std::uint32_t read_size_;
    bool closing_ = false;  // flush what is pending, then close
    bool closed_ = false;
    bool finished_ = false;
    bool connected_ = false;  // CONNECT accepted
    // Reading is active (a wait pending, a turn posted or running) unless paused while
    // the hooks hold too many of this publisher's acks, or ended.
    bool read_active_ = false;
    bool write_active_ = false;  // a write in progress
    bool write_posted_ = false;
    bool writes_done_ = false;
    std::atomic<bool> wake_posted_{false};

    mqtt::protocol_version version_ = mqtt::protocol_version::v311;
    client_info client_;
    std::unique_ptr<mqtt::will_message> will_;  // behind a pointer: most of a connection's life it is empty
    std::uint32_t will_delay_ = 0;  // Will Delay Interval, seconds
    bool problem_info_ = true;      // Request Problem Information
    clock::time_point last_rx_;
    clock::time_point closing_at_;
    clock::duration keepalive_limit_{};  // zero: no keep-alive

    session_ptr session_;
    std::uint64_t generation_ = 0;
    std::uint16_t send_window_ = 0;           // min(broker's max_inflight, client's Receive Maximum)
    std::uint32_t client_max_packet_ = 0;     // 0: no limit from the client
    std::uint16_t receive_maximum_ = 0;       // what we allow the client (5.0)
    // Inbound and outbound topic aliases, this connection only; allocated when used.
    std::unique_ptr<std::unordered_map<std::uint16_t, std::string>> topic_aliases_;
    std::unique_ptr<outbound_aliases> aliases_out_;

    struct pending_ack {
        std::uint16_t id;
        mqtt::packet_type type;
        ack_gate_ptr gate;
    };
    fifo<pending_ack> pending_acks_;
    std::size_t pending_pubacks_ = 0;  // of pending_acks_, the PUBACKs (QoS 1)
};

}  // namespace mqttd
