#include "conf/broker_settings.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <map>

#include "conf/entry_values.hpp"

namespace conf {
namespace {

bool valid_ip(int family, const std::string& text) {
    unsigned char buf[16];
    return inet_pton(family, text.c_str(), buf) == 1;
}

listener to_listener(const entry& e, listener::kind type, std::string name) {
    const auto fail = [&] { bad_value(e, "[IP:]PORT, such as 1883, 127.0.0.1:1883 or [::1]:1883"); };
    listener l{type, std::move(name), "0.0.0.0", 0};
    std::string_view v = e.value;
    if (v.starts_with('[')) {
        const auto close = v.find("]:");
        if (close == std::string_view::npos) fail();
        l.address = std::string(v.substr(1, close - 1));
        if (!valid_ip(AF_INET6, l.address)) fail();
        v.remove_prefix(close + 2);
    } else if (const auto colon = v.rfind(':'); colon != std::string_view::npos) {
        l.address = std::string(v.substr(0, colon));
        if (!valid_ip(AF_INET, l.address)) fail();
        v.remove_prefix(colon + 1);
    }
    const auto port = parse_uint(v);
    if (!port || *port < 1 || *port > 65535) fail();
    l.port = static_cast<std::uint16_t>(*port);
    return l;
}

// listener.<tcp|ws>.<name>: a name is letters, digits, '_' and '-' (no dots, so EMQX's
// per-listener option keys such as listener.tcp.external.acceptors stay unknown keys).
bool parse_listener(broker_settings& s, const entry& e) {
    for (const auto& [prefix, type] : {std::pair{std::string_view("listener.tcp."), listener::kind::tcp},
                                       std::pair{std::string_view("listener.ws."), listener::kind::ws}}) {
        if (!e.key.starts_with(prefix)) continue;
        const std::string_view name = std::string_view(e.key).substr(prefix.size());
        const bool valid = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
        });
        if (!valid) return false;
        s.listeners.push_back(to_listener(e, type, std::string(name)));
        return true;
    }
    return false;
}

using setter = void (*)(broker_settings&, const entry&);

const std::map<std::string_view, setter>& setters() {
    using ms = std::chrono::milliseconds;
    static const std::map<std::string_view, setter> table{
        {"node.name", [](broker_settings& s, const entry& e) { s.node_name = to_nonempty(e); }},
        {"node.threads", [](broker_settings& s, const entry& e) { s.threads = to_uint(e, 0u, 1024u); }},
        {"mqtt.max_packet_size",
         // 268435455 bytes of remaining length plus the 5-byte fixed header.
         [](broker_settings& s, const entry& e) {
             s.max_packet_size = static_cast<std::uint32_t>(to_size(e, 2, 268'435'460));
         }},
        // MQTT requires servers to accept client ids of 1..23 characters [MQTT-3.1.3-5].
        {"mqtt.max_clientid_len",
         [](broker_settings& s, const entry& e) { s.max_clientid_len = to_uint<std::uint16_t>(e, 23); }},
        {"mqtt.max_topic_levels",
         [](broker_settings& s, const entry& e) { s.max_topic_levels = to_uint<std::uint32_t>(e, 0); }},
        {"mqtt.max_inflight",
         [](broker_settings& s, const entry& e) { s.max_inflight = to_uint<std::uint16_t>(e, 1); }},
        {"mqtt.max_mqueue_len",
         [](broker_settings& s, const entry& e) { s.max_mqueue_len = to_uint<std::uint32_t>(e, 0); }},
        {"mqtt.max_mqueue_bytes",
         [](broker_settings& s, const entry& e) {
             s.max_mqueue_bytes = to_size(e, 1, std::numeric_limits<std::uint64_t>::max());
         }},
        {"mqtt.mqueue_store_qos0", [](broker_settings& s, const entry& e) { s.mqueue_store_qos0 = to_bool(e); }},
        // MQTT 5 carries the interval as a 32-bit count of seconds.
        {"mqtt.session_expiry_interval",
         [](broker_settings& s, const entry& e) { s.session_expiry_interval = to_duration(e, ms(4'294'967'295'000)); }},
        {"mqtt.keepalive_backoff",
         [](broker_settings& s, const entry& e) { s.keepalive_backoff = to_positive_double(e); }},
        {"mqtt.max_awaiting_rel",
         [](broker_settings& s, const entry& e) { s.max_awaiting_rel = to_uint<std::uint16_t>(e, 0); }},
        {"mqtt.await_rel_timeout", [](broker_settings& s, const entry& e) { s.await_rel_timeout = to_duration(e); }},
        {"mqtt.retry_interval", [](broker_settings& s, const entry& e) { s.retry_interval = to_duration(e); }},
        {"mqtt.max_topic_alias",
         [](broker_settings& s, const entry& e) { s.max_topic_alias = to_uint<std::uint16_t>(e, 0); }},
        {"mqtt.max_topic_alias_out",
         [](broker_settings& s, const entry& e) { s.max_topic_alias_out = to_uint<std::uint16_t>(e, 0); }},
        {"mqtt.retain_available", [](broker_settings& s, const entry& e) { s.retain_available = to_bool(e); }},
        {"mqtt.wildcard_subscription",
         [](broker_settings& s, const entry& e) { s.wildcard_subscription = to_bool(e); }},
        {"mqtt.shared_subscription", [](broker_settings& s, const entry& e) { s.shared_subscription = to_bool(e); }},
        {"mqtt.max_qos_allowed",
         [](broker_settings& s, const entry& e) { s.max_qos_allowed = to_uint<std::uint8_t>(e, 0, 2); }},
        {"mqtt.server_keepalive",
         [](broker_settings& s, const entry& e) { s.server_keepalive = to_uint<std::uint16_t>(e, 0); }},
        {"mqtt.max_keepalive",
         [](broker_settings& s, const entry& e) { s.max_keepalive = to_uint<std::uint16_t>(e, 0); }},
        {"allow_anonymous", [](broker_settings& s, const entry& e) { s.allow_anonymous = to_bool(e); }},
        {"auth.password_file", [](broker_settings& s, const entry& e) { s.password_file = e.value; }},
        {"acl_file", [](broker_settings& s, const entry& e) { s.acl_file = e.value; }},
        {"acl_nomatch",
         [](broker_settings& s, const entry& e) {
             s.acl_nomatch_allow =
                 to_enum(e, std::array{std::pair{std::string_view("allow"), true}, std::pair{std::string_view("deny"), false}});
         }},
        {"acl_deny_action",
         [](broker_settings& s, const entry& e) {
             s.acl_deny_disconnect = to_enum(e, std::array{std::pair{std::string_view("ignore"), false},
                                                           std::pair{std::string_view("disconnect"), true}});
         }},
        {"log.level",
         [](broker_settings& s, const entry& e) {
             s.log = to_enum(e, std::array{std::pair{std::string_view("debug"), log_level::debug},
                                           std::pair{std::string_view("info"), log_level::info},
                                           std::pair{std::string_view("warning"), log_level::warning},
                                           std::pair{std::string_view("error"), log_level::error}});
         }},
        {"sys_interval", [](broker_settings& s, const entry& e) { s.sys_interval = to_duration(e); }},
    };
    return table;
}

}  // namespace

broker_settings parse_broker_settings(const std::vector<entry>& entries, std::string_view hostname) {
    broker_settings s;
    s.node_name = fmt::format("mqttd@{}", hostname);
    for (const auto& e : entries) {
        if (e.key.starts_with("backend.")) continue;
        if (const auto it = setters().find(e.key); it != setters().end())
            it->second(s, e);
        else if (!parse_listener(s, e))
            throw config_error(e.where, fmt::format("unknown key \"{}\"", e.key));
    }
    const bool has_tcp = std::any_of(s.listeners.begin(), s.listeners.end(),
                                     [](const listener& l) { return l.type == listener::kind::tcp; });
    if (!has_tcp) s.listeners.insert(s.listeners.begin(), listener{listener::kind::tcp, "external", "0.0.0.0", 1883});
    return s;
}

}  // namespace conf
