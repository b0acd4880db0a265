#pragma once
// The MQTT rules of one client connection, without I/O: decoded packets, the time, and
// completions (a hold released, a write finished) go in; the bytes to send and what the
// connection must do next (read, pause, flush and close) come out. There is no socket,
// executor or timer inside, and no clock decides anything: every input carries `now`, so
// unit tests and the fuzzer drive it packet by packet (wall-clock time is read only to
// stamp messages and connections for the hooks). It works on the broker's shared state (sessions, subscriptions,
// retained messages, hooks), which is free of I/O as well.
//
// Its life, in phases:
//   awaiting_connect  only CONNECT is accepted [MQTT-3.1.0-1]
//   connected         the session is attached
//   closing           no more packets are taken; what is written so far is flushed
//   lingering         flushed and the session released: the connection has shut down its
//                     sending side and reads (and discards) until the client closes, so
//                     that the client can read the packet that explains the close
//   ended             the socket is to be closed now
//
// Everything but construction runs on the connection's own thread.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <unordered_map>

#include "auth/acl.hpp"
#include "auth/password_checker.hpp"
#include "broker/ack_gate.hpp"
#include "broker/fifo.hpp"
#include "broker/hooks.hpp"
#include "broker/outbound_aliases.hpp"
#include "broker/session.hpp"
#include "protocol/packet.hpp"

namespace mqttd {

class broker;

class connection_rules {
public:
    using clock = std::chrono::steady_clock;
    enum class phase : std::uint8_t { awaiting_connect, connected, closing, lingering, ended };

    // What the connection answers is bounded: past this many unwritten bytes it stops
    // reading from the client (a client that floods PINGREQ or QoS 1 and never reads).
    static constexpr std::size_t output_bound = 1u << 20;
    // The largest batch of deliveries moved into the output at once.
    static constexpr std::size_t delivery_batch_bytes = 256 * 1024;
    // How long a closing connection may take to flush before it ends anyway.
    static constexpr std::chrono::seconds close_grace{5};
    // How long a flushed connection waits for the client to close before it ends.
    static constexpr std::chrono::seconds linger_time{2};
    // A wrong password is answered this much later, so that guessing is slow; a timer,
    // not a sleep: the I/O thread serves others meanwhile.
    static constexpr std::chrono::seconds refusal_delay{1};
    // Inbound topic aliases of one connection hold at most this many bytes of topic names,
    // whatever their count: 65,535 aliases of long topics would pin gigabytes.
    static constexpr std::size_t alias_bytes_bound = 64 * 1024;

    // `owner` is the connection, as the session sees it (woken, told of a takeover).
    // `address`: the client's IP address, for the ACL's ipaddr rules.
    connection_rules(broker& b, std::weak_ptr<session_owner> owner, clock::time_point now,
                     std::string address = {});
    connection_rules(const connection_rules&) = delete;
    connection_rules& operator=(const connection_rules&) = delete;

    // --- input ------------------------------------------------------------------
    void received(clock::time_point now);  // bytes arrived: the keep-alive starts again
    void packet(mqtt::packet& p, clock::time_point now);
    // The decoder failed; `decoded_version` is the protocol level it read, if any.
    void decode_error(std::error_code ec, std::optional<mqtt::protocol_version> decoded_version,
                      clock::time_point now);
    // The session has deliveries, or a hold on this publisher's acks was released.
    void woken(clock::time_point now);
    void taken_over(clock::time_point now);
    void shutting_down(clock::time_point now);  // the server stops: DISCONNECT 0x8B, no will
    // The client's side of the stream ended or failed: the will is due.
    void input_ended();
    // The connection wrote everything it took with take_output().
    void written(clock::time_point now);
    // Writing failed: nothing more can be sent.
    void output_failed();
    // While closing: everything is written; the connection shuts down its sending side.
    void flushed(clock::time_point now);
    // Time passed: keep-alive, connect timeout, a stalled output, the end of a grace.
    void tick(clock::time_point now);

    // --- output -----------------------------------------------------------------
    bool has_output() const noexcept { return !out_.empty(); }
    // Moves the pending bytes into `into` (swapping buffers), for one write.
    void take_output(std::string& into, clock::time_point now);
    // Read from the client: not while too many of its acks are held for the hooks, nor
    // while too much output waits; while closing or lingering, read only to discard.
    bool wants_input() const noexcept;
    phase state() const noexcept { return phase_; }
    // When tick() is due (max: never).
    clock::time_point deadline() const noexcept;

    const client_info& client() const noexcept { return client_; }
    std::size_t unwritten() const noexcept { return out_.size() + writing_; }

private:
    bool v5() const noexcept { return version_ == mqtt::protocol_version::v5; }
    bool open() const noexcept { return phase_ == phase::awaiting_connect || phase_ == phase::connected; }
    std::size_t max_pending_acks() const noexcept;
    bool input_paused() const noexcept;
    // After every input: a client no longer paused starts its keep-alive again, as the
    // silence was the broker's.
    void note_pause(clock::time_point now);

    void on_connect(mqtt::connect& c, clock::time_point now);
    void on_publish(mqtt::publish& p, clock::time_point now);
    void on_puback(const mqtt::puback& a, clock::time_point now);
    void on_pubrec(const mqtt::pubrec& a, clock::time_point now);
    void on_pubrel(const mqtt::pubrel& a, clock::time_point now);
    void on_pubcomp(const mqtt::pubcomp& a, clock::time_point now);
    void on_subscribe(const mqtt::subscribe& s, clock::time_point now);
    void on_unsubscribe(const mqtt::unsubscribe& u);
    void on_disconnect(const mqtt::disconnect& d, clock::time_point now);
    // The keep-alive to watch for a client that asked for `asked`, and what a 5.0 client
    // is told (nothing: its own stands); none when the client is to be refused.
    struct keep_alive_terms {
        std::uint16_t watched;
        std::optional<std::uint16_t> told;
    };
    std::optional<keep_alive_terms> keep_alive_for(std::uint16_t asked) const;
    // The CONNECT's password was checked (on the checker's thread): go on or refuse.
    void password_checked(clock::time_point now);
    // The rest of CONNECT, once the client is authenticated.
    void accept_connect(mqtt::connect& c, clock::time_point now);
    void refuse_connect(mqtt::reason_code rc, clock::time_point now);
    // The same after refusal_delay, on a tick: guessing credentials is slow.
    void refuse_later(mqtt::reason_code rc, clock::time_point now);
    // The ACL's answer for this client (acl_file, then acl_nomatch).
    bool permitted(auth::access a, std::string_view topic) const;
    // Inbound topic alias [MQTT-3.3.2.3.4]: resolves or records it; false when the
    // connection was closed for it.
    bool resolve_alias(mqtt::publish& p, clock::time_point now);

    void send(const mqtt::packet& p);
    // Adds a Reason String saying what `rc` means to a 5.0 failure packet, when the client
    // allows it (Request Problem Information; always for CONNACK and DISCONNECT, where
    // `gated` is false) and the packet still fits the client's Maximum Packet Size.
    template <class Packet>
    void explain(Packet& p, mqtt::reason_code rc, bool gated);
    // Fits a CONNACK to the client's Maximum Packet Size [MQTT-3.1.2-24] by leaving out
    // optional properties; false when even the smallest does not fit.
    bool fit_connack(mqtt::connack& ack) const;
    void pull_from_session(clock::time_point now);
    void append_publish(const session::publish_out& po, clock::time_point now);
    // The publisher's acks, sent in the order the publishes came in, each once its gate
    // is open.
    void queue_ack(std::uint16_t id, mqtt::packet_type type, ack_gate_ptr gate, clock::time_point now);
    void flush_acks(clock::time_point now);

    // Protocol violation or server-side close: a connected 5.0 client gets DISCONNECT with
    // the reason first. The will is published unless the client disconnected normally.
    void close(std::optional<mqtt::reason_code> reason, clock::time_point now);
    // The end of the session's attachment: released, the will published if due.
    void release_session();
    void end();
    message_ptr will_message();
    // A message from this client (a PUBLISH or the will), as receivers get it.
    std::shared_ptr<message> make_message(std::string topic, mqtt::shared_payload payload, mqtt::qos qos, bool retain,
                                          const mqtt::properties& props);

    broker& broker_;
    std::weak_ptr<session_owner> owner_;
    phase phase_ = phase::awaiting_connect;

    std::string out_;          // encoded, not yet taken for writing
    std::size_t writing_ = 0;  // bytes of the write in progress
    clock::time_point write_started_;

    mqtt::protocol_version version_ = mqtt::protocol_version::v311;
    client_info client_;
    std::unique_ptr<mqtt::will_message> will_;  // behind a pointer: most of a connection's life it is empty
    std::uint32_t will_delay_ = 0;              // Will Delay Interval, seconds
    bool problem_info_ = true;                  // Request Problem Information
    clock::time_point last_rx_;
    clock::time_point phase_since_;      // when closing or lingering began
    clock::duration keepalive_limit_{};  // zero: no keep-alive
    bool paused_ = false;                // input_paused() after the last input
    // A CONNECT whose password is being checked; reading waits meanwhile.
    std::unique_ptr<mqtt::connect> connect_waiting_;
    std::shared_ptr<const auth::password_checker::result> password_check_;
    bool id_assigned_ = false;  // the client id is the broker's (5.0: told in CONNACK)
    // A refusal for a wrong password, due at refuse_at_.
    std::optional<mqtt::reason_code> refusal_;
    clock::time_point refuse_at_;

    session_ptr session_;
    std::uint64_t generation_ = 0;
    std::uint16_t send_window_ = 0;        // min(broker's max_inflight, client's Receive Maximum)
    std::uint32_t client_max_packet_ = 0;  // 0: no limit from the client
    std::uint16_t receive_maximum_ = 0;    // what we allow the client (5.0)
    // Inbound and outbound topic aliases, this connection only; allocated when used.
    std::unique_ptr<std::unordered_map<std::uint16_t, std::string>> topic_aliases_;
    std::size_t alias_bytes_ = 0;
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
