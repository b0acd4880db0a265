#pragma once
// The broker's own settings: every key outside `backend.*`, typed, with defaults.
// Key names follow EMQX 4.x where EMQX has one.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config_file.hpp"

namespace conf {

// listener.tcp.<name> = [IP:]PORT, listener.ws.<name> = [IP:]PORT; IPv6 as [::1]:1883.
struct listener {
    enum class kind { tcp, ws };
    kind type = kind::tcp;
    std::string name;
    std::string address;  // an IP literal; IPv6 without brackets
    std::uint16_t port = 0;
};

enum class log_level { debug, info, warning, error };

struct broker_settings {
    // In file order; tcp "external" on 0.0.0.0:1883 when no tcp listener is given.
    std::vector<listener> listeners;
    std::string node_name;  // default mqttd@<hostname>
    unsigned threads = 0;   // 0: one per core

    std::uint32_t max_packet_size = 1u << 20;
    std::uint16_t max_clientid_len = 65535;
    std::uint32_t max_topic_levels = 0;  // 0: unlimited
    std::uint16_t max_inflight = 32;
    std::uint32_t max_mqueue_len = 1000;  // 0: no count limit (max_mqueue_bytes still holds)
    std::uint64_t max_mqueue_bytes = 64ull << 20;
    bool mqueue_store_qos0 = true;
    std::chrono::milliseconds session_expiry_interval = std::chrono::hours(2);  // 0: the session ends at disconnect
    double keepalive_backoff = 0.75;  // a client is dropped after keepalive * backoff * 2
    std::uint16_t max_awaiting_rel = 100;  // 0: unlimited, as in EMQX
    std::chrono::milliseconds await_rel_timeout = std::chrono::seconds(300);
    std::chrono::milliseconds retry_interval = std::chrono::seconds(30);
    std::uint16_t max_topic_alias = 100;
    std::uint16_t max_topic_alias_out = 64;  // 0: the broker sends no topic aliases
    bool retain_available = true;
    bool wildcard_subscription = true;
    bool shared_subscription = true;
    std::uint8_t max_qos_allowed = 2;
    std::uint16_t server_keepalive = 0;  // 0: not set; the client's keepalive holds
    std::uint16_t max_keepalive = 0;     // 0: no cap
    bool allow_anonymous = true;
    std::string password_file;  // auth.password_file; empty: none
    std::string acl_file;       // EMQX's acl.conf format; empty: none
    bool acl_nomatch_allow = true;     // acl_nomatch = allow|deny (EMQX: allow)
    bool acl_deny_disconnect = false;  // acl_deny_action = ignore|disconnect (EMQX: ignore)
    log_level log = log_level::info;
    std::chrono::milliseconds sys_interval = std::chrono::minutes(1);  // 0: no $SYS messages
};

// Reads every entry whose key does not start with `backend.`; an unknown key or a bad
// value throws config_error naming its file and line.
broker_settings parse_broker_settings(const std::vector<entry>& entries, std::string_view hostname);

}  // namespace conf
