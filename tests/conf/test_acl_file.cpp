// acl_file in EMQX's acl.conf format, and its errors by file and line.
#include <doctest/doctest.h>

#include <string>

#include "conf/acl_file.hpp"
#include "conf/config_file.hpp"

namespace {

std::string error_of(const std::string& text) {
    try {
        conf::parse_acl(text, "acl.conf");
    } catch (const conf::config_error& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace

TEST_CASE("acl file: EMQX's default acl.conf") {
    const auto rules = conf::parse_acl(R"(%% Allow "dashboard" users to subscribe to "$SYS/#" topics
{allow, {user, "dashboard"}, subscribe, ["$SYS/#"]}.

%% Allow users with IP address "127.0.0.1" to publish/subscribe to topics "$SYS/#", "#"
{allow, {ipaddr, "127.0.0.1"}, pubsub, ["$SYS/#", "#"]}.

%% Deny "All Users" subscribe to "$SYS/#" "#" Topics
{deny, all, subscribe, ["$SYS/#", {eq, "#"}]}.

%% Allow any other publish/subscribe operation
{allow, all}.
)",
                                       "acl.conf");
    REQUIRE(rules.size() == 4);
    CHECK(rules[0].allow);
    CHECK(rules[0].for_whom.what == auth::who::kind::user);
    CHECK(rules[1].for_whom.what == auth::who::kind::ipaddr);
    CHECK(rules[1].what == auth::access::pubsub);
    CHECK_FALSE(rules[2].allow);
    CHECK(rules[2].topics[1].literal);
    CHECK(rules[3].every_topic);
    const auth::acl_client local{"u", "c", "127.0.0.1"}, remote{"u", "c", "10.1.1.1"}, dash{"dashboard", "c", "10.1.1.1"};
    CHECK(check_acl(rules, local, auth::access::subscribe, "#") == auth::acl_verdict::allow);
    CHECK(check_acl(rules, remote, auth::access::subscribe, "#") == auth::acl_verdict::deny);
    CHECK(check_acl(rules, remote, auth::access::subscribe, "$SYS/broker/uptime") == auth::acl_verdict::deny);
    CHECK(check_acl(rules, dash, auth::access::subscribe, "$SYS/broker/uptime") == auth::acl_verdict::allow);
    CHECK(check_acl(rules, remote, auth::access::subscribe, "a/#") == auth::acl_verdict::allow);
}

TEST_CASE("acl file: who forms, quoted atoms, escapes") {
    const auto rules = conf::parse_acl(
        "{allow, {'and', [{user, \"a\\\"b\"}, {ipaddrs, [\"10.0.0.0/8\", \"::1\"]}]}, publish, [\"t\"]}.\n"
        "{deny, {'or', [{client, \"c1\"}, {user, \"u1\"}]}, subscribe, [{eq, \"#\"}]}.",
        "acl.conf");
    REQUIRE(rules.size() == 2);
    CHECK(rules[0].for_whom.what == auth::who::kind::all_of);
    CHECK(rules[0].for_whom.parts[0].text == "a\"b");
    CHECK(rules[0].for_whom.parts[1].what == auth::who::kind::any_of);
    CHECK(rules[0].for_whom.parts[1].parts.size() == 2);
    CHECK(rules[1].for_whom.what == auth::who::kind::any_of);
}

TEST_CASE("acl file: a malformed rule names its line") {
    CHECK(error_of("{allow, all}.\n{allow, all}\n") == "acl.conf:2: a rule ends with '.'");
    CHECK(error_of("\n\n{permit, all}.") == "acl.conf:3: a rule is {allow|deny, Who, Access, Topics} or {allow|deny, all}");
    CHECK(error_of("{allow, all, read, [\"t\"]}.") == "acl.conf:1: access is subscribe, publish or pubsub");
    CHECK(error_of("{allow, {ipaddr, \"300.1.1.1\"}, publish, [\"t\"]}.") ==
          "acl.conf:1: not an address or CIDR range: \"300.1.1.1\"");
    CHECK(error_of("{allow, {group, \"g\"}, publish, [\"t\"]}.") == "acl.conf:1: unknown who: group");
    CHECK(error_of("{allow, all, publish, []}.") == "acl.conf:1: topics are a list of strings");
    CHECK(error_of("{allow, all, publish, [t]}.") == "acl.conf:1: a topic is a string in double quotes");
    CHECK(error_of("{allow, all, publish, [\"t\"]") == "acl.conf:1: the file ends inside a rule");
    CHECK(error_of("{allow, all, publish, [\"t").find("acl.conf:1:") == 0);
}
