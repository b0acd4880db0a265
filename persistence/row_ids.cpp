#include "persistence/row_ids.hpp"

namespace mqttd::persistence {

void row_ids::add(std::string_view msgid, std::int64_t id) {
    if (current_.size() >= generation_size_) {
        previous_ = std::move(current_);  // the oldest generation goes
        current_.clear();
    }
    current_.insert_or_assign(std::string(msgid), id);
}

std::optional<std::int64_t> row_ids::find(std::string_view msgid) const {
    if (auto it = current_.find(msgid); it != current_.end()) return it->second;
    if (auto it = previous_.find(msgid); it != previous_.end()) return it->second;
    return std::nullopt;
}

}  // namespace mqttd::persistence
