#include <doctest/doctest.h>

#include "conf/broker_settings.hpp"
#include "temp_config.hpp"

using namespace std::chrono_literals;
using conf::listener;
using conf::log_level;
using conf_test::load;
using conf_test::load_error;

TEST_CASE("broker defaults") {
    const auto b = load("").broker;
    REQUIRE(b.listeners.size() == 1);
    CHECK(b.listeners[0].type == listener::kind::tcp);
    CHECK(b.listeners[0].name == "external");
    CHECK(b.listeners[0].address == "0.0.0.0");
    CHECK(b.listeners[0].port == 1883);
    CHECK(b.node_name == "mqttd@testhost");
    CHECK(b.threads == 0);
    CHECK(b.max_packet_size == 1048576);
    CHECK(b.max_clientid_len == 65535);
    CHECK(b.max_topic_levels == 0);
    CHECK(b.max_inflight == 32);
    CHECK(b.max_mqueue_len == 1000);
    CHECK(b.max_mqueue_bytes == 64u << 20);
    CHECK(b.mqueue_store_qos0);
    CHECK(b.session_expiry_interval == 2h);
    CHECK(b.keepalive_backoff == 0.75);
    CHECK(b.max_awaiting_rel == 100);
    CHECK(b.await_rel_timeout == 300s);
    CHECK(b.retry_interval == 30s);
    CHECK(b.max_topic_alias == 100);
    CHECK(b.max_keepalive == 0);
    CHECK(b.max_topic_alias_out == 64);
    CHECK(b.retain_available);
    CHECK(b.wildcard_subscription);
    CHECK(b.shared_subscription);
    CHECK(b.max_qos_allowed == 2);
    CHECK(b.server_keepalive == 0);
    CHECK(b.allow_anonymous);
    CHECK(b.password_file.empty());
    CHECK(b.log == log_level::info);
    CHECK(b.sys_interval == 1min);
}

TEST_CASE("every broker key set") {
    const auto b = load(
                       "node.name = mqttd@10.0.0.1\n"
                       "node.threads = 4\n"
                       "mqtt.max_packet_size = 64KB\n"
                       "mqtt.max_clientid_len = 1024\n"
                       "mqtt.max_topic_levels = 8\n"
                       "mqtt.max_inflight = 65535\n"
                       "mqtt.max_mqueue_len = 0\n"
                       "mqtt.max_mqueue_bytes = 1GB\n"
                       "mqtt.mqueue_store_qos0 = false\n"
                       "mqtt.session_expiry_interval = 0\n"
                       "mqtt.keepalive_backoff = 1\n"
                       "mqtt.max_awaiting_rel = 0\n"
                       "mqtt.await_rel_timeout = 1m\n"
                       "mqtt.retry_interval = 500ms\n"
                       "mqtt.max_topic_alias = 0\n"
                       "mqtt.max_topic_alias_out = 3\n"
                       "mqtt.retain_available = off\n"
                       "mqtt.wildcard_subscription = false\n"
                       "mqtt.shared_subscription = off\n"
                       "mqtt.max_qos_allowed = 1\n"
                       "mqtt.server_keepalive = 120\n"
                       "allow_anonymous = false\n"
                       "auth.password_file = /etc/mqttd/passwd\n"
                       "log.level = debug\n"
                       "sys_interval = 0\n")
                       .broker;
    CHECK(b.node_name == "mqttd@10.0.0.1");
    CHECK(b.threads == 4);
    CHECK(b.max_packet_size == 65536);
    CHECK(b.max_clientid_len == 1024);
    CHECK(b.max_topic_levels == 8);
    CHECK(b.max_inflight == 65535);
    CHECK(b.max_mqueue_len == 0);
    CHECK(b.max_mqueue_bytes == 1u << 30);
    CHECK(!b.mqueue_store_qos0);
    CHECK(b.session_expiry_interval == 0s);
    CHECK(b.keepalive_backoff == 1.0);
    CHECK(b.max_awaiting_rel == 0);
    CHECK(b.await_rel_timeout == 60s);
    CHECK(b.retry_interval == 500ms);
    CHECK(b.max_topic_alias == 0);
    CHECK(b.max_topic_alias_out == 3);
    CHECK(!b.retain_available);
    CHECK(!b.wildcard_subscription);
    CHECK(!b.shared_subscription);
    CHECK(b.max_qos_allowed == 1);
    CHECK(b.server_keepalive == 120);
    CHECK(!b.allow_anonymous);
    CHECK(b.password_file == "/etc/mqttd/passwd");
    CHECK(b.log == log_level::debug);
    CHECK(b.sys_interval == 0s);
}

TEST_CASE("booleans: true, false, on, off") {
    CHECK(load("allow_anonymous = on\n").broker.allow_anonymous);
    CHECK(load("allow_anonymous = true\n").broker.allow_anonymous);
    CHECK(!load("allow_anonymous = off\n").broker.allow_anonymous);
    CHECK(!load("allow_anonymous = false\n").broker.allow_anonymous);
    CHECK(load_error("\nallow_anonymous = yes\n") ==
          "FILE:2: allow_anonymous: bad value \"yes\": expected true, false, on or off");
}

TEST_CASE("log levels") {
    CHECK(load("log.level = warning\n").broker.log == log_level::warning);
    CHECK(load("log.level = error\n").broker.log == log_level::error);
    CHECK(load_error("log.level = verbose\n") ==
          "FILE:1: log.level: bad value \"verbose\": expected one of debug info warning error");
}

TEST_CASE("listeners: tcp and ws, several, IPv4 and IPv6") {
    const auto b = load(
                       "listener.tcp.external = 0.0.0.0:1883\n"
                       "listener.tcp.internal = 127.0.0.1:11883\n"
                       "listener.ws.external = 8083\n"
                       "listener.tcp.v6 = [::1]:1884\n")
                       .broker;
    REQUIRE(b.listeners.size() == 4);
    CHECK(b.listeners[0].name == "external");
    CHECK(b.listeners[0].port == 1883);
    CHECK(b.listeners[1].type == listener::kind::tcp);
    CHECK(b.listeners[1].name == "internal");
    CHECK(b.listeners[1].address == "127.0.0.1");
    CHECK(b.listeners[1].port == 11883);
    CHECK(b.listeners[2].type == listener::kind::ws);
    CHECK(b.listeners[2].address == "0.0.0.0");
    CHECK(b.listeners[2].port == 8083);
    CHECK(b.listeners[3].address == "::1");
    CHECK(b.listeners[3].port == 1884);
}

TEST_CASE("a ws listener alone keeps the default tcp listener; a tcp listener replaces it") {
    const auto ws_only = load("listener.ws.external = 8083\n").broker;
    REQUIRE(ws_only.listeners.size() == 2);
    CHECK(ws_only.listeners[0].type == listener::kind::tcp);
    CHECK(ws_only.listeners[0].port == 1883);
    CHECK(ws_only.listeners[1].type == listener::kind::ws);

    const auto tcp = load("listener.tcp.external = 2883\n").broker;
    REQUIRE(tcp.listeners.size() == 1);
    CHECK(tcp.listeners[0].port == 2883);
}

TEST_CASE("bad listener addresses") {
    const std::string expected = "expected [IP:]PORT, such as 1883, 127.0.0.1:1883 or [::1]:1883";
    for (const char* value : {"0", "65536", "localhost:1883", "[::1]1883", "::1:1883", "[1.2.3.4]:1883",
                              "1.2.3:1883", "", ":1883", "[::1]:", "-1"}) {
        const std::string text = fmt::format("listener.tcp.external = {}\n", value);
        const auto trimmed = conf::parse_config(text, "x")[0].value;
        CHECK_MESSAGE(load_error(text) ==
                          fmt::format("FILE:1: listener.tcp.external: bad value \"{}\": {}", trimmed, expected),
                      value);
    }
    CHECK(load_error("\nlistener.tcp.external.acceptors = 16\n") ==
          "FILE:2: unknown key \"listener.tcp.external.acceptors\"");
    CHECK(load_error("listener.tcp. = 1883\n") == "FILE:1: unknown key \"listener.tcp.\"");
    CHECK(load_error("listener.ssl.external = 8883\n") == "FILE:1: unknown key \"listener.ssl.external\"");
}

TEST_CASE("numeric ranges") {
    CHECK(load("mqtt.max_packet_size = 268435460\n").broker.max_packet_size == 268435460);
    CHECK(load_error("mqtt.max_packet_size = 268435461\n") ==
          "FILE:1: mqtt.max_packet_size: bad value \"268435461\": "
          "expected a size such as 256, 64KB or 1MB, in 2..268435460 bytes");
    CHECK(load_error("mqtt.max_packet_size = 1TB\n") ==
          "FILE:1: mqtt.max_packet_size: bad value \"1TB\": "
          "expected a size such as 256, 64KB or 1MB, in 2..268435460 bytes");
    CHECK(load_error("mqtt.max_inflight = 0\n") ==
          "FILE:1: mqtt.max_inflight: bad value \"0\": expected an integer in 1..65535");
    CHECK(load_error("mqtt.max_inflight = 65536\n") ==
          "FILE:1: mqtt.max_inflight: bad value \"65536\": expected an integer in 1..65535");
    CHECK(load_error("mqtt.max_qos_allowed = 3\n") ==
          "FILE:1: mqtt.max_qos_allowed: bad value \"3\": expected an integer in 0..2");
    CHECK(load_error("mqtt.max_clientid_len = 22\n") ==
          "FILE:1: mqtt.max_clientid_len: bad value \"22\": expected an integer in 23..65535");
    CHECK(load_error("mqtt.max_mqueue_len = -1\n") ==
          "FILE:1: mqtt.max_mqueue_len: bad value \"-1\": expected an integer in 0..4294967295");
    CHECK(load_error("mqtt.max_mqueue_bytes = 0\n") ==
          "FILE:1: mqtt.max_mqueue_bytes: bad value \"0\": "
          "expected a size such as 256, 64KB or 1MB, in 1..18446744073709551615 bytes");
    CHECK(load_error("node.threads = 4096\n") ==
          "FILE:1: node.threads: bad value \"4096\": expected an integer in 0..1024");
    CHECK(load_error("node.name =\n") == "FILE:1: node.name: bad value \"\": expected a non-empty value");
}

TEST_CASE("keepalive backoff is a positive number") {
    CHECK(load("mqtt.keepalive_backoff = 0.5\n").broker.keepalive_backoff == 0.5);
    for (const char* bad : {"0", "-0.75", "abc", "0.75x", "inf", "nan", ""}) {
        const auto text = fmt::format("mqtt.keepalive_backoff = {}\n", bad);
        CHECK_MESSAGE(load_error(text) ==
                          fmt::format("FILE:1: mqtt.keepalive_backoff: bad value \"{}\": "
                                      "expected a number greater than 0",
                                      bad),
                      bad);
    }
}

TEST_CASE("durations in broker keys") {
    CHECK(load("mqtt.session_expiry_interval = 1d\n").broker.session_expiry_interval == 24h);
    CHECK(load("mqtt.session_expiry_interval = 4294967295\n").broker.session_expiry_interval == 4294967295s);
    CHECK(load_error("mqtt.session_expiry_interval = 4294967296\n") ==
          "FILE:1: mqtt.session_expiry_interval: bad value \"4294967296\": "
          "expected a duration such as 500ms, 30s, 15m, 2h or 1d, at most 4294967295s");
    CHECK(load_error("sys_interval = 1w\n") ==
          "FILE:1: sys_interval: bad value \"1w\": expected a duration such as 500ms, 30s, 15m, 2h or 1d");
    CHECK(load_error("mqtt.retry_interval = -30s\n") ==
          "FILE:1: mqtt.retry_interval: bad value \"-30s\": expected a duration such as 500ms, 30s, 15m, 2h or 1d");
}

TEST_CASE("an unknown key outside backend.* names file and line") {
    CHECK(load_error("# header\nmqtt.max_inflight = 10\nmqtt.max_infligth = 10\n") ==
          "FILE:3: unknown key \"mqtt.max_infligth\"");
    CHECK(load_error("backendx = 1\n") == "FILE:1: unknown key \"backendx\"");
}
