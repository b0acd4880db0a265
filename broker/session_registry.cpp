#include "broker/session_registry.hpp"

#include <vector>

namespace mqttd {

session_registry::opened session_registry::open(const std::string& clientid, bool clean_start, std::uint32_t expiry,
                                                const session_limits& limits, std::weak_ptr<session_owner> owner) {
    opened r;
    {
        std::lock_guard lock(mutex_);
        auto& slot = sessions_[clientid];
        if (slot) {
            r.previous_owner = slot->owner();
            if (clean_start || slot->expiry() == 0) {
                r.discarded = std::move(slot);
            } else {
                r.present = true;
            }
        }
        if (!slot) slot = std::make_shared<session>(clientid, limits);
        r.s = slot;
        r.generation = slot->attach(std::move(owner));
        slot->set_expiry(expiry);
    }
    if (r.discarded) on_end_(r.discarded);
    return r;
}

void session_registry::release(const session_ptr& s, std::uint64_t generation) {
    {
        std::lock_guard lock(mutex_);
        if (!s->detach(generation)) return;  // a successor owns it now
        if (s->expiry() > 0) {
            auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(s->expiry());
            expiries_.emplace(deadline, pending_expiry{s, generation});
            return;
        }
        auto it = sessions_.find(s->clientid());
        if (it == sessions_.end() || it->second != s) return;  // replaced by a clean start: ended then
        sessions_.erase(it);
    }
    on_end_(s);
}

std::size_t session_registry::sweep(std::chrono::steady_clock::time_point now) {
    std::vector<session_ptr> ended;
    {
        std::lock_guard lock(mutex_);
        while (!expiries_.empty() && expiries_.begin()->first <= now) {
            auto e = expiries_.begin()->second;
            expiries_.erase(expiries_.begin());
            auto s = e.s.lock();
            // Re-attached since (generation moved on) or replaced: nothing to end.
            if (!s || s->attached() || s->generation() != e.generation) continue;
            auto it = sessions_.find(s->clientid());
            if (it == sessions_.end() || it->second != s) continue;
            sessions_.erase(it);
            ended.push_back(std::move(s));
        }
    }
    for (auto& s : ended) on_end_(s);
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
