#include "protocol/topic.hpp"

namespace mqtt {

namespace {

constexpr std::string_view share_prefix = "$share/";

// Filter rules without the shared-subscription prefix: '#' alone in the last level,
// '+' alone in its level.
bool valid_plain_filter(std::string_view f) noexcept {
    if (f.empty()) return false;
    std::size_t level_start = 0;
    for (std::size_t i = 0; i < f.size(); ++i) {
        const char c = f[i];
        if (c == '/') {
            level_start = i + 1;
            continue;
        }
        if (c != '+' && c != '#') continue;
        const bool alone = i == level_start && (i + 1 == f.size() || f[i + 1] == '/');
        if (!alone) return false;
        if (c == '#' && i + 1 != f.size()) return false;
    }
    return true;
}

}  // namespace

bool has_wildcard(std::string_view filter) noexcept {
    return filter.find_first_of("+#") != std::string_view::npos;
}

bool valid_topic_name(std::string_view topic) noexcept {
    return !topic.empty() && !has_wildcard(topic);
}

std::optional<shared_filter> parse_shared(std::string_view filter) noexcept {
    if (!filter.starts_with(share_prefix)) return std::nullopt;
    const auto rest = filter.substr(share_prefix.size());
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    return shared_filter{rest.substr(0, slash), rest.substr(slash + 1)};
}

// [MQTT-4.8.2-1], [MQTT-4.8.2-2]: a share name of at least one character, free of
// '/', '+' and '#', followed by '/' and a topic filter.
bool valid_topic_filter(std::string_view filter) noexcept {
    if (!filter.starts_with(share_prefix)) return valid_plain_filter(filter);
    const auto shared = parse_shared(filter);
    return shared && !shared->group.empty() && !has_wildcard(shared->group) &&
           valid_plain_filter(shared->filter);
}

bool topic_matches(std::string_view filter, std::string_view topic) noexcept {
    if (filter.empty() || topic.empty()) return false;
    if (topic.front() == '$' && (filter.front() == '+' || filter.front() == '#')) return false;
    std::size_t fi = 0, ti = 0;
    for (;;) {
        auto fe = filter.find('/', fi);
        if (fe == std::string_view::npos) fe = filter.size();
        const auto level = filter.substr(fi, fe - fi);
        // '#' also matches the parent level: "sport/#" matches "sport".
        if (level == "#") return true;
        if (ti > topic.size()) return false;  // the topic has no more levels
        auto te = topic.find('/', ti);
        if (te == std::string_view::npos) te = topic.size();
        if (level != "+" && level != topic.substr(ti, te - ti)) return false;
        if (fe == filter.size()) return te == topic.size();
        fi = fe + 1;
        ti = te + 1;
    }
}

}  // namespace mqtt
