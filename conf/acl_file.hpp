#pragma once
// The ACL file named by acl_file, in EMQX's acl.conf format: Erlang terms, each ending
// with a dot, `%` comments:
//   {allow, {user, "dashboard"}, subscribe, ["$SYS/#"]}.
//   {allow, {ipaddr, "127.0.0.1"}, pubsub, ["$SYS/#", "#"]}.
//   {deny, all, subscribe, ["$SYS/#", {eq, "#"}]}.
//   {allow, all}.
// Who: all, {user, U}, {client, C}, {ipaddr, CIDR}, {ipaddrs, [CIDR, ...]},
// {'and', [Who, ...]}, {'or', [Who, ...]}. Start-up (and reload) only.
#include <string>
#include <vector>

#include "auth/acl.hpp"

namespace conf {

// Throws config_error naming the file and the line of the first malformed rule.
std::vector<auth::acl_rule> read_acl_file(const std::string& path);
// The same, from text (the file's name for messages).
std::vector<auth::acl_rule> parse_acl(const std::string& text, const std::string& path);

}  // namespace conf
