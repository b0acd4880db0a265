// The broker's outgoing topic aliases: bounded, least recently used given up first.
#include <doctest/doctest.h>

#include "broker/outbound_aliases.hpp"

using mqttd::outbound_aliases;

namespace {

// Picks and uses, as sending a PUBLISH does.
outbound_aliases::choice send(outbound_aliases& a, std::string_view topic) {
    const auto c = a.pick(topic);
    a.use(topic, c);
    return c;
}

}  // namespace

TEST_CASE("outbound aliases: none when the client allows none") {
    outbound_aliases a(0);
    CHECK(send(a, "t").alias == 0);
    CHECK(send(a, "t").alias == 0);
    CHECK(a.size() == 0);
}

TEST_CASE("outbound aliases: a topic's first PUBLISH sets its alias, later ones may leave the name out") {
    outbound_aliases a(2);
    auto first = send(a, "a/b");
    CHECK(first.alias == 1);
    CHECK_FALSE(first.known);
    auto again = send(a, "a/b");
    CHECK(again.alias == 1);
    CHECK(again.known);
    CHECK(send(a, "c").alias == 2);
    CHECK(a.pick("c").known);
}

TEST_CASE("outbound aliases: a pick that was not sent changes nothing") {
    outbound_aliases a(1);
    CHECK(a.pick("x").alias == 1);
    CHECK_FALSE(a.pick("x").known);  // never sent, so the client does not know it
    CHECK(a.size() == 0);
}

TEST_CASE("outbound aliases: when all are taken, the least recently used topic gives its alias up") {
    outbound_aliases a(2);
    send(a, "one");    // alias 1
    send(a, "two");    // alias 2
    send(a, "one");    // "two" is now the least recently used
    auto three = send(a, "three");
    CHECK(three.alias == 2);
    CHECK_FALSE(three.known);
    CHECK(a.size() == 2);
    CHECK(a.pick("one").known);
    CHECK_FALSE(a.pick("two").known);
    CHECK(a.pick("three").known);
    auto two = send(a, "two");  // "one" is now the least recently used
    CHECK(two.alias == 1);
    CHECK(a.pick("three").alias == 2);
}
