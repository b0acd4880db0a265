// EMQX's ACL rules: first match decides; who, access and topics as acl.conf means them.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "auth/acl.hpp"

using auth::access;
using auth::acl_verdict;

namespace {

auth::acl_rule rule(bool allow, auth::who w, access a, std::vector<auth::topic_rule> topics) {
    auth::acl_rule r;
    r.allow = allow;
    r.for_whom = std::move(w);
    r.what = a;
    r.topics = std::move(topics);
    return r;
}

auth::who user(std::string u) {
    auth::who w;
    w.what = auth::who::kind::user;
    w.text = std::move(u);
    return w;
}

auth::who client(std::string c) {
    auth::who w;
    w.what = auth::who::kind::client;
    w.text = std::move(c);
    return w;
}

auth::who cidr(const char* text) {
    auth::who w;
    REQUIRE(auth::parse_cidr(text, w));
    return w;
}

auth::acl_rule everything(bool allow) {
    auth::acl_rule r;
    r.allow = allow;
    r.every_topic = true;
    return r;
}

const auth::acl_client alice{"alice", "dev-1", "10.0.0.7"};
const auth::acl_client nobody{"", "dev-2", "192.168.1.9"};

}  // namespace

TEST_CASE("acl: the first matching rule decides; no rule: no match") {
    const std::vector<auth::acl_rule> rules{
        rule(false, user("alice"), access::publish, {{"secret/#"}}),
        rule(true, {}, access::pubsub, {{"secret/#"}, {"open/+"}}),
    };
    CHECK(check_acl(rules, alice, access::publish, "secret/x") == acl_verdict::deny);
    CHECK(check_acl(rules, alice, access::subscribe, "secret/x") == acl_verdict::allow);
    CHECK(check_acl(rules, nobody, access::publish, "secret/x") == acl_verdict::allow);
    CHECK(check_acl(rules, alice, access::publish, "open/a") == acl_verdict::allow);
    CHECK(check_acl(rules, alice, access::publish, "open/a/b") == acl_verdict::no_match);
    CHECK(check_acl({everything(false)}, alice, access::subscribe, "any") == acl_verdict::deny);
}

TEST_CASE("acl: %u and %c stand for whole levels; without a user name %u matches nothing") {
    const std::vector<auth::acl_rule> rules{rule(true, {}, access::pubsub, {{"users/%u/#"}, {"clients/%c"}, {"x%u"}})};
    CHECK(check_acl(rules, alice, access::publish, "users/alice/state") == acl_verdict::allow);
    CHECK(check_acl(rules, alice, access::publish, "users/bob/state") == acl_verdict::no_match);
    CHECK(check_acl(rules, alice, access::publish, "clients/dev-1") == acl_verdict::allow);
    CHECK(check_acl(rules, alice, access::publish, "clients/dev-2") == acl_verdict::no_match);
    CHECK(check_acl(rules, alice, access::publish, "xalice") == acl_verdict::no_match);
    CHECK(check_acl(rules, alice, access::publish, "x%u") == acl_verdict::allow);  // not a whole level: literal
    CHECK(check_acl(rules, nobody, access::publish, "users//state") == acl_verdict::no_match);
}

TEST_CASE("acl: a subscribed filter is covered only by an equal or wider rule; {eq, T} is literal") {
    const std::vector<auth::acl_rule> rules{
        rule(false, {}, access::subscribe, {{"#", true}}),
        rule(true, {}, access::subscribe, {{"a/+/c"}, {"b/#"}}),
    };
    CHECK(check_acl(rules, alice, access::subscribe, "#") == acl_verdict::deny);
    CHECK(check_acl(rules, alice, access::subscribe, "a/x/c") == acl_verdict::allow);
    CHECK(check_acl(rules, alice, access::subscribe, "a/+/c") == acl_verdict::allow);
    CHECK(check_acl(rules, alice, access::subscribe, "a/#") == acl_verdict::no_match);
    CHECK(check_acl(rules, alice, access::subscribe, "a/x/#") == acl_verdict::no_match);
    CHECK(check_acl(rules, alice, access::subscribe, "b/+/#") == acl_verdict::allow);
    CHECK(check_acl(rules, alice, access::subscribe, "b") == acl_verdict::allow);  // b/# covers its parent
    CHECK(check_acl(rules, alice, access::subscribe, "+/x/c") == acl_verdict::no_match);
}

TEST_CASE("acl: wildcards at the first level do not reach $ topics [MQTT-4.7.2-1]") {
    const std::vector<auth::acl_rule> rules{rule(true, {}, access::subscribe, {{"#"}, {"+/x"}})};
    CHECK(check_acl(rules, alice, access::subscribe, "$SYS/broker") == acl_verdict::no_match);
    CHECK(check_acl(rules, alice, access::subscribe, "$x/x") == acl_verdict::no_match);
    CHECK(check_acl(rules, alice, access::subscribe, "a/x") == acl_verdict::allow);
}

TEST_CASE("acl: who: addresses and ranges, clients, and/or") {
    auth::who both;
    both.what = auth::who::kind::all_of;
    both.parts = {user("alice"), cidr("10.0.0.0/8")};
    auth::who either;
    either.what = auth::who::kind::any_of;
    either.parts = {client("dev-2"), cidr("::1")};
    const std::vector<auth::acl_rule> rules{
        rule(true, both, access::publish, {{"both"}}),
        rule(true, either, access::publish, {{"either"}}),
        rule(true, cidr("192.168.1.0/28"), access::publish, {{"lan"}}),
    };
    CHECK(check_acl(rules, alice, access::publish, "both") == acl_verdict::allow);
    CHECK(check_acl(rules, {"alice", "dev-1", "11.0.0.1"}, access::publish, "both") == acl_verdict::no_match);
    CHECK(check_acl(rules, nobody, access::publish, "either") == acl_verdict::allow);
    CHECK(check_acl(rules, {"", "x", "::1"}, access::publish, "either") == acl_verdict::allow);
    CHECK(check_acl(rules, nobody, access::publish, "lan") == acl_verdict::allow);
    CHECK(check_acl(rules, {"", "x", "192.168.1.16"}, access::publish, "lan") == acl_verdict::no_match);
    CHECK(check_acl(rules, {"", "x", "::ffff:192.168.1.3"}, access::publish, "lan") == acl_verdict::allow);
    auth::who w;
    CHECK_FALSE(auth::parse_cidr("10.0.0.0/33", w));
    CHECK_FALSE(auth::parse_cidr("10.0.0/8", w));
    CHECK_FALSE(auth::parse_cidr("10.0.0.0/", w));
    CHECK(auth::parse_cidr("fd00::/8", w));
}
