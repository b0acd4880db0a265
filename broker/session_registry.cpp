#include "broker/session_registry.hpp"

#include <vector>

namespace mqttd {

session_registry::opened session_registry::open(const std::string& clientid, bool clean_start, std::uint32_t expiry,
                                                const session_limits& limits, std::weak_ptr<session_owner> owner) {
    opened r;
    {
        std::lock_guard lock(mutex_);
        session_ptr slot;
        if (auto it = sessions_.find(clientid); it != sessions_.end()) {
            slot = it->second;
            r.previous_owner = slot->owner();
            if (clean_start || slot->expiry() == 0) {
                sessions_.erase(it);  // its key views the discarded session's id
                r.discarded = std::move(slot);
            } else {
                r.present = true;
                slot->take_will();  // resumed before its Will Delay Interval passed [MQTT-3.1.3-9]
            }
        }
        if (!slot) {
            slot = std::make_shared<session>(clientid, limits);
            sessions_.emplace(slot->clientid(), slot);
        }
        r.s = slot;
        r.generation = slot->attach(std::move(owner));
        slot->set_expiry(expiry);
    }
    if (r.discarded) end(r.discarded);
    return r;
}

void session_registry::end(const session_ptr& s) {
    if (auto will = s->take_will()) publish_will_(will);
    on_end_(s);
}

void session_registry::release(const session_ptr& s, std::uint64_t generation, message_ptr will,
                               std::uint32_t will_delay) {
    bool ended = false;
    {
        std::lock_guard lock(mutex_);
        auto it = sessions_.find(s->clientid());
        const bool current = it != sessions_.end() && it->second == s;
        if (!s->detach(generation)) {
            // Taken over: with a delay, the will waits on a session that lives on, and the
            // successor's connection to it cancels it; a session that ended takes it along.
            if (will_delay > 0 && current) will.reset();
        } else if (!current) {
            // A Clean Start connection replaced the session while this one still held it:
            // it ended then, and the will is due now.
        } else if (s->expiry() > 0) {
            const auto now = std::chrono::steady_clock::now();
            expiries_.emplace(now + std::chrono::seconds(s->expiry()), pending_expiry{s, generation});
            if (will && will_delay > 0) {
                s->set_will(std::move(will));
                // At session end at the latest, when the expiry sweep publishes it.
                if (will_delay < s->expiry())
                    wills_.emplace(now + std::chrono::seconds(will_delay), pending_expiry{s, generation});
            }
        } else {
            sessions_.erase(it);
            ended = true;
        }
    }
    if (will) publish_will_(will);
    if (ended) on_end_(s);
}

std::size_t session_registry::sweep(std::chrono::steady_clock::time_point now) {
    std::vector<message_ptr> wills;
    std::vector<session_ptr> ended;
    {
        std::lock_guard lock(mutex_);
        // Re-attached since (generation moved on) or replaced: nothing to do.
        auto still_detached = [](const session_ptr& s, std::uint64_t generation) {
            return s && !s->attached() && s->generation() == generation;
        };
        while (!wills_.empty() && wills_.begin()->first <= now) {
            auto e = wills_.begin()->second;
            wills_.erase(wills_.begin());
            auto s = e.s.lock();
            if (!still_detached(s, e.generation)) continue;
            if (auto w = s->take_will()) wills.push_back(std::move(w));
        }
        while (!expiries_.empty() && expiries_.begin()->first <= now) {
            auto e = expiries_.begin()->second;
            expiries_.erase(expiries_.begin());
            auto s = e.s.lock();
            if (!still_detached(s, e.generation)) continue;
            auto it = sessions_.find(s->clientid());
            if (it == sessions_.end() || it->second != s) continue;
            sessions_.erase(it);
            ended.push_back(std::move(s));
        }
    }
    for (auto& w : wills) publish_will_(w);
    for (auto& s : ended) end(s);
    return ended.size();
}

session_ptr session_registry::find(const std::string& clientid) const {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(clientid);
    return it == sessions_.end() ? nullptr : it->second;
}

std::size_t session_registry::size() const {
    std::lock_guard lock(mutex_);
    return sessions_.size();
}

}  // namespace mqttd
