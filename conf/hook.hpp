#pragma once
// One persistence hook: `backend.pgsql.hook.<hookpoint>.<n> = <JSON>`, where the JSON
// names an action (a built-in function or SQL statements), the pool it runs on, an
// optional topic filter and, for on_message_fetch, offline_opts.
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "conf/config_file.hpp"
#include "conf/sql_template.hpp"

namespace conf {

enum class hookpoint {
    client_connected,
    client_disconnected,
    session_subscribed,
    session_unsubscribed,
    message_publish,
    message_acked,
    message_delivered,
};
std::string_view to_string(hookpoint p) noexcept;  // "client.connected", ...
// The ${name} variables a SQL action on this hookpoint may use.
std::span<const std::string_view> sql_variables(hookpoint p) noexcept;

enum class hook_function {
    on_client_connected,     // client.connected
    on_subscribe_lookup,     // client.connected
    on_client_disconnected,  // client.disconnected
    on_message_fetch,        // session.subscribed
    on_retain_lookup,        // session.subscribed
    on_message_publish,      // message.publish
    on_message_store,        // message.publish
    on_message_retain,       // message.publish
    on_retain_delete,        // message.publish
    on_message_acked,        // message.acked
};
std::string_view to_string(hook_function f) noexcept;

// Bounds on one offline-message fetch; nullopt is EMQX's `infinity`.
struct offline_limits {
    std::optional<std::uint64_t> max_returned_count;
    std::optional<std::chrono::milliseconds> time_range;
};

struct hook {
    hookpoint point = hookpoint::client_connected;
    std::uint32_t number = 0;  // the <n> of the key: hooks of one hookpoint run in this order
    std::string topic;         // a topic filter; empty: every topic
    std::string pool;
    std::variant<hook_function, std::vector<sql_statement>> action;
    // For on_message_fetch: the backend.pgsql.* defaults, overridden by offline_opts.
    offline_limits offline;
    origin where;  // for messages at run time
};

// Parses one `backend.pgsql.hook.*` entry: the hookpoint and number from its key, the
// rest from its JSON value. Does not check that the pool exists (the caller knows the
// pools). Throws config_error naming the entry's file, line and key.
hook parse_hook(const entry& e, const offline_limits& defaults);

}  // namespace conf
