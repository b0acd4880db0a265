#pragma once
// Topic names and filters (spec 4.7): validation, matching, shared subscriptions.
#include <optional>
#include <string_view>

namespace mqtt {

// Non-empty, no wildcard characters. UTF-8 validity is checked separately (utf8.hpp).
bool valid_topic_name(std::string_view topic) noexcept;
// Non-empty; '#' only last and alone in its level; '+' alone in its level;
// $share/{group}/{filter} with a non-empty group free of wildcards and a valid filter.
bool valid_topic_filter(std::string_view filter) noexcept;
bool has_wildcard(std::string_view filter) noexcept;
// How many levels: one more than the number of '/' separators.
inline std::size_t topic_levels(std::string_view topic) noexcept {
    std::size_t n = 1;
    for (char c : topic) n += c == '/';
    return n;
}

// Filters starting with a wildcard do not match topics starting with '$' [MQTT-4.7.2-1].
// `filter` is an ordinary filter: take a shared one apart with parse_shared() first.
bool topic_matches(std::string_view filter, std::string_view topic) noexcept;

struct shared_filter {
    std::string_view group;
    std::string_view filter;
};
// For "$share/{group}/{filter}", its parts (not validated); nullopt for an ordinary filter.
// The $share rules apply in every protocol version.
std::optional<shared_filter> parse_shared(std::string_view filter) noexcept;

}  // namespace mqtt
