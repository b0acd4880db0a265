#pragma once
// Client id -> session. Opening a session and attaching its new owner happen under one
// lock, so a connection being taken over can never end a session its successor holds.
// Wills with a Will Delay Interval wait here too, as they depend on what becomes of the
// session (MQTT 5 3.1.3.2.2): published when the delay has passed or the session ends,
// whichever is first; dropped if a new connection resumes the session in time.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "broker/session.hpp"

namespace mqttd {

class session_registry {
public:
    // Called (outside the registry's lock) once for every session that ends, so its
    // subscriptions can be removed from the topic tree.
    // `publish_will` publishes a will that is due (outside the registry's lock).
    session_registry(std::function<void(const session_ptr&)> on_end, std::function<void(const message_ptr&)> publish_will)
        : on_end_(std::move(on_end)), publish_will_(std::move(publish_will)) {}

    struct opened {
        session_ptr s;
        bool present = false;          // an existing session was resumed
        std::uint64_t generation = 0;  // the new owner's attachment
        std::weak_ptr<session_owner> previous_owner;  // to be told it was taken over
        session_ptr discarded;         // an old session replaced because of clean start (already ended)
    };
    // A session whose expiry is 0 ends with its connection, so a takeover does not
    // resume it either. `expiry` is the new owner's, set under the same lock.
    opened open(const std::string& clientid, bool clean_start, std::uint32_t expiry, const session_limits& limits,
                std::weak_ptr<session_owner> owner);

    // The owner with this generation goes away: the session ends now (expiry 0) or is
    // kept until its expiry interval has passed without a new owner. `will` (may be null)
    // is the connection's will, due after `will_delay` seconds: it is published now if the
    // delay is 0 or the session ends, waits in the session otherwise, and is dropped when
    // the connection was taken over by one that continues the session [MQTT-3.1.3-9].
    void release(const session_ptr& s, std::uint64_t generation, message_ptr will = nullptr,
                 std::uint32_t will_delay = 0);

    // Publishes the wills whose delay has passed and ends detached sessions whose expiry
    // has passed (publishing their wills); returns how many sessions ended.
    std::size_t sweep(std::chrono::steady_clock::time_point now);

    session_ptr find(const std::string& clientid) const;
    std::size_t size() const;

private:
    struct pending_expiry {
        std::weak_ptr<session> s;
        std::uint64_t generation;
    };
    // The session ends: its pending will is published, then on_end_ runs.
    void end(const session_ptr& s);

    std::function<void(const session_ptr&)> on_end_;
    std::function<void(const message_ptr&)> publish_will_;
    mutable std::mutex mutex_;
    // Keyed by a view of the session's own id, which lives as long as the entry: a
    // client id is stored once per session, not twice.
    std::unordered_map<std::string_view, session_ptr> sessions_;
    std::multimap<std::chrono::steady_clock::time_point, pending_expiry> expiries_;
    std::multimap<std::chrono::steady_clock::time_point, pending_expiry> wills_;  // delayed wills
};

}  // namespace mqttd
