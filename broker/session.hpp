#pragma once
// A client's session: what outlives one network connection (subscriptions, the queue
// of messages waiting for the client, QoS 1/2 messages in flight, QoS 2 packet ids the
// client is still to release). Any thread may queue a message; the connection that owns
// the session takes from it on its own thread. One mutex per session, never held
// across a suspension point.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/ack_gate.hpp"
#include "broker/fifo.hpp"
#include "broker/message.hpp"

namespace mqttd {

// A message on its way to one client.
struct outgoing {
    message_ptr msg;
    mqtt::qos qos = mqtt::qos::at_most_once;  // effective: min(published, subscribed)
    bool retain = false;                      // RETAIN flag as delivered
    std::vector<std::uint32_t> subscription_ids;
    std::string share_filter;  // "$share/{group}/{filter}" when a shared subscription chose this session
};

// Where the session's owner is woken when there is something to send.
class session_owner {
public:
    virtual ~session_owner() = default;
    virtual void wake() = 0;  // thread-safe
    // Another connection took the session over: close, saying why (thread-safe).
    virtual void taken_over() = 0;
};

struct session_limits {
    std::uint16_t max_inflight = 32;
    std::size_t max_queue_len = 1000;
    std::size_t max_queue_bytes = 64u << 20;
    bool queue_qos0 = true;  // queue QoS 0 while the client is away
};

// Counters a session bumps when it must drop.
struct drop_counters {
    std::uint64_t qos0_dropped = 0;
    std::uint64_t queue_overflow = 0;  // oldest QoS 1/2 evicted by the bound
    std::uint64_t expired = 0;
};

class session {
public:
    enum class await_state : std::uint8_t { puback, pubrec, pubcomp };
    struct inflight_entry {
        std::uint16_t packet_id;
        await_state state;
        outgoing out;
    };

    session(std::string clientid, session_limits limits);

    const std::string& clientid() const noexcept { return clientid_; }

    // --- ownership -------------------------------------------------------------
    // Attaching bumps the generation so a stale owner's detach is ignored.
    std::uint64_t attach(std::weak_ptr<session_owner> owner);
    // True when `generation` was still the owner (the session is now detached).
    bool detach(std::uint64_t generation);
    bool attached() const;
    std::uint64_t generation() const;
    std::weak_ptr<session_owner> owner() const;

    // The session ended (replaced, expired, or gone with its connection): a subscription
    // that its last connection adds afterwards must be undone, as nothing else would
    // remove it from the topic tree.
    void mark_ended();
    bool ended() const;

    // Seconds to keep the session after detach; 0: discard it at once.
    void set_expiry(std::uint32_t seconds);
    std::uint32_t expiry() const;

    // A will waiting for its Will Delay Interval while the session lives on detached.
    void set_will(message_ptr will);
    message_ptr take_will();

    // --- delivery (any thread) --------------------------------------------------
    // Queues a live message and wakes the owner if it can send the queue's first message
    // now (not while the window is full). Applies the bounds: a full queue drops a new
    // QoS 0 message, or the oldest queued live message to make room for QoS 1/2; when it
    // holds stored messages only (enqueue_stored), the new message is dropped.
    void enqueue(outgoing o);
    // Queues stored messages of an offline fetch (a page of one subscription's backlog, in
    // stored order) behind the stored messages queued and ahead of the live ones, evicting
    // the oldest live messages for room, never a stored one. Returns how many of `page`,
    // from its first, it took: it stops at the first that only the stored messages keep
    // out. One that can never be queued (larger than the byte bound, or QoS 0 while the
    // client is away and such are not queued) counts as taken, and is dropped.
    std::size_t enqueue_stored(std::vector<outgoing> page);

    // --- taking (owner's thread) -----------------------------------------------
    struct publish_out {
        outgoing out;
        std::uint16_t packet_id;  // 0 for QoS 0
        bool dup;
    };
    // Moves queued messages into flight while the window allows (`window` is the
    // smaller of the broker's and the client's receive maximum, kept for room() and
    // enqueue), at most `max_count`. Expired messages are dropped on the way. Nothing is
    // taken unless `generation` still owns the session: a connection being taken over
    // must not move messages into flight after its successor resent what was in flight.
    void take(std::uint64_t generation, std::uint16_t window, std::size_t max_count, std::vector<publish_out>& out);
    // Everything in flight, in send order, for resending after a reconnect: PUBLISH
    // (with DUP) for unacknowledged messages, and the ids awaiting PUBCOMP for PUBREL.
    void in_flight(std::vector<publish_out>& publishes, std::vector<std::uint16_t>& pubrels) const;

    // Acknowledgements from the client. Each returns the acknowledged message when the
    // id was in the expected state.
    message_ptr puback(std::uint16_t id);
    message_ptr pubrec(std::uint16_t id);  // moves to awaiting PUBCOMP
    message_ptr pubcomp(std::uint16_t id);  // the exchange is over
    // Where the exchange of the message sent with `id` stands; none when not in flight.
    std::optional<await_state> awaiting(std::uint16_t id) const;

    // Removes the messages that shared subscriptions sent here and another member may
    // have instead: queued QoS 1/2 ones, and QoS 1 ones in flight without PUBACK (a QoS
    // 2 message once sent stays with this client until PUBCOMP), for the share
    // filters `movable` accepts, so another member of the group can have them. `movable`
    // runs under this session's lock: it must not touch sessions.
    std::vector<outgoing> take_shared_unacked(const std::function<bool(const std::string&)>& movable);

    // --- QoS 2 from the client ------------------------------------------------------
    enum class incoming_qos2 : std::uint8_t { fresh, duplicate, too_many };
    // `fresh`: the id is kept with `gate`, the gate of the message's PUBREC.
    // `duplicate`: the id already awaits PUBREL (a resent PUBLISH: not routed again);
    // `gate` becomes the first copy's, so the resend is answered once that is stored.
    // `too_many`: `max_awaiting` ids await PUBREL (0: no limit). Ids awaiting longer
    // than `timeout`, and answered, are forgotten first, as a client that never sends
    // PUBREL would otherwise fill the table for good.
    incoming_qos2 begin_incoming_qos2(std::uint16_t id, std::size_t max_awaiting, std::chrono::milliseconds timeout,
                                      ack_gate_ptr& gate);
    bool release_incoming_qos2(std::uint16_t id);
    std::size_t incoming_qos2_count() const;

    // --- subscriptions as the client made them (for takeover and cleanup) --------
    void remember_subscription(const std::string& filter, const mqtt::subscribe_options& o, std::uint32_t sub_id);
    bool forget_subscription(const std::string& filter);
    struct stored_subscription {
        mqtt::subscribe_options options;
        std::uint32_t subscription_id = 0;
    };
    std::map<std::string, stored_subscription> subscriptions() const;

    std::size_t queued() const;
    std::size_t inflight_count() const;
    // How many more messages could be sent at once: the send window (of the last take)
    // less what is in flight and queued. Far below zero while detached, so that a shared
    // subscription gives a session whose client is away messages only when no member is
    // connected. Read without the lock: a recent value, for choosing among members.
    std::int64_t room() const noexcept { return room_.load(std::memory_order_relaxed); }
    drop_counters drops() const;

private:
    std::uint16_t next_packet_id();  // mutex held
    void wake_owner(std::unique_lock<std::mutex>& lock);
    void update_room();  // mutex held
    // Evicts the oldest live messages until `bytes` more fit; false when the stored
    // messages alone leave no room (mutex held).
    bool make_room(std::size_t bytes);
    void pop_front();  // mutex held

    const std::string clientid_;
    const session_limits limits_;

    mutable std::mutex mutex_;
    std::weak_ptr<session_owner> owner_;
    std::uint64_t generation_ = 0;
    bool attached_ = false;
    bool ended_ = false;
    std::uint32_t expiry_ = 0;
    message_ptr will_;

    fifo<outgoing> queue_;
    std::size_t queue_bytes_ = 0;
    std::size_t stored_ = 0;  // queue_'s first stored_ messages are stored ones (enqueue_stored)
    std::list<inflight_entry> inflight_;  // send order
    // The two tables below are allocated on first use: most sessions are idle most of
    // the time, and an empty unordered_map still costs 56 bytes.
    using inflight_index = std::unordered_map<std::uint16_t, std::list<inflight_entry>::iterator>;
    std::unique_ptr<inflight_index> inflight_by_id_;
    std::uint16_t last_packet_id_ = 0;
    struct incoming_entry {
        std::chrono::steady_clock::time_point arrival;
        ack_gate_ptr gate;
    };
    using incoming_qos2_table = std::unordered_map<std::uint16_t, incoming_entry>;
    std::unique_ptr<incoming_qos2_table> incoming_qos2_;
    std::map<std::string, stored_subscription> subscriptions_;
    drop_counters drops_;
    std::uint16_t window_;
    std::atomic<std::int64_t> room_;
};

using session_ptr = std::shared_ptr<session>;

}  // namespace mqttd
