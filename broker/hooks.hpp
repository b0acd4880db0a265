#pragma once
// The hook bus: the broker's events, which the persistence backend (or anything else)
// listens to. Handlers are attached and detached at runtime from any thread; emitting
// takes a snapshot of the handler list, so no lock is held while a handler runs, and
// costs one atomic load when no handler listens to the event.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

#include "broker/message.hpp"

namespace mqttd {

class session;

struct client_info {
    std::string clientid;
    std::string username;
    mqtt::protocol_version version = mqtt::protocol_version::v311;
    // When this connection's CONNECT was accepted: tells a late client.disconnected of a
    // taken-over connection from the current connection's events.
    std::chrono::system_clock::time_point connected_at{};
    std::string address;  // the client's IP address (empty for the broker's own)
};

struct subscription_event {
    client_info client;
    std::string topic;  // the subscription's filter as the client sent it
    mqtt::qos qos = mqtt::qos::at_most_once;
    // The session already had this subscription (a resumed session subscribing again):
    // it has been receiving the filter's messages all along.
    bool existed = false;
    // The subscription's Retain Handling option (MQTT 5.0, 3.8.3.1): 0 send the retained
    // messages, 1 only if the subscription did not exist, 2 do not send them.
    std::uint8_t retain_handling = 0;
    // The session that (un)subscribed, to tell it from an earlier or later session of the
    // same client id: an identity, to be compared and never followed.
    const session* owner = nullptr;
};

// session.terminated: a session ended (its subscriptions are gone), whether with its
// connection, at its expiry or replaced by a clean start.
struct session_event {
    std::string clientid;
    const session* owner = nullptr;  // as in subscription_event
};

struct delivery_event {
    client_info client;
    message_ptr msg;
};

// Held by a message.publish handler to delay the publisher's PUBACK/PUBREC. The
// broker acknowledges when every copy of the token is gone; the publisher's connection
// keeps reading and other traffic keeps flowing meanwhile. A handler that could not
// store the message (or never will) says so with fail(): the acknowledgement then
// carries that reason code (MQTT 5) or is not sent at all (3.1.1, which has no negative
// acknowledgement: the connection is closed so that the client sends it again).
class publish_token {
public:
    using release_function = std::function<void(mqtt::reason_code)>;
    explicit publish_token(release_function on_release) : on_release_(std::move(on_release)) {}
    publish_token(const publish_token&) = delete;
    publish_token& operator=(const publish_token&) = delete;
    ~publish_token() {
        if (on_release_) on_release_(reason());
    }

    // Any thread. `why` is a failure code (0x80 or above); the first failure stands.
    void fail(mqtt::reason_code why) noexcept {
        std::uint8_t none = 0;
        reason_.compare_exchange_strong(none, static_cast<std::uint8_t>(why), std::memory_order_acq_rel);
    }
    bool failed() const noexcept { return reason_.load(std::memory_order_acquire) != 0; }
    mqtt::reason_code reason() const noexcept { return static_cast<mqtt::reason_code>(reason_.load(std::memory_order_acquire)); }

private:
    release_function on_release_;
    std::atomic<std::uint8_t> reason_{0};
};
using publish_hold = std::shared_ptr<publish_token>;

// What a handler may do to the broker in return.
class broker_api {
public:
    virtual ~broker_api() = default;
    // Subscribes a connected client as if it had sent SUBSCRIBE (retained messages
    // included); session.subscribed fires for each. False if the client is unknown.
    virtual bool subscribe(const std::string& clientid, const std::vector<mqtt::subscription>& subs) = 0;
    // Queues messages for one client's session, through the normal QoS and inflight
    // machinery, at min(message QoS, qos). `retained` sets the RETAIN flag on delivery.
    virtual bool deliver(const std::string& clientid, const std::vector<message_ptr>& msgs,
                         mqtt::qos qos, bool retained) = 0;
    // Queues one page of a subscription's stored backlog for one client, in stored order,
    // at min(message QoS, qos), ahead of the client's live messages, which never push
    // them out (session::enqueue_stored). Returns how many of `msgs`, from the first, the
    // session took (none for an unknown client).
    virtual std::size_t deliver_stored(const std::string& clientid, const std::vector<message_ptr>& msgs,
                                       mqtt::qos qos) = 0;
    virtual const std::string& node_name() const = 0;
};

enum class hookpoint : std::uint8_t {
    client_connected,
    client_disconnected,
    session_subscribed,
    session_unsubscribed,
    message_publish,
    message_acked,
    message_delivered,
    session_terminated,
};

class hook_bus {
public:
    using client_handler = std::function<void(const client_info&)>;
    using subscription_handler = std::function<void(const subscription_event&)>;
    // `hold` may be copied and kept to delay the publisher's acknowledgement.
    using publish_handler = std::function<void(const client_info&, const message_ptr&, const publish_hold& hold)>;
    using delivery_handler = std::function<void(const delivery_event&)>;
    using session_handler = std::function<void(const session_event&)>;
    using handle = std::uint64_t;

    handle on_client_connected(client_handler h) { return attach(hookpoint::client_connected, std::move(h)); }
    handle on_client_disconnected(client_handler h) { return attach(hookpoint::client_disconnected, std::move(h)); }
    handle on_session_subscribed(subscription_handler h) { return attach(hookpoint::session_subscribed, std::move(h)); }
    handle on_session_unsubscribed(subscription_handler h) { return attach(hookpoint::session_unsubscribed, std::move(h)); }
    handle on_message_publish(publish_handler h) { return attach(hookpoint::message_publish, std::move(h)); }
    handle on_message_acked(delivery_handler h) { return attach(hookpoint::message_acked, std::move(h)); }
    handle on_message_delivered(delivery_handler h) { return attach(hookpoint::message_delivered, std::move(h)); }
    handle on_session_terminated(session_handler h) { return attach(hookpoint::session_terminated, std::move(h)); }
    void detach(handle h);

    bool has(hookpoint p) const noexcept { return (attached_.load(std::memory_order_acquire) & bit(p)) != 0; }

    void client_connected(const client_info& c) const { emit<client_handler>(hookpoint::client_connected, c); }
    void client_disconnected(const client_info& c) const { emit<client_handler>(hookpoint::client_disconnected, c); }
    void session_subscribed(const subscription_event& e) const { emit<subscription_handler>(hookpoint::session_subscribed, e); }
    void session_unsubscribed(const subscription_event& e) const { emit<subscription_handler>(hookpoint::session_unsubscribed, e); }
    void message_publish(const client_info& c, const message_ptr& m, const publish_hold& hold) const {
        emit<publish_handler>(hookpoint::message_publish, c, m, hold);
    }
    void message_acked(const delivery_event& e) const { emit<delivery_handler>(hookpoint::message_acked, e); }
    void message_delivered(const delivery_event& e) const { emit<delivery_handler>(hookpoint::message_delivered, e); }
    void session_terminated(const session_event& e) const { emit<session_handler>(hookpoint::session_terminated, e); }

private:
    using any_handler =
        std::variant<client_handler, subscription_handler, publish_handler, delivery_handler, session_handler>;
    struct entry {
        handle id;
        hookpoint point;
        any_handler fn;
    };
    using table = std::vector<entry>;

    template <class H>
    handle attach(hookpoint p, H h);

    static constexpr std::uint32_t bit(hookpoint p) noexcept { return 1u << static_cast<unsigned>(p); }
    // Recomputes attached_ from table_; under mutex_.
    void update_attached();

    template <class H, class... Args>
    void emit(hookpoint p, const Args&... args) const {
        if (!has(p)) return;
        auto snapshot = load();
        if (!snapshot) return;
        for (const auto& e : *snapshot)
            if (e.point == p) std::get<H>(e.fn)(args...);
    }

    std::shared_ptr<const table> load() const {
        std::lock_guard lock(mutex_);
        return table_;
    }

    mutable std::mutex mutex_;
    std::shared_ptr<const table> table_;  // copy-on-write: emitters never wait on attach
    std::atomic<std::uint32_t> attached_{0};  // a bit per hookpoint that has a handler
    handle next_ = 1;
};

}  // namespace mqttd
