#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "broker/retained_store.hpp"

using mqttd::message_ptr;
using mqttd::retained_store;
using namespace std::chrono_literals;

namespace {

message_ptr make(std::string topic, std::string payload,
                 std::optional<std::chrono::steady_clock::duration> ttl = std::nullopt) {
    auto m = std::make_shared<mqttd::message>();
    m->topic = std::move(topic);
    m->payload = mqtt::shared_payload(std::move(payload));
    m->retain = true;
    if (ttl) m->expires_at = std::chrono::steady_clock::now() + *ttl;
    return m;
}

// Matched topics, sorted.
std::vector<std::string> topics(const retained_store& s, std::string_view filter) {
    std::vector<std::string> out;
    for (const auto& m : s.match(filter)) out.push_back(m->topic);
    std::sort(out.begin(), out.end());
    return out;
}

using strings = std::vector<std::string>;

}  // namespace

TEST_SUITE("retained_store") {

TEST_CASE("set, replace, delete by empty payload, erase") {
    retained_store s;
    CHECK(s.set(make("a/b", "one")));
    CHECK(s.size() == 1);
    CHECK(s.bytes() == 3 + 3);

    CHECK(s.set(make("a/b", "second")));
    CHECK(s.size() == 1);
    CHECK(s.bytes() == 3 + 6);
    auto got = s.match("a/b");
    REQUIRE(got.size() == 1);
    CHECK(got[0]->payload.view() == "second");

    CHECK(s.set(make("a/b", "")));  // an empty retained payload deletes the topic's message
    CHECK(s.size() == 0);
    CHECK(s.bytes() == 0);
    CHECK(s.match("a/b").empty());
    CHECK(s.set(make("never/stored", "")));  // deleting what is not there is fine
    CHECK(s.size() == 0);

    s.set(make("x", "1"));
    s.set(make("x/y", "2"));
    s.erase("x");
    CHECK(topics(s, "#") == strings{"x/y"});
    s.erase("x/y");
    s.erase("not/there");
    CHECK(s.size() == 0);
    CHECK(s.node_count() == 1);
}

TEST_CASE("wildcards and the '$' rule") {
    retained_store s;
    for (const char* t : {"sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis/player2",
                          "sport", "sport/", "/finance", "$SYS/broker/uptime", "$SYS"})
        s.set(make(t, "x"));

    CHECK(topics(s, "sport/tennis/player1") == strings{"sport/tennis/player1"});
    CHECK(topics(s, "sport/tennis/player1/#") ==
          strings{"sport/tennis/player1", "sport/tennis/player1/ranking"});
    CHECK(topics(s, "sport/#") == strings{"sport", "sport/", "sport/tennis/player1",
                                          "sport/tennis/player1/ranking", "sport/tennis/player2"});
    CHECK(topics(s, "sport/tennis/+") == strings{"sport/tennis/player1", "sport/tennis/player2"});
    CHECK(topics(s, "sport/+") == strings{"sport/"});
    CHECK(topics(s, "sport/+/player1") == strings{"sport/tennis/player1"});
    CHECK(topics(s, "+") == strings{"sport"});
    CHECK(topics(s, "+/+") == strings{"/finance", "sport/"});
    CHECK(topics(s, "/+") == strings{"/finance"});
    CHECK(topics(s, "/finance") == strings{"/finance"});
    CHECK(topics(s, "finance").empty());
    CHECK(topics(s, "#") == strings{"/finance", "sport", "sport/", "sport/tennis/player1",
                                    "sport/tennis/player1/ranking", "sport/tennis/player2"});
    CHECK(topics(s, "+/broker/uptime").empty());
    CHECK(topics(s, "+/#") == topics(s, "#"));
    CHECK(topics(s, "$SYS/#") == strings{"$SYS", "$SYS/broker/uptime"});
    CHECK(topics(s, "$SYS/+/uptime") == strings{"$SYS/broker/uptime"});
    CHECK(topics(s, "sport/tennis").empty());  // an inner node without a message
    CHECK(topics(s, "nothing/#").empty());
}

TEST_CASE("the bound refuses new topics but allows replacing") {
    retained_store s(2);
    CHECK(s.set(make("a", "1")));
    CHECK(s.set(make("b", "1")));
    const auto nodes = s.node_count();
    CHECK_FALSE(s.set(make("c/d", "1")));
    CHECK(s.node_count() == nodes);  // a refused set leaves no nodes behind
    CHECK(s.set(make("a", "2")));
    CHECK(s.size() == 2);
    CHECK(topics(s, "#") == strings{"a", "b"});
    CHECK(s.set(make("a", "")));
    CHECK(s.set(make("c/d", "1")));
    CHECK(topics(s, "#") == strings{"b", "c/d"});
}

TEST_CASE("expired messages are skipped, then dropped") {
    retained_store s(2);
    s.set(make("live", "1", 1h));
    s.set(make("gone", "1", -1s));
    CHECK(topics(s, "#") == strings{"live"});
    CHECK(topics(s, "gone").empty());
    CHECK(s.size() == 2);  // dropped lazily, by the next write

    // The expired message holds no room against the bound.
    CHECK(s.set(make("new", "1")));
    CHECK(s.size() == 2);
    CHECK(topics(s, "#") == strings{"live", "new"});

    CHECK_FALSE(s.set(make("third", "1")));  // full with two live messages
    s.set(make("new", "1", 1ms));
    std::this_thread::sleep_for(5ms);
    CHECK(topics(s, "#") == strings{"live"});
    CHECK(s.set(make("third", "1")));  // the expired message made room
    CHECK(topics(s, "#") == strings{"live", "third"});
    CHECK(s.bytes() == 4 + 1 + 5 + 1);
}

TEST_CASE("replacing an expiring message forgets the old expiry") {
    retained_store s;
    s.set(make("t", "old", 1ms));
    s.set(make("t", "new"));
    std::this_thread::sleep_for(5ms);
    s.erase("other");  // a write, which drops whatever expired
    const auto got = s.match("t");
    REQUIRE(got.size() == 1);
    CHECK(got[0]->payload.view() == "new");
    CHECK(s.size() == 1);
}

TEST_CASE("nodes are pruned after churn") {
    retained_store s;
    s.set(make("keep/this", "x"));
    const auto start = s.node_count();
    for (int i = 0; i < 10'000; ++i) {
        const auto n = std::to_string(i);
        s.set(make(i % 2 ? "keep/" + n + "/deep" : n + "//" + n, "x", i % 3 ? std::optional(1h) : std::nullopt));
    }
    CHECK(s.size() == 10'001);
    for (int i = 0; i < 10'000; ++i) {
        const auto n = std::to_string(i);
        if (i % 4 == 0) s.erase(n + "//" + n);
        else s.set(make(i % 2 ? "keep/" + n + "/deep" : n + "//" + n, ""));
    }
    CHECK(s.size() == 1);
    CHECK(s.bytes() == 9 + 1);
    CHECK(s.node_count() == start);
}

TEST_CASE("concurrent set, erase and match") {
    retained_store s;
    s.set(make("stable/a", "x"));
    s.set(make("stable/b", "x"));
    constexpr int writers = 4, readers = 3, rounds = 300;  // enough interleavings, fast under TSan
    std::atomic<bool> failed{false};
    std::atomic<int> done{0};
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
        threads.emplace_back([&, w] {
            const auto base = "w" + std::to_string(w) + "/";
            for (int i = 0; i < rounds; ++i) {
                const auto topic = base + std::to_string(i % 20);
                s.set(make(topic, "payload", i % 5 ? std::optional(1h) : std::optional(-1ms)));
                if (i % 2) s.erase(topic);
                else s.set(make(topic, ""));
            }
            s.set(make(base + "last", "x"));
            ++done;
        });
    }
    for (int r = 0; r < readers; ++r) {
        threads.emplace_back([&] {
            while (done.load() < writers) {
                if (s.match("stable/+").size() != 2) failed = true;
                for (const auto& m : s.match("#"))
                    if (m->payload.empty()) failed = true;
                if (!s.match("$SYS/#").empty()) failed = true;
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK_FALSE(failed.load());
    CHECK(s.size() == 2 + writers);
    CHECK(topics(s, "+/last") == strings{"w0/last", "w1/last", "w2/last", "w3/last"});
    CHECK(s.node_count() == 1 + 3 + 2 * writers);
}

}  // TEST_SUITE
