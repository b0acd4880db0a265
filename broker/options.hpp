#pragma once
// What the running broker needs to know, already typed and validated (main fills it
// from the configuration; tests fill it directly).
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "auth/acl.hpp"
#include "auth/password_hash.hpp"

namespace mqttd {

struct listener_options {
    enum class kind : std::uint8_t { tcp, websocket };
    kind type = kind::tcp;
    std::string address = "0.0.0.0";
    std::uint16_t port = 1883;
};

struct broker_options {
    std::vector<listener_options> listeners{listener_options{}};
    std::string node_name = "mqttd@localhost";
    unsigned threads = 1;

    std::uint32_t max_packet_size = 1u << 20;
    std::size_t max_clientid_len = 65535;
    std::uint16_t max_inflight = 32;
    std::size_t max_mqueue_len = 1000;
    std::size_t max_mqueue_bytes = 64u << 20;
    bool mqueue_store_qos0 = true;
    std::uint32_t session_expiry_interval = 7200;  // seconds; 0: sessions end at disconnect
    double keepalive_backoff = 0.75;               // the broker allows keep-alive x backoff x 2
    std::size_t max_awaiting_rel = 100;  // QoS 2 ids awaiting PUBREL per client; 0: no limit
    std::chrono::milliseconds await_rel_timeout{300'000};
    std::uint32_t max_topic_levels = 0;  // 0: no limit
    // Per connection; what their topic names may hold in bytes is bounded apart (see
    // connection_rules::alias_bytes_bound).
    std::uint16_t max_topic_alias = 100;
    // Aliases the broker assigns on its PUBLISH packets to a 5.0 client (at most the
    // client's Topic Alias Maximum); 0: none.
    std::uint16_t max_topic_alias_out = 64;
    bool retain_available = true;
    // Send matching retained messages from memory on SUBSCRIBE. Off when a backend
    // serves them from its own store (on_retain_lookup), so they are not sent twice.
    bool retained_on_subscribe = true;
    bool wildcard_subscription = true;
    bool shared_subscription = true;
    std::uint8_t max_qos_allowed = 2;
    std::uint16_t server_keepalive = 0;  // 0: the client's keep-alive stands
    std::uint16_t max_keepalive = 0;     // a cap on what clients may ask for; 0: none
    bool allow_anonymous = true;
    // user name -> stored password (auth.password_file)
    std::unordered_map<std::string, std::shared_ptr<const auth::password_hash>> passwords;
    // acl_file's rules, tried in order; none: acl_nomatch decides alone.
    std::shared_ptr<const std::vector<auth::acl_rule>> acl;
    bool acl_nomatch_allow = true;
    bool acl_deny_disconnect = false;
    std::chrono::seconds sys_interval{60};  // 0: no $SYS topics
    std::chrono::seconds connect_timeout{10};
};

}  // namespace mqttd
