#pragma once
// Client id -> session. Opening a session and attaching its new owner happen under one
// lock, so a connection being taken over can never end a session its successor holds.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "broker/session.hpp"

namespace mqttd {

class session_registry {
public:
    // Called (outside the registry's lock) once for every session that ends, so its
    // subscriptions can be removed from the topic tree.
    explicit session_registry(std::function<void(const session_ptr&)> on_end) : on_end_(std::move(on_end)) {}

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
    // kept until its expiry interval has passed without a new owner.
    void release(const session_ptr& s, std::uint64_t generation);

    // Ends detached sessions whose expiry has passed; returns how many.
    std::size_t sweep(std::chrono::steady_clock::time_point now);

    session_ptr find(const std::string& clientid) const;
    std::size_t size() const;

private:
    struct pending_expiry {
        std::weak_ptr<session> s;
        std::uint64_t generation;
    };
    std::function<void(const session_ptr&)> on_end_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, session_ptr> sessions_;
    std::multimap<std::chrono::steady_clock::time_point, pending_expiry> expiries_;
};

}  // namespace mqttd
