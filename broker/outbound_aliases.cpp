#include "broker/outbound_aliases.hpp"

namespace mqttd {

outbound_aliases::choice outbound_aliases::pick(std::string_view topic) const {
    if (max_ == 0 || topic.empty()) return {};
    if (auto it = by_topic_.find(topic); it != by_topic_.end()) return {it->second->alias, true};
    if (by_topic_.size() < max_) return {static_cast<std::uint16_t>(by_topic_.size() + 1), false};
    return {lru_.back().alias, false};
}

void outbound_aliases::use(std::string_view topic, const choice& c) {
    if (c.alias == 0) return;
    if (c.known) {
        lru_.splice(lru_.begin(), lru_, by_topic_.at(topic));
        return;
    }
    if (by_topic_.size() >= max_) {  // the alias is the least recently used one's
        by_topic_.erase(lru_.back().topic);
        lru_.pop_back();
    }
    lru_.push_front({std::string(topic), c.alias});
    by_topic_.emplace(lru_.front().topic, lru_.begin());
}

}  // namespace mqttd
