#include "persistence/topic_sql.hpp"

#include <vector>

#include "protocol/topic.hpp"

namespace mqttd::persistence {
namespace {

std::vector<std::string_view> levels(std::string_view filter) {
    std::vector<std::string_view> out;
    for (std::size_t start = 0;;) {
        const auto end = filter.find('/', start);
        out.push_back(filter.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
        if (end == std::string_view::npos) return out;
        start = end + 1;
    }
}

bool ascii_alnum(unsigned char c) noexcept {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

}  // namespace

std::string like_escape(std::string_view literal) {
    std::string out;
    out.reserve(literal.size() + 4);
    for (char c : literal) {
        if (c == '%' || c == '_' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    return out;
}

std::string regex_escape(std::string_view literal) {
    // In an ARE a backslash before a non-alphanumeric character makes it literal. Bytes
    // of multi-byte UTF-8 characters are never metacharacters and stay as they are.
    std::string out;
    out.reserve(literal.size() * 2);
    for (char ch : literal) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x80 && !ascii_alnum(c)) out.push_back('\\');
        out.push_back(ch);
    }
    return out;
}

topic_condition filter_condition(std::string_view filter) {
    topic_condition t;
    if (!mqtt::has_wildcard(filter)) return t;
    t.exact = false;

    const auto lv = levels(filter);
    // LIKE prefix: the literal levels before the first wildcard. "a/b/#" matches "a/b"
    // itself, so the separator before a '#' is not part of the prefix.
    std::string prefix;
    for (std::size_t i = 0; i < lv.size(); ++i) {
        if (lv[i] == "#") break;
        if (lv[i] == "+") {
            if (i > 0) prefix += '/';
            break;
        }
        if (i > 0) prefix += '/';
        prefix += lv[i];
    }
    t.like = like_escape(prefix) + "%";

    std::string re = "^";
    for (std::size_t i = 0; i < lv.size(); ++i) {
        const bool first = i == 0;
        if (lv[i] == "#") {
            // The parent level itself, or '/' and anything below it.
            re += first ? "([^$].*)?" : "(/.*)?";
            break;
        }
        if (!first) re += '/';
        if (lv[i] == "+")
            re += first ? "([^$/][^/]*)?" : "[^/]*";
        else
            re += regex_escape(lv[i]);
    }
    re += '$';
    t.regex = std::move(re);
    return t;
}

}  // namespace mqttd::persistence
