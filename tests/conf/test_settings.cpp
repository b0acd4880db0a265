#include <doctest/doctest.h>

#include "conf/settings.hpp"
#include "temp_config.hpp"

using namespace std::chrono_literals;
using conf::hook_function;
using conf::hookpoint;
using conf_test::load;
using conf_test::temp_config;

namespace {

// The configuration of the EMQX PostgreSQL Backend document, verbatim.
constexpr std::string_view seed_conf = R"(## Pgsql Server
backend.pgsql.pool1.server = 127.0.0.1:5432

## Pgsql Pool Size
backend.pgsql.pool1.pool_size = 8

## Pgsql Username
backend.pgsql.pool1.username = root

## Pgsql Password
backend.pgsql.pool1.password = public

## Pgsql Database
backend.pgsql.pool1.database = mqtt

## Pgsql Ssl
backend.pgsql.pool1.ssl = false

## Max number of fetch offline messages. Without count limit if infinity
## backend.pgsql.max_returned_count = 500

## Time Range. Without time limit if infinity
## d - day
## h - hour
## m - minute
## s - second
## backend.pgsql.time_range = 2h

## Client Connected Record
backend.pgsql.hook.client.connected.1    = {"action": {"function": "on_client_connected"}, "pool": "pool1"}

## Subscribe Lookup Record
backend.pgsql.hook.client.connected.2    = {"action": {"function": "on_subscribe_lookup"}, "pool": "pool1"}

## Client DisConnected Record
backend.pgsql.hook.client.disconnected.1 = {"action": {"function": "on_client_disconnected"}, "pool": "pool1"}

## Lookup Unread Message QOS > 0
backend.pgsql.hook.session.subscribed.1  = {"topic": "#", "action": {"function": "on_message_fetch"}, "pool": "pool1"}

## Lookup Retain Message
backend.pgsql.hook.session.subscribed.2  = {"topic": "#", "action": {"function": "on_retain_lookup"}, "pool": "pool1"}

## Store Publish Message  QOS > 0
backend.pgsql.hook.message.publish.1     = {"topic": "#", "action": {"function": "on_message_publish"}, "pool": "pool1"}

## Store Retain Message
backend.pgsql.hook.message.publish.2     = {"topic": "#", "action": {"function": "on_message_retain"}, "pool": "pool1"}

## Delete Retain Message
backend.pgsql.hook.message.publish.3     = {"topic": "#", "action": {"function": "on_retain_delete"}, "pool": "pool1"}

## Store Ack
backend.pgsql.hook.message.acked.1       = {"topic": "#", "action": {"function": "on_message_acked"}, "pool": "pool1"}

## Get offline messages
### "offline_opts": Get configuration for offline messages
### max_returned_count: Maximum number of offline messages get at a time
### time_range: Get only messages in the current time range
## backend.pgsql.hook.session.subscribed.1  = {"topic": "#", "action": {"function": "on_message_fetch"}, "offline_opts": {"max_returned_count": 500, "time_range": "2h"}, "pool": "pool1"}

## If you need to store Qos0 messages, you can enable the following configuration
## Warning: When the following configuration is enabled, 'on_message_fetch' needs to be disabled, otherwise qos1, qos2 messages will be stored twice
## backend.pgsql.hook.message.publish.4     = {"topic": "#", "action": {"function": "on_message_store"}, "pool": "pool1"}
)";

}  // namespace

TEST_CASE("the seed's emqx_backend_pgsql.conf loads verbatim") {
    const auto s = load(seed_conf);
    REQUIRE(s.backend.pools.size() == 1);
    const auto& pool = s.backend.pools[0];
    CHECK(pool.name == "pool1");
    CHECK(pool.host == "127.0.0.1");
    CHECK(pool.port == 5432);
    CHECK(pool.pool_size == 8);
    CHECK(pool.username == "root");
    CHECK(pool.password == "public");
    CHECK(pool.database == "mqtt");
    CHECK(!pool.ssl);
    CHECK(!s.backend.offline.max_returned_count);
    CHECK(!s.backend.offline.time_range);

    const std::tuple<hookpoint, unsigned, hook_function, const char*, unsigned> expected[] = {
        {hookpoint::client_connected, 1, hook_function::on_client_connected, "", 30},
        {hookpoint::client_connected, 2, hook_function::on_subscribe_lookup, "", 33},
        {hookpoint::client_disconnected, 1, hook_function::on_client_disconnected, "", 36},
        {hookpoint::session_subscribed, 1, hook_function::on_message_fetch, "#", 39},
        {hookpoint::session_subscribed, 2, hook_function::on_retain_lookup, "#", 42},
        {hookpoint::message_publish, 1, hook_function::on_message_publish, "#", 45},
        {hookpoint::message_publish, 2, hook_function::on_message_retain, "#", 48},
        {hookpoint::message_publish, 3, hook_function::on_retain_delete, "#", 51},
        {hookpoint::message_acked, 1, hook_function::on_message_acked, "#", 54},
    };
    REQUIRE(s.backend.hooks.size() == std::size(expected));
    for (std::size_t i = 0; i < std::size(expected); ++i) {
        const auto& [point, number, function, topic, line] = expected[i];
        const auto& h = s.backend.hooks[i];
        CAPTURE(i);
        CHECK(h.point == point);
        CHECK(h.number == number);
        CHECK(std::get<hook_function>(h.action) == function);
        CHECK(h.topic == topic);
        CHECK(h.pool == "pool1");
        CHECK(h.where.line == line);
    }
    // The broker half is all defaults.
    CHECK(s.broker.listeners.size() == 1);
    CHECK(s.broker.node_name == "mqttd@testhost");
}

TEST_CASE("the seed's SQL action and its commented-out hooks load too") {
    const auto s = load(std::string(seed_conf) +
                        R"j(backend.pgsql.hook.client.connected.3 = {"action": {"sql": ["insert into conn(clientid) values(${clientid})"]}, "pool": "pool1"}
backend.pgsql.hook.session.subscribed.1  = {"topic": "#", "action": {"function": "on_message_fetch"}, "offline_opts": {"max_returned_count": 500, "time_range": "2h"}, "pool": "pool1"}
backend.pgsql.hook.message.publish.4     = {"topic": "#", "action": {"function": "on_message_store"}, "pool": "pool1"}
)j");
    REQUIRE(s.backend.hooks.size() == 11);
    const auto& sql = std::get<std::vector<conf::sql_statement>>(s.backend.hooks[2].action);
    CHECK(sql[0].text == "insert into conn(clientid) values($1)");
    CHECK(sql[0].params == std::vector<std::string>{"clientid"});
    const auto& fetch = s.backend.hooks[4];
    CHECK(fetch.point == hookpoint::session_subscribed);
    CHECK(fetch.where.line == 66);  // the override, not the original line 39
    CHECK(fetch.offline.max_returned_count == 500u);
    CHECK(fetch.offline.time_range == 2h);
    CHECK(std::get<hook_function>(s.backend.hooks[9].action) == hook_function::on_message_store);
}

TEST_CASE("load_settings: a later file overrides an earlier one, broker and backend alike") {
    const temp_config base(std::string(seed_conf) + "mqtt.max_inflight = 10\n");
    const temp_config local(
        "backend.pgsql.pool1.server = db:6432\n"
        "mqtt.max_inflight = 20\n"
        "backend.pgsql.hook.message.publish.1 = {\"topic\": \"data/#\", \"action\": {\"function\": \"on_message_store\"}, \"pool\": \"pool1\"}\n");
    const auto s = conf::load_settings({base.path(), local.path()}, "h");
    CHECK(s.broker.max_inflight == 20);
    CHECK(s.backend.pools[0].host == "db");
    CHECK(s.backend.pools[0].port == 6432);
    CHECK(s.backend.pools[0].username == "root");
    const auto& h = s.backend.hooks[5];
    CHECK(h.point == hookpoint::message_publish);
    CHECK(h.number == 1);
    CHECK(h.topic == "data/#");
    CHECK(h.where.file == local.path());
    CHECK(h.where.line == 3);

    const auto reversed = conf::load_settings({local.path(), base.path()}, "h");
    CHECK(reversed.broker.max_inflight == 10);
    CHECK(reversed.backend.pools[0].host == "127.0.0.1");
}

TEST_CASE("load_settings: an error names the file it is in") {
    const temp_config base(seed_conf);
    const temp_config local("\nbackend.pgsql.hook.message.acked.1 = {\"action\": {\"function\": \"on_message_acked\"}, \"pool\": \"pool9\"}\n");
    try {
        conf::load_settings({base.path(), local.path()}, "h");
        FAIL("no error");
    } catch (const conf::config_error& e) {
        CHECK(std::string(e.what()) ==
              local.path() + ":2: backend.pgsql.hook.message.acked.1: unknown pool \"pool9\"");
    }
}

TEST_CASE("no files: every default") {
    const auto s = conf::load_settings({}, "box");
    CHECK(s.broker.node_name == "mqttd@box");
    CHECK(s.backend.pools.empty());
}

TEST_CASE("the backend learns the session queue bounds, which its offline fetch pages fit in") {
    const auto d = conf::load_settings({}, "box");
    CHECK(d.backend.session_queue_len == d.broker.max_mqueue_len);
    CHECK(d.backend.session_queue_bytes == d.broker.max_mqueue_bytes);
    const temp_config f(std::string(seed_conf) + "mqtt.max_mqueue_len = 5\nmqtt.max_mqueue_bytes = 4KB\n");
    const auto s = conf::load_settings({f.path()}, "h");
    CHECK(s.backend.session_queue_len == 5);
    CHECK(s.backend.session_queue_bytes == 4096);
}
