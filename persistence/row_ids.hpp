#pragma once
// The mqtt_msg row ids of recently written messages, by msgid: an ack then moves its
// pointer to the row id it already knows, instead of looking the msgid up again in
// PostgreSQL (the lookup is most of the cost of an ack). Bounded: two generations of at
// most `generation_size` entries each; a msgid not found here is looked up as before.
// Not thread-safe: used on the pool's executor only.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace mqttd::persistence {

class row_ids {
public:
    explicit row_ids(std::size_t generation_size = 1 << 14) : generation_size_(generation_size) {}

    void add(std::string_view msgid, std::int64_t id);
    std::optional<std::int64_t> find(std::string_view msgid) const;
    std::size_t size() const noexcept { return current_.size() + previous_.size(); }

private:
    struct hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    using map = std::unordered_map<std::string, std::int64_t, hash, std::equal_to<>>;

    std::size_t generation_size_;
    map current_, previous_;
};

}  // namespace mqttd::persistence
