#pragma once
// Authorization rules in EMQX's model: each rule allows or denies a kind of access
// (subscribe, publish or both) to some topics for some clients; the first rule that
// matches decides, and when none does the caller applies acl_nomatch.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace auth {

enum class access : std::uint8_t { subscribe = 1, publish = 2, pubsub = 3 };

// Who a rule is for: everyone, a user name, a client id, an address range (CIDR), or
// all / any of several.
struct who {
    enum class kind { all, user, client, ipaddr, all_of, any_of } what = kind::all;
    std::string text;         // user name or client id
    std::uint8_t family = 0;  // ipaddr: 4 or 6
    std::uint8_t prefix = 0;  // ipaddr: bits that must match
    std::uint8_t address[16] = {};
    std::vector<who> parts;   // all_of, any_of
};

// A topic in a rule: a filter (its wildcards match), with %u and %c standing for the
// user name and client id where they are a whole level; or, with `literal`, only this
// exact text ({eq, "#"} is the filter "#" itself, not every topic).
struct topic_rule {
    std::string text;
    bool literal = false;
};

struct acl_rule {
    bool allow = false;
    who for_whom;
    access what = access::pubsub;
    bool every_topic = false;  // {allow, all}. / {deny, all}.
    std::vector<topic_rule> topics;
};

struct acl_client {
    std::string_view username;  // empty: none
    std::string_view clientid;
    std::string_view address;   // IP address as text
};

enum class acl_verdict { allow, deny, no_match };

// `topic` is the topic of a PUBLISH or the filter of a SUBSCRIBE. A subscribed filter
// matches a rule's filter level by level, its own wildcards only where the rule has
// the same wildcard or a wider one ('+' under '+' or '#', '#' under '#').
acl_verdict check_acl(const std::vector<acl_rule>& rules, const acl_client& c, access a, std::string_view topic);

// "192.168.0.0/16", "10.1.2.3", "::1", "fd00::/8" into an ipaddr `who`; false if not one.
bool parse_cidr(std::string_view text, who& out);

}  // namespace auth
