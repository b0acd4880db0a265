#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "broker/topic_tree.hpp"

using mqttd::match_result;
using mqttd::topic_tree;

namespace {

using tree = topic_tree<int>;

mqtt::subscribe_options opts(mqtt::qos q = mqtt::qos::at_most_once, bool no_local = false, bool rap = false) {
    return {q, no_local, rap, 0};
}

std::vector<match_result<int>> matches(const tree& t, std::string_view topic) {
    std::vector<match_result<int>> out;
    t.match(topic, out);
    return out;
}

// The filters (as subscribed) that matched topic, sorted.
std::vector<std::string> matched_filters(const tree& t, std::string_view topic) {
    std::vector<std::string> out;
    for (auto& m : matches(t, topic)) out.push_back(m.filter);
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::string> split(std::string_view s) {
    std::vector<std::string> out;
    for (std::size_t pos = 0;;) {
        const auto slash = s.find('/', pos);
        out.emplace_back(s.substr(pos, slash == s.npos ? s.npos : slash - pos));
        if (slash == s.npos) return out;
        pos = slash + 1;
    }
}

// An independent, obviously-correct matcher for cross-checking the trie.
bool reference_match(std::string_view filter, std::string_view topic) {
    if (topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#'))) return false;
    const auto f = split(filter), t = split(topic);
    for (std::size_t i = 0; i < f.size(); ++i) {
        if (f[i] == "#") return true;
        if (i >= t.size()) return false;
        if (f[i] != "+" && f[i] != t[i]) return false;
    }
    return f.size() == t.size();
}

struct spec_case {
    const char* filter;
    const char* topic;
    bool matches;
};

// MQTT 5.0 section 4.7 (and 3.1.1 section 4.7) examples, plus edges of empty levels.
const spec_case spec_cases[] = {
    {"sport/tennis/player1/#", "sport/tennis/player1", true},
    {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
    {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
    {"sport/tennis/player1/#", "sport/tennis/player2", false},
    {"sport/#", "sport", true},
    {"sport/tennis/#", "sport/tennis", true},
    {"sport/tennis/#", "sport", false},
    {"#", "sport/tennis/player1", true},
    {"#", "/finance", true},
    {"#", "/", true},
    {"sport/tennis/+", "sport/tennis/player1", true},
    {"sport/tennis/+", "sport/tennis/player2", true},
    {"sport/tennis/+", "sport/tennis/player1/ranking", false},
    {"sport/+", "sport", false},
    {"sport/+", "sport/", true},
    {"+/tennis/#", "sport/tennis/player1", true},
    {"+/tennis/#", "sport/tennis", true},
    {"sport/+/player1", "sport/tennis/player1", true},
    {"sport/+/player1", "sport/tennis/player2", false},
    {"+", "finance", true},
    {"+/+", "/finance", true},
    {"/+", "/finance", true},
    {"+", "/finance", false},
    {"/finance", "/finance", true},
    {"/finance", "finance", false},
    {"finance", "/finance", false},
    {"+/+", "/", true},
    {"+", "/", false},
    {"+/+/+", "a/b", false},
    {"a/b", "a/b/c", false},
    {"a/b/c", "a/b", false},
    {"#", "$SYS/monitor/Clients", false},
    {"+/monitor/Clients", "$SYS/monitor/Clients", false},
    {"$SYS/#", "$SYS/monitor/Clients", true},
    {"$SYS/#", "$SYS", true},
    {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
    {"$SYS/+/Clients", "$SYS/monitor/Clients", true},
    {"+/#", "$SYS", false},
    {"+/+", "sys/$x", true},  // only the first level's '$' is special
};

}  // namespace

TEST_SUITE("topic_tree") {

TEST_CASE("spec 4.7 examples, one filter at a time") {
    for (const auto& c : spec_cases) {
        CAPTURE(c.filter);
        CAPTURE(c.topic);
        tree t;
        t.subscribe(1, c.filter, opts(), 0);
        CHECK(matches(t, c.topic).size() == (c.matches ? 1u : 0u));
        CHECK(reference_match(c.filter, c.topic) == c.matches);  // the oracle agrees
    }
}

TEST_CASE("all filters at once agree with the reference matcher on every topic") {
    tree t;
    std::vector<std::string> filters, topics;
    for (const auto& c : spec_cases) {
        filters.emplace_back(c.filter);
        topics.emplace_back(c.topic);
    }
    std::sort(filters.begin(), filters.end());
    filters.erase(std::unique(filters.begin(), filters.end()), filters.end());
    for (const auto& f : filters) t.subscribe(1, f, opts(), 0);
    CHECK(t.size() == filters.size());
    for (const auto& topic : topics) {
        CAPTURE(topic);
        std::vector<std::string> expected;
        for (const auto& f : filters)
            if (reference_match(f, topic)) expected.push_back(f);
        CHECK(matched_filters(t, topic) == expected);
    }
}

TEST_CASE("match results carry options, identifier and filter") {
    tree t;
    t.subscribe(7, "a/+", opts(mqtt::qos::exactly_once, true, true), 42);
    const auto r = matches(t, "a/b");
    REQUIRE(r.size() == 1);
    CHECK(r[0].subscriber == 7);
    CHECK(r[0].options == opts(mqtt::qos::exactly_once, true, true));
    CHECK(r[0].subscription_id == 42);
    CHECK(r[0].filter == "a/+");
    CHECK(r[0].share_group.empty());
}

TEST_CASE("a new subscription to the same filter replaces the old one") {
    tree t;
    CHECK_FALSE(t.subscribe(1, "a/b", opts(mqtt::qos::at_most_once), 1));
    CHECK(t.subscribe(1, "a/b", opts(mqtt::qos::at_least_once), 2));
    CHECK_FALSE(t.subscribe(2, "a/b", opts(), 0));  // another subscriber is its own entry
    CHECK(t.size() == 2);
    auto r = matches(t, "a/b");
    REQUIRE(r.size() == 2);
    std::sort(r.begin(), r.end(), [](auto& x, auto& y) { return x.subscriber < y.subscriber; });
    CHECK(r[0].options.max_qos == mqtt::qos::at_least_once);
    CHECK(r[0].subscription_id == 2);

    // The same for a shared subscription: replaced, not a second member.
    CHECK_FALSE(t.subscribe(1, "$share/g/a/b", opts(), 3));
    CHECK(t.subscribe(1, "$share/g/a/b", opts(mqtt::qos::exactly_once), 4));
    CHECK(t.shared_members("g", "a/b") == std::vector<int>{1});
    CHECK(t.size() == 3);
}

TEST_CASE("unsubscribe") {
    tree t;
    t.subscribe(1, "a/#", opts(), 0);
    t.subscribe(2, "a/#", opts(), 0);
    CHECK(t.unsubscribe(1, "a/#"));
    CHECK_FALSE(t.unsubscribe(1, "a/#"));
    CHECK_FALSE(t.unsubscribe(3, "a/#"));
    CHECK_FALSE(t.unsubscribe(2, "a/+"));
    CHECK(t.size() == 1);
    const auto r = matches(t, "a/b");
    REQUIRE(r.size() == 1);
    CHECK(r[0].subscriber == 2);
}

TEST_CASE("unsubscribe_all removes every subscription of one subscriber only") {
    tree t;
    const auto empty_nodes = t.node_count();
    t.subscribe(2, "keep/me", opts(), 0);
    const auto base_nodes = t.node_count();
    for (const char* f : {"a/b", "a/+", "#", "x/y/z", "$share/g/a/b", "$share/h/keep/me"})
        t.subscribe(1, f, opts(), 0);
    t.subscribe(3, "$share/g/a/b", opts(), 0);
    CHECK(t.size() == 8);

    t.unsubscribe_all(1);
    CHECK(t.size() == 2);
    CHECK(t.shared_members("g", "a/b") == std::vector<int>{3});
    CHECK(t.shared_members("h", "keep/me").empty());
    CHECK(matches(t, "x/y/z").empty());
    const auto r = matches(t, "keep/me");
    REQUIRE(r.size() == 1);
    CHECK(r[0].subscriber == 2);

    t.unsubscribe_all(1);  // nothing left: harmless
    t.unsubscribe_all(3);
    CHECK(t.node_count() == base_nodes);
    t.unsubscribe_all(2);
    CHECK(t.size() == 0);
    CHECK(t.node_count() == empty_nodes);
}

TEST_CASE("nodes are pruned after churn") {
    tree t;
    t.subscribe(-1, "sport/tennis", opts(), 0);
    const auto start = t.node_count();
    for (int i = 0; i < 10'000; ++i) {
        const auto n = std::to_string(i);
        switch (i % 4) {
        case 0: t.subscribe(i, "sport/tennis/" + n, opts(), 0); break;
        case 1: t.subscribe(i, "+/" + n + "/#", opts(), 0); break;
        case 2: t.subscribe(i, "$share/g" + n + "/sport/" + n, opts(), 0); break;
        default: t.subscribe(i, n + "//" + n + "/+", opts(), 0); break;
        }
    }
    CHECK(t.size() == 10'001);
    CHECK(t.node_count() > start + 10'000);
    for (int i = 0; i < 10'000; ++i) {
        if (i % 2 == 0) {
            t.unsubscribe_all(i);
            continue;
        }
        const auto n = std::to_string(i);
        CHECK(t.unsubscribe(i, i % 4 == 1 ? "+/" + n + "/#" : n + "//" + n + "/+"));
    }
    CHECK(t.size() == 1);
    CHECK(t.node_count() == start);
    CHECK(matches(t, "sport/tennis").size() == 1);
}

TEST_CASE("a shared group delivers each message to one member, round robin") {
    topic_tree<std::string> t;
    for (const char* m : {"a", "b", "c"}) t.subscribe(m, "$share/workers/jobs/+", opts(), 0);
    t.subscribe("watcher", "jobs/#", opts(), 0);
    std::map<std::string, int> got;
    for (int i = 0; i < 300; ++i) {
        std::vector<match_result<std::string>> out;
        t.match("jobs/" + std::to_string(i), out);
        REQUIRE(out.size() == 2);
        for (const auto& r : out) {
            ++got[r.subscriber];
            if (r.subscriber == "watcher") {
                CHECK(r.share_group.empty());
            } else {
                CHECK(r.share_group == "workers");
                CHECK(r.filter == "$share/workers/jobs/+");
            }
        }
    }
    CHECK(got == std::map<std::string, int>{{"a", 100}, {"b", 100}, {"c", 100}, {"watcher", 300}});

    // A departed member leaves the rotation to the others.
    CHECK(t.unsubscribe("b", "$share/workers/jobs/+"));
    got.clear();
    for (int i = 0; i < 100; ++i) {
        std::vector<match_result<std::string>> out;
        t.match("jobs/x", out);
        for (const auto& r : out) ++got[r.subscriber];
    }
    CHECK(got == std::map<std::string, int>{{"a", 50}, {"c", 50}, {"watcher", 100}});
}

TEST_CASE("shared groups are keyed by group and filter") {
    tree t;
    t.subscribe(1, "$share/g/a/+", opts(), 0);
    t.subscribe(2, "$share/g/a/b", opts(), 0);  // same group, other filter: another group
    t.subscribe(3, "$share/h/a/+", opts(), 0);  // other group, same filter
    t.subscribe(1, "a/+", opts(), 0);           // ordinary, alongside the shared one
    CHECK(t.size() == 4);
    CHECK(matched_filters(t, "a/b") ==
          std::vector<std::string>{"$share/g/a/+", "$share/g/a/b", "$share/h/a/+", "a/+"});
    CHECK(t.shared_members("g", "a/+") == std::vector<int>{1});
    CHECK(t.shared_members("g", "a/b") == std::vector<int>{2});
    CHECK(t.shared_members("x", "a/+").empty());
    CHECK(t.shared_members("g", "nothing/here").empty());
    // The '$' rule holds inside a share.
    t.subscribe(4, "$share/g/#", opts(), 0);
    CHECK(matches(t, "$SYS/x").empty());
}

TEST_CASE("pick_shared picks the next member the predicate accepts") {
    tree t;
    auto except = [](int x) { return [x](int s) { return s != x; }; };
    t.subscribe(1, "$share/g/t", opts(mqtt::qos::at_least_once), 5);
    CHECK_FALSE(t.pick_shared("g", "t", except(1)).has_value());  // the only member is excluded
    CHECK_FALSE(t.pick_shared("nope", "t", except(1)).has_value());
    CHECK_FALSE(t.pick_shared("g", "other", except(1)).has_value());

    t.subscribe(2, "$share/g/t", opts(mqtt::qos::exactly_once), 6);
    for (int i = 0; i < 10; ++i) {
        const auto p = t.pick_shared("g", "t", except(1));
        REQUIRE(p.has_value());
        CHECK(p->subscriber == 2);
        CHECK(p->options.max_qos == mqtt::qos::exactly_once);
        CHECK(p->subscription_id == 6);
        CHECK(p->filter == "$share/g/t");
        CHECK(p->share_group == "g");
    }
    t.subscribe(3, "$share/g/t", opts(), 0);
    std::map<int, int> got;
    for (int i = 0; i < 30; ++i) ++got[t.pick_shared("g", "t", except(2))->subscriber];
    CHECK(got.count(2) == 0);
    CHECK(got[1] + got[3] == 30);
    CHECK(got[1] >= 10);
    CHECK(got[3] >= 10);
}

TEST_CASE("a shared group passes over members without room, else picks the one with the most") {
    tree t;
    for (int m : {1, 2, 3, 4}) t.subscribe(m, "$share/g/t", opts(), 0);
    std::map<int, std::int64_t> room{{1, 1}, {2, 1}, {3, 1}, {4, 1}};
    auto by_room = [&room](int s) { return room[s]; };
    // Each pick takes one unit of the member's room, as queueing a message does.
    auto pick = [&] {
        std::vector<match_result<int>> out;
        t.match("t", out, by_room);
        REQUIRE(out.size() == 1);
        --room[out.front().subscriber];
        return out.front().subscriber;
    };
    // All with room: plain round robin.
    std::map<int, int> got;
    for (int i = 0; i < 4; ++i) ++got[pick()];
    CHECK(got == std::map<int, int>{{1, 1}, {2, 1}, {3, 1}, {4, 1}});

    // Only 3 has room: it gets the message, wherever the rotation stands.
    room = {{1, 0}, {2, -5}, {3, 2}, {4, 0}};
    CHECK(pick() == 3);
    CHECK(pick() == 3);
    // None has room: the shortest backlog (most room) first, so the backlogs even out
    // and the one far behind gets nothing until the others have caught up with it.
    room = {{1, -3}, {2, -1}, {3, 0}, {4, -6}};
    got.clear();
    for (int i = 0; i < 8; ++i) ++got[pick()];
    CHECK(got == std::map<int, int>{{1, 1}, {2, 3}, {3, 4}});
    CHECK(room == std::map<int, std::int64_t>{{1, -4}, {2, -4}, {3, -4}, {4, -6}});
    // Among equals the rotation decides: no member is favoured.
    room = {{1, -2}, {2, -2}, {3, -2}, {4, -2}};
    got.clear();
    for (int i = 0; i < 40; ++i) ++got[pick()];
    CHECK(got == std::map<int, int>{{1, 10}, {2, 10}, {3, 10}, {4, 10}});
}

TEST_CASE("pick_shared weighs by room among the members the predicate accepts") {
    tree t;
    for (int m : {1, 2, 3}) t.subscribe(m, "$share/g/t", opts(), 0);
    const std::map<int, std::int64_t> room{{1, 5}, {2, -1}, {3, -4}};
    auto by_room = [&room](int s) { return room.at(s); };
    auto not_1 = [](int s) { return s != 1; };
    for (int i = 0; i < 6; ++i) CHECK(t.pick_shared("g", "t", not_1, by_room)->subscriber == 2);
    CHECK_FALSE(t.pick_shared("g", "t", [](int) { return false; }, by_room).has_value());
}

TEST_CASE("aggregate merges one subscriber's overlapping subscriptions") {
    tree t;
    t.subscribe(1, "a/+", opts(mqtt::qos::at_most_once, true, false), 1);
    t.subscribe(1, "a/#", opts(mqtt::qos::exactly_once, false, true), 2);
    t.subscribe(1, "#", opts(mqtt::qos::at_least_once, true, false), 0);
    t.subscribe(2, "a/b", opts(mqtt::qos::at_least_once, true, false), 7);
    t.subscribe(2, "+/b", opts(mqtt::qos::at_most_once, true, false), 8);
    t.subscribe(1, "$share/g/a/b", opts(mqtt::qos::at_least_once), 9);
    t.subscribe(3, "a/c", opts(), 0);

    const auto merged = mqttd::aggregate(matches(t, "a/b"));
    REQUIRE(merged.size() == 3);
    std::map<std::pair<int, std::string>, mqttd::delivery<int>> by;
    for (const auto& d : merged) by.emplace(std::pair{d.subscriber, d.share_group}, d);

    const auto& one = by.at({1, ""});
    CHECK(one.options.max_qos == mqtt::qos::exactly_once);
    CHECK_FALSE(one.options.no_local);           // not every subscription set it
    CHECK(one.options.retain_as_published);      // one of them asked for it
    auto ids = one.subscription_ids;
    std::sort(ids.begin(), ids.end());
    CHECK(ids == std::vector<std::uint32_t>{1, 2});  // the 0 ("none") is not an identifier
    CHECK(one.filter.empty());

    const auto& two = by.at({2, ""});
    CHECK(two.options.max_qos == mqtt::qos::at_least_once);
    CHECK(two.options.no_local);  // all of them set it
    CHECK_FALSE(two.options.retain_as_published);
    ids = two.subscription_ids;
    std::sort(ids.begin(), ids.end());
    CHECK(ids == std::vector<std::uint32_t>{7, 8});

    const auto& shared = by.at({1, "g"});  // stays separate from subscriber 1's own
    CHECK(shared.subscription_ids == std::vector<std::uint32_t>{9});
    CHECK(shared.filter == "$share/g/a/b");
    CHECK(shared.options.max_qos == mqtt::qos::at_least_once);
}

TEST_CASE("concurrent subscribe, unsubscribe and match") {
    tree t;
    constexpr int writers = 4, readers = 3, rounds = 300;  // enough interleavings, fast under TSan
    t.subscribe(-1, "stable/#", opts(), 0);
    t.subscribe(-2, "$share/g/stable/+", opts(), 0);
    t.subscribe(-3, "$share/g/stable/+", opts(), 0);
    const auto start_nodes = t.node_count();
    std::atomic<bool> failed{false};
    std::atomic<int> done{0};

    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
        threads.emplace_back([&, w] {
            const auto base = "w" + std::to_string(w);
            for (int i = 0; i < rounds; ++i) {
                const auto n = std::to_string(i % 50);
                t.subscribe(w, base + "/" + n, opts(), 0);
                t.subscribe(w, "stable/" + base + "/+", opts(), 0);
                t.subscribe(w + 100, "$share/g/stable/" + n, opts(), 0);
                if (i % 3 == 0) t.unsubscribe_all(w + 100);
                if (!t.unsubscribe(w, base + "/" + n)) failed = true;
            }
            ++done;
        });
    }
    for (int r = 0; r < readers; ++r) {
        threads.emplace_back([&] {
            std::vector<match_result<int>> out;
            while (done.load() < writers) {
                out.clear();
                t.match("stable/x", out);
                // The stable subscriber and one pick from group g are always there.
                int stable = 0, shared = 0;
                for (const auto& m : out) {
                    stable += m.subscriber == -1;
                    shared += m.share_group == "g" && m.filter == "$share/g/stable/+";
                }
                if (stable != 1 || shared != 1) failed = true;
                out.clear();
                t.match("w1/7", out);
                t.match("$SYS/x", out);
                if (out.size() > 1) failed = true;
            }
        });
    }
    for (auto& th : threads) th.join();

    CHECK_FALSE(failed.load());
    // Left behind: each writer's "stable/wN/+" and possibly its last shared subscription.
    for (int w = 0; w < writers; ++w) {
        t.unsubscribe_all(w + 100);
        CHECK(t.unsubscribe(w, "stable/w" + std::to_string(w) + "/+"));
    }
    CHECK(t.size() == 3);
    CHECK(t.node_count() == start_nodes);
    CHECK(t.shared_members("g", "stable/+").size() == 2);
}

}  // TEST_SUITE
