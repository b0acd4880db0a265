#include <doctest/doctest.h>

#include "conf/backend_settings.hpp"
#include "temp_config.hpp"

using namespace std::chrono_literals;
using conf::ack_mode;
using conf::hook_function;
using conf::hookpoint;
using conf::ssl_verify;
using conf_test::load;
using conf_test::load_error;

namespace {

// Line 1 of every hook test: the pool that hooks name.
const std::string pool1 = "backend.pgsql.pool1.server = 127.0.0.1\n";

// The error for one hook line (line 2) after pool1.
std::string hook_error(std::string_view key, std::string_view json) {
    return load_error(fmt::format("{}{} = {}\n", pool1, key, json));
}

conf::hook one_hook(std::string_view key, std::string_view json, std::string_view globals = "") {
    const auto b = load(fmt::format("{}{}{} = {}\n", pool1, globals, key, json)).backend;
    REQUIRE(b.hooks.size() == 1);
    return b.hooks[0];
}

}  // namespace

TEST_CASE("backend defaults: no pools, no hooks") {
    const auto b = load("").backend;
    CHECK(b.pools.empty());
    CHECK(b.hooks.empty());
    CHECK(!b.offline.max_returned_count);
    CHECK(!b.offline.time_range);
    CHECK(b.publish_ack == ack_mode::after_commit);
    CHECK(b.max_pending == 100000);
    CHECK(b.max_pending_bytes == 256u << 20);
    CHECK(b.batch_size == 4000);
    CHECK(b.batch_delay == 2ms);
}

TEST_CASE("backend globals set") {
    const auto b = load(
                       "backend.pgsql.max_returned_count = 500\n"
                       "backend.pgsql.time_range = 2h\n"
                       "backend.pgsql.publish_ack = async\n"
                       "backend.pgsql.max_pending = 5000\n"
                       "backend.pgsql.max_pending_bytes = 16MB\n"
                       "backend.pgsql.batch_size = 64\n"
                       "backend.pgsql.batch_delay = 10ms\n")
                       .backend;
    CHECK(b.offline.max_returned_count == 500u);
    CHECK(b.offline.time_range == 2h);
    CHECK(b.publish_ack == ack_mode::async);
    CHECK(b.max_pending == 5000);
    CHECK(b.max_pending_bytes == 16u << 20);
    CHECK(b.batch_size == 64);
    CHECK(b.batch_delay == 10ms);

    const auto inf = load("backend.pgsql.max_returned_count = infinity\nbackend.pgsql.time_range = infinity\n").backend;
    CHECK(!inf.offline.max_returned_count);
    CHECK(!inf.offline.time_range);
}

TEST_CASE("bad backend global values") {
    CHECK(load_error("backend.pgsql.max_returned_count = lots\n") ==
          "FILE:1: backend.pgsql.max_returned_count: bad value \"lots\": expected a count or infinity");
    CHECK(load_error("backend.pgsql.time_range = -2h\n") ==
          "FILE:1: backend.pgsql.time_range: bad value \"-2h\": expected a duration such as 30m, 2h or 1d, or infinity");
    CHECK(load_error("backend.pgsql.publish_ack = never\n") ==
          "FILE:1: backend.pgsql.publish_ack: bad value \"never\": expected one of after_commit async");
    CHECK(load_error("backend.pgsql.max_pending = 0\n") ==
          "FILE:1: backend.pgsql.max_pending: bad value \"0\": expected an integer in 1..18446744073709551615");
    CHECK(load_error("backend.pgsql.batch_size = 0\n") ==
          "FILE:1: backend.pgsql.batch_size: bad value \"0\": expected an integer in 1..4294967295");
    CHECK(load_error("backend.pgsql.batch_delay = 2us\n") ==
          "FILE:1: backend.pgsql.batch_delay: bad value \"2us\": "
          "expected a duration such as 500ms, 30s, 15m, 2h or 1d");
    CHECK(load_error("backend.pgsql.max_pending_bytes = 1PB\n") ==
          "FILE:1: backend.pgsql.max_pending_bytes: bad value \"1PB\": "
          "expected a size such as 256, 64KB or 1MB, in 1..18446744073709551615 bytes");
}

TEST_CASE("pool keys: defaults and every key set") {
    const auto b = load(
                       "backend.pgsql.a.server = db.example\n"
                       "backend.pgsql.b.server = 10.0.0.2:6432\n"
                       "backend.pgsql.b.pool_size = 16\n"
                       "backend.pgsql.b.username = mqtt\n"
                       "backend.pgsql.b.password = p=ss word\n"
                       "backend.pgsql.b.database = broker\n"
                       "backend.pgsql.b.ssl = true\n"
                       "backend.pgsql.b.ssl_opts.cacertfile = /etc/ssl/ca.pem\n"
                       "backend.pgsql.b.ssl_opts.certfile = /etc/ssl/client.pem\n"
                       "backend.pgsql.b.ssl_opts.keyfile = /etc/ssl/client.key\n"
                       "backend.pgsql.b.ssl_opts.verify = verify_peer\n"
                       "backend.pgsql.c.server = [::1]:5433\n"
                       "backend.pgsql.d-1.server = [fe80::1]\n")
                       .backend;
    REQUIRE(b.pools.size() == 4);
    const auto& a = b.pools[0];
    CHECK(a.name == "a");
    CHECK(a.host == "db.example");
    CHECK(a.port == 5432);
    CHECK(a.pool_size == 8);
    CHECK(a.username.empty());
    CHECK(a.password.empty());
    CHECK(a.database.empty());
    CHECK(!a.ssl);
    CHECK(a.cacertfile.empty());
    CHECK(a.verify == ssl_verify::verify_none);
    CHECK(a.where.line == 1);
    const auto& p = b.pools[1];
    CHECK(p.host == "10.0.0.2");
    CHECK(p.port == 6432);
    CHECK(p.pool_size == 16);
    CHECK(p.username == "mqtt");
    CHECK(p.password == "p=ss word");
    CHECK(p.database == "broker");
    CHECK(p.ssl);
    CHECK(p.cacertfile == "/etc/ssl/ca.pem");
    CHECK(p.certfile == "/etc/ssl/client.pem");
    CHECK(p.keyfile == "/etc/ssl/client.key");
    CHECK(p.verify == ssl_verify::verify_peer);
    CHECK(b.pools[2].host == "::1");
    CHECK(b.pools[2].port == 5433);
    CHECK(b.pools[3].host == "fe80::1");
    CHECK(b.pools[3].port == 5432);
    CHECK(b.find_pool("b") == &b.pools[1]);
    CHECK(b.find_pool("z") == nullptr);
}

TEST_CASE("pool errors") {
    CHECK(load_error("backend.pgsql.pool1.server = 127.0.0.1\n\nbackend.pgsql.pool2.pool_size = 4\n") ==
          "FILE:3: pool pool2 has no backend.pgsql.pool2.server");
    CHECK(load_error("backend.pgsql.pool1.server = 127.0.0.1\nbackend.pgsql.pool1.sever = x\n") ==
          "FILE:2: unknown key \"backend.pgsql.pool1.sever\"");
    CHECK(load_error("backend.pgsql.pool1.server = 127.0.0.1\nbackend.pgsql.pool1.ssl_opts.verify = yes\n") ==
          "FILE:2: backend.pgsql.pool1.ssl_opts.verify: bad value \"yes\": expected one of verify_peer verify_none");
    CHECK(load_error("backend.pgsql.pool1.server = h\nbackend.pgsql.pool1.ssl_opts.cacertfile = ca.pem\n") ==
          "FILE:2: ssl_opts of pool pool1 need backend.pgsql.pool1.ssl = true");
    CHECK(load_error("backend.pgsql.pool1.server = h\nbackend.pgsql.pool1.ssl = maybe\n") ==
          "FILE:2: backend.pgsql.pool1.ssl: bad value \"maybe\": expected true, false, on or off");
    CHECK(load_error("backend.pgsql.pool1.server = h\nbackend.pgsql.pool1.pool_size = 0\n") ==
          "FILE:2: backend.pgsql.pool1.pool_size: bad value \"0\": expected an integer in 1..1024");
    for (const char* server : {"", "h:", "h:0", "h:65536", "h:port", "[::1", "[::1]5432", "[]:5432", "::1", "a b"}) {
        const auto text = fmt::format("backend.pgsql.pool1.server = {}\n", server);
        CHECK_MESSAGE(load_error(text) ==
                          fmt::format("FILE:1: backend.pgsql.pool1.server: bad value \"{}\": "
                                      "expected host[:port], such as 127.0.0.1:5432, db.example or [::1]:5432",
                                      server),
                      server);
    }
}

TEST_CASE("only backend.pgsql.* is known") {
    CHECK(load_error("backend.mysql.pool1.server = 127.0.0.1:3306\n") ==
          "FILE:1: unknown key \"backend.mysql.pool1.server\"");
    CHECK(load_error("backend.pgsql.max_returned = 5\n") == "FILE:1: unknown key \"backend.pgsql.max_returned\"");
    CHECK(load_error("backend.pgsql.po.ol.server = h\n") == "FILE:1: unknown key \"backend.pgsql.po.ol.server\"");
    CHECK(load_error("backend.pgsql.p@ol.server = h\n") == "FILE:1: unknown key \"backend.pgsql.p@ol.server\"");
}

TEST_CASE("a function hook") {
    const auto h = one_hook("backend.pgsql.hook.message.publish.1",
                            R"({"topic": "a/+/#", "action": {"function": "on_message_publish"}, "pool": "pool1"})");
    CHECK(h.point == hookpoint::message_publish);
    CHECK(h.number == 1);
    CHECK(h.topic == "a/+/#");
    CHECK(h.pool == "pool1");
    CHECK(std::get<hook_function>(h.action) == hook_function::on_message_publish);
    CHECK(h.where.line == 2);
}

TEST_CASE("every function on its hookpoint") {
    const std::pair<const char*, const char*> pairs[] = {
        {"client.connected", "on_client_connected"},   {"client.connected", "on_subscribe_lookup"},
        {"client.disconnected", "on_client_disconnected"}, {"session.subscribed", "on_message_fetch"},
        {"session.subscribed", "on_retain_lookup"},    {"message.publish", "on_message_publish"},
        {"message.publish", "on_message_store"},       {"message.publish", "on_message_retain"},
        {"message.publish", "on_retain_delete"},       {"message.acked", "on_message_acked"},
    };
    for (const auto& [point, function] : pairs) {
        const auto h = one_hook(fmt::format("backend.pgsql.hook.{}.1", point),
                                fmt::format(R"({{"action": {{"function": "{}"}}, "pool": "pool1"}})", function));
        CHECK(to_string(h.point) == point);
        CHECK(to_string(std::get<hook_function>(h.action)) == function);
        CHECK(h.topic.empty());
    }
}

TEST_CASE("SQL action hooks: a list or a single statement, variables per hookpoint") {
    const auto list = one_hook("backend.pgsql.hook.client.connected.3",
                               R"j({"action": {"sql": ["insert into conn(clientid) values(${clientid})", "select 1"]}, "pool": "pool1"})j");
    const auto& statements = std::get<std::vector<conf::sql_statement>>(list.action);
    REQUIRE(statements.size() == 2);
    CHECK(statements[0].text == "insert into conn(clientid) values($1)");
    CHECK(statements[0].params == std::vector<std::string>{"clientid"});
    CHECK(statements[1].text == "select 1");

    const auto single = one_hook("backend.pgsql.hook.message.publish.1",
                                 R"j({"action": {"sql": "insert into m values(${msgid}, ${clientid}, ${topic}, ${qos}, ${retain}, ${payload}, ${timestamp}, ${username})"}, "pool": "pool1"})j");
    const auto& s = std::get<std::vector<conf::sql_statement>>(single.action);
    REQUIRE(s.size() == 1);
    CHECK(s[0].text == "insert into m values($1, $2, $3, $4, $5, $6, $7, $8)");
    CHECK(s[0].params ==
          std::vector<std::string>{"msgid", "clientid", "topic", "qos", "retain", "payload", "timestamp", "username"});

    // Functions serve neither of these hookpoints, SQL does.
    one_hook("backend.pgsql.hook.session.unsubscribed.1",
             R"j({"action": {"sql": ["delete from sub where clientid = ${clientid} and topic = ${topic} and ${qos} >= 0"]}, "pool": "pool1"})j");
    one_hook("backend.pgsql.hook.message.delivered.1",
             R"j({"action": {"sql": ["insert into delivered(msgid, topic, c) values(${msgid}, ${topic}, ${clientid})"]}, "pool": "pool1"})j");
}

TEST_CASE("hooks run in order of their number within a hookpoint") {
    const auto b = load(pool1 +
                        "backend.pgsql.hook.message.publish.10 = {\"action\": {\"function\": \"on_message_retain\"}, \"pool\": \"pool1\"}\n"
                        "backend.pgsql.hook.client.connected.2 = {\"action\": {\"function\": \"on_subscribe_lookup\"}, \"pool\": \"pool1\"}\n"
                        "backend.pgsql.hook.message.publish.2 = {\"action\": {\"function\": \"on_message_publish\"}, \"pool\": \"pool1\"}\n"
                        "backend.pgsql.hook.client.connected.1 = {\"action\": {\"function\": \"on_client_connected\"}, \"pool\": \"pool1\"}\n")
                       .backend;
    REQUIRE(b.hooks.size() == 4);
    CHECK(b.hooks[0].point == hookpoint::client_connected);
    CHECK(b.hooks[0].number == 1);
    CHECK(b.hooks[1].number == 2);
    CHECK(b.hooks[2].point == hookpoint::message_publish);
    CHECK(b.hooks[2].number == 2);
    CHECK(b.hooks[3].number == 10);
}

TEST_CASE("offline_opts override the global defaults, field by field") {
    const std::string key = "backend.pgsql.hook.session.subscribed.1";
    const std::string globals = "backend.pgsql.max_returned_count = 100\nbackend.pgsql.time_range = 1d\n";
    const auto inherit = one_hook(key, R"({"topic": "#", "action": {"function": "on_message_fetch"}, "pool": "pool1"})", globals);
    CHECK(inherit.offline.max_returned_count == 100u);
    CHECK(inherit.offline.time_range == 24h);

    const auto seed = one_hook(key,
                               R"({"topic": "#", "action": {"function": "on_message_fetch"}, "offline_opts": {"max_returned_count": 500, "time_range": "2h"}, "pool": "pool1"})",
                               globals);
    CHECK(seed.offline.max_returned_count == 500u);
    CHECK(seed.offline.time_range == 2h);

    const auto partial = one_hook(key,
                                  R"({"action": {"function": "on_message_fetch"}, "offline_opts": {"time_range": "infinity"}, "pool": "pool1"})",
                                  globals);
    CHECK(partial.offline.max_returned_count == 100u);
    CHECK(!partial.offline.time_range);

    const auto unbounded = one_hook(key,
                                    R"({"action": {"function": "on_message_fetch"}, "offline_opts": {"max_returned_count": "infinity"}, "pool": "pool1"})",
                                    globals);
    CHECK(!unbounded.offline.max_returned_count);
    CHECK(unbounded.offline.time_range == 24h);
}

TEST_CASE("hook errors name file, line and key") {
    const std::string k = "backend.pgsql.hook.client.connected.1";
    const std::string fn = R"("action": {"function": "on_client_connected"})";
    const auto expect = [&](std::string_view key, std::string_view json, std::string_view message) {
        CHECK(hook_error(key, json) == fmt::format("FILE:2: {}: {}", key, message));
    };
    // JSON
    expect(k, R"({"action": )", "bad JSON: incomplete JSON");
    expect(k, R"({"action": {"function": "on_client_connected"}, "pool": "pool1"} x)", "bad JSON: extra data");
    expect(k, R"(["pool1"])", "expected a JSON object");
    expect(k, R"({"poll": "pool1", )" + fn + "}", "unknown field \"poll\"");
    // action
    expect(k, R"({"pool": "pool1"})", "missing \"action\"");
    const std::string bad_action = R"("action" must be {"function": NAME} or {"sql": [STATEMENT, ...]})";
    expect(k, R"({"action": "on_client_connected", "pool": "pool1"})", bad_action);
    expect(k, R"({"action": {}, "pool": "pool1"})", bad_action);
    expect(k, R"({"action": {"function": "on_client_connected", "sql": "select 1"}, "pool": "pool1"})", bad_action);
    expect(k, R"({"action": {"function": "on_client_conected"}, "pool": "pool1"})",
           "unknown function \"on_client_conected\"");
    expect(k, R"({"action": {"function": 7}, "pool": "pool1"})", "unknown function 7");
    expect(k, R"({"action": {"function": "on_message_fetch"}, "pool": "pool1"})",
           "function on_message_fetch serves session.subscribed, not client.connected");
    expect("backend.pgsql.hook.message.delivered.1", R"({"action": {"function": "on_message_acked"}, "pool": "pool1"})",
           "function on_message_acked serves message.acked, not message.delivered");
    const std::string bad_sql = "\"sql\" must be a non-empty statement or a non-empty list of them";
    expect(k, R"({"action": {"sql": []}, "pool": "pool1"})", bad_sql);
    expect(k, R"({"action": {"sql": ""}, "pool": "pool1"})", bad_sql);
    expect(k, R"({"action": {"sql": ["select 1", 2]}, "pool": "pool1"})", bad_sql);
    expect(k, R"j({"action": {"sql": ["select ${topic}"]}, "pool": "pool1"})j",
           "unknown variable ${topic}; this hookpoint has: clientid");
    expect("backend.pgsql.hook.message.acked.1", R"j({"action": {"sql": ["select ${payload}"]}, "pool": "pool1"})j",
           "unknown variable ${payload}; this hookpoint has: msgid, clientid, topic");
    // pool
    expect(k, "{" + fn + "}", "\"pool\" must name a pool");
    expect(k, "{" + fn + R"(, "pool": 1})", "\"pool\" must name a pool");
    expect(k, "{" + fn + R"(, "pool": "pool2"})", "unknown pool \"pool2\"");
    // key
    expect("backend.pgsql.hook.client.connect.1", "{" + fn + R"(, "pool": "pool1"})",
           "unknown hookpoint \"client.connect\"");
    expect("backend.pgsql.hook.connected", "{" + fn + R"(, "pool": "pool1"})", "unknown hookpoint \"connected\"");
    for (const char* n : {"0", "01", "x", "-1", "4294967296"})
        expect(fmt::format("backend.pgsql.hook.client.connected.{}", n), "{" + fn + R"(, "pool": "pool1"})",
               fmt::format("hook number \"{}\" is not a positive integer", n));
    // topic
    for (const char* topic : {R"("")", R"("a/#/b")", R"("a#")", R"("a/b+")", R"("+a")", R"("##")", "7"})
        expect(k, "{" + fn + R"(, "pool": "pool1", "topic": )" + topic + "}",
               fmt::format("bad topic filter {}", topic));
    // offline_opts
    expect(k, "{" + fn + R"(, "pool": "pool1", "offline_opts": {"max_returned_count": 5}})",
           "\"offline_opts\" applies to on_message_fetch only");
    const std::string fetch = R"({"action": {"function": "on_message_fetch"}, "pool": "pool1", "offline_opts": )";
    const std::string sub = "backend.pgsql.hook.session.subscribed.1";
    expect(sub, fetch + "5}", "\"offline_opts\" must be an object");
    expect(sub, fetch + R"({"max_returned_count": -1}})",
           "offline_opts.max_returned_count must be a count or \"infinity\"");
    expect(sub, fetch + R"({"max_returned_count": "500"}})",
           "offline_opts.max_returned_count must be a count or \"infinity\"");
    expect(sub, fetch + R"({"time_range": "2 hours"}})",
           "offline_opts.time_range must be a duration such as \"2h\" or \"infinity\"");
    expect(sub, fetch + R"({"time_range": 7200}})",
           "offline_opts.time_range must be a duration such as \"2h\" or \"infinity\"");
    expect(sub, fetch + R"({"max_count": 5}})", "unknown offline_opts field \"max_count\"");
}

TEST_CASE("valid topic filters on hooks") {
    for (const char* topic : {"#", "+", "a/b", "a/+/c", "a/#", "+/+/#", "/", "a//b", "$SYS/#", "sport/tennis/+"}) {
        const auto h = one_hook("backend.pgsql.hook.message.publish.1",
                                fmt::format(R"({{"topic": "{}", "action": {{"function": "on_message_publish"}}, "pool": "pool1"}})", topic));
        CHECK(h.topic == topic);
    }
}
