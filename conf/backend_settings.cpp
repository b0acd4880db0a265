#include "conf/backend_settings.hpp"

#include <algorithm>
#include <cctype>
#include <limits>
#include <map>
#include <optional>

#include "conf/entry_values.hpp"

namespace conf {
namespace {

constexpr std::string_view pgsql_prefix = "backend.pgsql.";

[[noreturn]] void unknown_key(const entry& e) {
    throw config_error(e.where, fmt::format("unknown key \"{}\"", e.key));
}

// host[:port], IPv6 as [::1] or [::1]:5432.
void read_server(pool_settings& p, const entry& e) {
    const auto fail = [&] { bad_value(e, "host[:port], such as 127.0.0.1:5432, db.example or [::1]:5432"); };
    std::string_view v = e.value;
    std::optional<std::string_view> port;
    if (v.starts_with('[')) {
        const auto close = v.find(']');
        if (close == std::string_view::npos) fail();
        const auto after = v.substr(close + 1);
        if (!after.empty() && !after.starts_with(':')) fail();
        if (!after.empty()) port = after.substr(1);
        v = v.substr(1, close - 1);
    } else if (const auto colon = v.find(':'); colon != std::string_view::npos) {
        port = v.substr(colon + 1);
        v = v.substr(0, colon);
    }
    const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
    if (v.empty() || std::any_of(v.begin(), v.end(), space)) fail();
    p.host = std::string(v);
    if (!port) return;
    const auto n = parse_uint(*port);
    if (!n || *n < 1 || *n > 65535) fail();
    p.port = static_cast<std::uint16_t>(*n);
}

bool read_pool_key(pool_settings& p, const entry& e, std::string_view field) {
    if (field == "server")
        read_server(p, e);
    else if (field == "pool_size")
        p.pool_size = to_uint(e, 1u, 1024u);
    else if (field == "username")
        p.username = e.value;
    else if (field == "password")
        p.password = e.value;
    else if (field == "database")
        p.database = e.value;
    else if (field == "ssl")
        p.ssl = to_bool(e);
    else if (field == "ssl_opts.cacertfile")
        p.cacertfile = to_nonempty(e);
    else if (field == "ssl_opts.certfile")
        p.certfile = to_nonempty(e);
    else if (field == "ssl_opts.keyfile")
        p.keyfile = to_nonempty(e);
    else if (field == "ssl_opts.verify")
        p.verify = to_enum(e, std::array{std::pair{std::string_view("verify_peer"), ssl_verify::verify_peer},
                                         std::pair{std::string_view("verify_none"), ssl_verify::verify_none}});
    else
        return false;
    return true;
}

bool read_global(backend_settings& s, const entry& e, std::string_view name) {
    const bool infinity = e.value == "infinity";
    if (name == "max_returned_count") {
        if (infinity)
            s.offline.max_returned_count.reset();
        else if (const auto n = parse_uint(e.value))
            s.offline.max_returned_count = *n;
        else
            bad_value(e, "a count or infinity");
    } else if (name == "time_range") {
        if (infinity)
            s.offline.time_range.reset();
        else if (const auto d = parse_duration(e.value))
            s.offline.time_range = *d;
        else
            bad_value(e, "a duration such as 30m, 2h or 1d, or infinity");
    } else if (name == "publish_ack") {
        s.publish_ack = to_enum(e, std::array{std::pair{std::string_view("after_commit"), ack_mode::after_commit},
                                              std::pair{std::string_view("async"), ack_mode::async}});
    } else if (name == "max_pending") {
        s.max_pending = to_uint<std::uint64_t>(e, 1);
    } else if (name == "max_pending_bytes") {
        s.max_pending_bytes = to_size(e, 1, std::numeric_limits<std::uint64_t>::max());
    } else if (name == "batch_size") {
        s.batch_size = to_uint<std::uint32_t>(e, 1);
    } else if (name == "batch_delay") {
        s.batch_delay = to_duration(e);
    } else {
        return false;
    }
    return true;
}

bool valid_pool_name(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    });
}

}  // namespace

const pool_settings* backend_settings::find_pool(std::string_view name) const noexcept {
    const auto it = std::find_if(pools.begin(), pools.end(), [&](const auto& p) { return p.name == name; });
    return it == pools.end() ? nullptr : &*it;
}

backend_settings parse_backend_settings(const std::vector<entry>& entries) {
    backend_settings s;
    std::vector<const entry*> hook_entries;  // read last: they need the pools and the defaults
    std::map<std::string, origin, std::less<>> ssl_opts_at;
    for (const auto& e : entries) {
        if (!e.key.starts_with("backend.")) continue;
        if (!e.key.starts_with(pgsql_prefix)) unknown_key(e);
        const auto rest = std::string_view(e.key).substr(pgsql_prefix.size());
        if (rest.starts_with("hook.")) {
            hook_entries.push_back(&e);
            continue;
        }
        const auto dot = rest.find('.');
        if (dot == std::string_view::npos) {
            if (!read_global(s, e, rest)) unknown_key(e);
            continue;
        }
        const auto name = rest.substr(0, dot);
        const auto field = rest.substr(dot + 1);
        if (!valid_pool_name(name)) unknown_key(e);
        auto it = std::find_if(s.pools.begin(), s.pools.end(), [&](const auto& p) { return p.name == name; });
        if (it == s.pools.end()) {
            s.pools.push_back({.name = std::string(name), .where = e.where});
            it = std::prev(s.pools.end());
        }
        if (!read_pool_key(*it, e, field)) unknown_key(e);
        if (field.starts_with("ssl_opts.")) ssl_opts_at.try_emplace(std::string(name), e.where);
    }
    for (const auto& p : s.pools) {
        if (p.host.empty())
            throw config_error(p.where, fmt::format("pool {} has no backend.pgsql.{}.server", p.name, p.name));
        if (const auto at = ssl_opts_at.find(p.name); at != ssl_opts_at.end() && !p.ssl)
            throw config_error(at->second, fmt::format("ssl_opts of pool {} need backend.pgsql.{}.ssl = true",
                                                       p.name, p.name));
    }
    for (const auto* e : hook_entries) {
        auto h = parse_hook(*e, s.offline);
        if (!s.find_pool(h.pool))
            throw config_error(e->where, fmt::format("{}: unknown pool \"{}\"", e->key, h.pool));
        s.hooks.push_back(std::move(h));
    }
    std::sort(s.hooks.begin(), s.hooks.end(),
              [](const hook& a, const hook& b) { return std::pair(a.point, a.number) < std::pair(b.point, b.number); });
    return s;
}

}  // namespace conf
