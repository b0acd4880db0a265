#include "auth/acl.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace auth {
namespace {

std::vector<std::string_view> levels(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t pos = 0;
    for (;;) {
        const auto slash = s.find('/', pos);
        out.push_back(s.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos));
        if (slash == std::string_view::npos) return out;
        pos = slash + 1;
    }
}

bool address_matches(const who& w, std::string_view text) {
    std::uint8_t addr[16] = {};
    const std::string s(text);
    std::uint8_t family = 0;
    if (inet_pton(AF_INET, s.c_str(), addr) == 1) {
        family = 4;
    } else if (inet_pton(AF_INET6, s.c_str(), addr) == 1) {
        family = 6;
        // An IPv4 client on an IPv6 socket (::ffff:a.b.c.d) is matched as IPv4.
        static constexpr std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (w.family == 4 && std::memcmp(addr, mapped, 12) == 0) {
            std::memmove(addr, addr + 12, 4);
            family = 4;
        }
    }
    if (family == 0 || family != w.family) return false;
    const unsigned full = w.prefix / 8, rest = w.prefix % 8;
    if (std::memcmp(addr, w.address, full) != 0) return false;
    if (rest == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xFF << (8 - rest));
    return (addr[full] & mask) == (w.address[full] & mask);
}

bool who_matches(const who& w, const acl_client& c) {
    switch (w.what) {
        case who::kind::all: return true;
        case who::kind::user: return !c.username.empty() && c.username == w.text;
        case who::kind::client: return c.clientid == w.text;
        case who::kind::ipaddr: return address_matches(w, c.address);
        case who::kind::all_of:
            for (const auto& p : w.parts)
                if (!who_matches(p, c)) return false;
            return true;
        case who::kind::any_of:
            for (const auto& p : w.parts)
                if (who_matches(p, c)) return true;
            return false;
    }
    return false;
}

// A rule's filter against a topic or a subscribed filter, %u and %c filled in where they
// are a whole level; a placeholder without a value (no user name) matches nothing.
bool filter_matches(std::string_view rule, const acl_client& c, const std::vector<std::string_view>& have) {
    const auto want = levels(rule);
    // [MQTT-4.7.2-1]: '#' and '+' at the first level do not match topics starting with '$'.
    const bool dollar = !have.front().empty() && have.front().front() == '$';
    std::size_t i = 0;
    for (; i < want.size(); ++i) {
        auto w = want[i];
        if (w == "%u") {
            if (c.username.empty()) return false;
            w = c.username;
        } else if (w == "%c") {
            w = c.clientid;
        }
        if (want[i] == "#") return !(i == 0 && dollar);
        if (i >= have.size()) return false;
        if (want[i] == "+") {
            if (i == 0 && dollar) return false;
            if (have[i] == "#") return false;  // a narrower rule does not cover a '#' subscription
            continue;
        }
        if (have[i] != w) return false;  // a subscribed '+' or '#' only under the same in the rule
    }
    return i == have.size();
}

bool covers(access rule, access asked) {
    return (static_cast<unsigned>(rule) & static_cast<unsigned>(asked)) != 0;
}

}  // namespace

acl_verdict check_acl(const std::vector<acl_rule>& rules, const acl_client& c, access a, std::string_view topic) {
    const auto have = levels(topic);
    for (const auto& r : rules) {
        if (!r.every_topic) {
            if (!covers(r.what, a) || !who_matches(r.for_whom, c)) continue;
            bool hit = false;
            for (const auto& t : r.topics) {
                hit = t.literal ? t.text == topic : filter_matches(t.text, c, have);
                if (hit) break;
            }
            if (!hit) continue;
        }
        return r.allow ? acl_verdict::allow : acl_verdict::deny;
    }
    return acl_verdict::no_match;
}

bool parse_cidr(std::string_view text, who& out) {
    const auto slash = text.find('/');
    const std::string host(text.substr(0, slash));
    out.what = who::kind::ipaddr;
    std::memset(out.address, 0, sizeof out.address);
    unsigned bits = 0;
    if (inet_pton(AF_INET, host.c_str(), out.address) == 1) {
        out.family = 4;
        bits = 32;
    } else if (inet_pton(AF_INET6, host.c_str(), out.address) == 1) {
        out.family = 6;
        bits = 128;
    } else {
        return false;
    }
    unsigned prefix = bits;
    if (slash != std::string_view::npos) {
        const auto p = text.substr(slash + 1);
        const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
        if (p.empty() || ec != std::errc{} || end != p.data() + p.size() || prefix > bits) return false;
    }
    out.prefix = static_cast<std::uint8_t>(prefix);
    return true;
}

}  // namespace auth
