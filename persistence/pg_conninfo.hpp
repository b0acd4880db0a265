#pragma once
// libpq connection parameters as keyword/value pairs, the form PQconnectStartParams
// takes. Kept as pairs rather than a "key=value" string so that no value ever needs
// quoting or escaping.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mqttd::pg {

class conninfo {
public:
    conninfo() = default;

    // Parses a libpq conninfo string ("host=... port=...") or URI ("postgresql://...");
    // nullopt with `error` set when libpq rejects it.
    static std::optional<conninfo> parse(std::string_view text, std::string& error);

    // Sets (or replaces) a keyword; an empty value removes it.
    conninfo& set(std::string_view keyword, std::string_view value);
    // The value of a keyword, or "" when it is not set.
    std::string_view get(std::string_view keyword) const noexcept;

    const std::vector<std::pair<std::string, std::string>>& entries() const noexcept { return entries_; }

    // "user@host:port/dbname" for log lines; never the password.
    std::string describe() const;

private:
    std::vector<std::pair<std::string, std::string>> entries_;
};

}  // namespace mqttd::pg
