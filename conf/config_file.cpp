#include "conf/config_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <unordered_map>

#include <fmt/format.h>

namespace conf {
namespace {

constexpr std::string_view whitespace = " \t\r\f\v";

std::string_view trim(std::string_view s) {
    const auto first = s.find_first_not_of(whitespace);
    if (first == std::string_view::npos) return {};
    return s.substr(first, s.find_last_not_of(whitespace) - first + 1);
}

std::string where_text(const origin& where) {
    return where.line == 0 ? where.file : fmt::format("{}:{}", where.file, where.line);
}

}  // namespace

config_error::config_error(const origin& where, std::string_view message)
    : std::runtime_error(fmt::format("{}: {}", where_text(where), message)) {}

std::vector<entry> parse_config(std::string_view text, const std::string& file) {
    // A byte order mark from a Windows editor would otherwise glue onto the first key.
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    std::vector<entry> entries;
    unsigned line_no = 0;
    while (!text.empty()) {
        const auto eol = text.find('\n');
        const auto line = trim(text.substr(0, eol));
        text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
        ++line_no;
        if (line.empty() || line.front() == '#') continue;
        const origin where{file, line_no};
        const auto eq = line.find('=');
        if (eq == std::string_view::npos) throw config_error(where, "expected `key = value`");
        const auto key = trim(line.substr(0, eq));
        if (key.empty()) throw config_error(where, "empty key");
        if (key.find_first_of(whitespace) != std::string_view::npos)
            throw config_error(where, fmt::format("key \"{}\" contains whitespace", key));
        entries.push_back({std::string(key), std::string(trim(line.substr(eq + 1))), where});
    }
    return entries;
}

std::vector<entry> read_config_files(const std::vector<std::string>& paths) {
    std::vector<entry> all;
    for (const auto& path : paths) {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw config_error({path, 0}, fmt::format("cannot read: {}", std::strerror(errno)));
        std::ostringstream text;
        text << in.rdbuf();
        auto entries = parse_config(text.str(), path);
        std::move(entries.begin(), entries.end(), std::back_inserter(all));
    }
    std::unordered_map<std::string_view, std::size_t> last;
    for (std::size_t i = 0; i < all.size(); ++i) last[all[i].key] = i;
    std::vector<bool> wins(all.size());
    for (const auto& [key, i] : last) wins[i] = true;
    std::vector<entry> effective;
    effective.reserve(last.size());
    for (std::size_t i = 0; i < all.size(); ++i)
        if (wins[i]) effective.push_back(std::move(all[i]));
    return effective;
}

}  // namespace conf

