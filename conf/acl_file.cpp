#include "conf/acl_file.hpp"

#include <cctype>
#include <fstream>
#include <memory>
#include <sstream>

#include "conf/config_file.hpp"

namespace conf {
namespace {

// An Erlang term as acl.conf uses them: tuples, lists, strings and atoms.
struct term {
    enum class kind { tuple, list, string, atom } what;
    std::string text;  // string or atom
    std::vector<term> items;
    unsigned line = 0;
    bool is_atom(std::string_view a) const { return what == kind::atom && text == a; }
};

class reader {
public:
    reader(const std::string& text, const std::string& path) : s_(text), path_(path) {}

    bool at_end() {
        skip();
        return i_ >= s_.size();
    }

    // One rule: a term and its dot.
    term rule() {
        term t = value();
        skip();
        if (i_ >= s_.size() || s_[i_] != '.') fail("a rule ends with '.'", t.line);
        ++i_;
        return t;
    }

    [[noreturn]] void fail(const std::string& why, unsigned at = 0) const {
        throw config_error({path_, at ? at : line_}, why);
    }

private:
    void skip() {
        while (i_ < s_.size()) {
            const char c = s_[i_];
            if (c == '\n') {
                ++line_;
                ++i_;
            } else if (c == ' ' || c == '\t' || c == '\r') {
                ++i_;
            } else if (c == '%') {
                while (i_ < s_.size() && s_[i_] != '\n') ++i_;
            } else {
                return;
            }
        }
    }

    term value(int depth = 0) {
        if (depth > 16) fail("rules nest at most 16 deep");
        skip();
        if (i_ >= s_.size()) fail("the file ends inside a rule");
        term t{};
        t.line = line_;
        const char c = s_[i_];
        if (c == '{' || c == '[') {
            const char close = c == '{' ? '}' : ']';
            t.what = c == '{' ? term::kind::tuple : term::kind::list;
            ++i_;
            skip();
            if (i_ < s_.size() && s_[i_] == close) {
                ++i_;
                return t;
            }
            for (;;) {
                t.items.push_back(value(depth + 1));
                skip();
                if (i_ >= s_.size()) fail("the file ends inside a rule");
                if (s_[i_] == close) {
                    ++i_;
                    return t;
                }
                if (s_[i_] != ',') fail(std::string("expected ',' or '") + close + "'");
                ++i_;
            }
        }
        if (c == '"' || c == '\'') {
            t.what = c == '"' ? term::kind::string : term::kind::atom;
            ++i_;
            while (i_ < s_.size() && s_[i_] != c) {
                if (s_[i_] == '\n') fail("a string ends on its line");
                if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
                t.text += s_[i_++];
            }
            if (i_ >= s_.size()) fail("a string is not closed");
            ++i_;
            return t;
        }
        if (c >= 'a' && c <= 'z') {
            t.what = term::kind::atom;
            while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_' || s_[i_] == '@'))
                t.text += s_[i_++];
            return t;
        }
        fail(std::string("unexpected '") + c + "'");
    }

    const std::string& s_;
    const std::string& path_;
    std::size_t i_ = 0;
    unsigned line_ = 1;
};

const std::string& string_of(const reader& r, const term& t, const char* what) {
    if (t.what != term::kind::string) r.fail(std::string(what) + " is a string in double quotes", t.line);
    return t.text;
}

auth::who who_of(const reader& r, const term& t) {
    auth::who w;
    if (t.is_atom("all")) return w;
    if (t.what != term::kind::tuple || t.items.size() != 2 || t.items[0].what != term::kind::atom)
        r.fail("who is all, {user, U}, {client, C}, {ipaddr, CIDR}, {ipaddrs, [...]}, {'and', [...]} or {'or', [...]}",
               t.line);
    const auto& tag = t.items[0].text;
    const auto& arg = t.items[1];
    if (tag == "user" || tag == "client") {
        w.what = tag == "user" ? auth::who::kind::user : auth::who::kind::client;
        w.text = string_of(r, arg, tag == "user" ? "a user name" : "a client id");
        return w;
    }
    if (tag == "ipaddr") {
        if (!auth::parse_cidr(string_of(r, arg, "an address"), w))
            r.fail("not an address or CIDR range: \"" + arg.text + "\"", arg.line);
        return w;
    }
    if (tag == "ipaddrs" || tag == "and" || tag == "or") {
        if (arg.what != term::kind::list || arg.items.empty()) r.fail(tag + " takes a list", arg.line);
        w.what = tag == "and" ? auth::who::kind::all_of : auth::who::kind::any_of;
        for (const auto& item : arg.items) {
            if (tag == "ipaddrs") {
                auth::who one;
                if (!auth::parse_cidr(string_of(r, item, "an address"), one))
                    r.fail("not an address or CIDR range: \"" + item.text + "\"", item.line);
                w.parts.push_back(std::move(one));
            } else {
                w.parts.push_back(who_of(r, item));
            }
        }
        return w;
    }
    r.fail("unknown who: " + tag, t.line);
}

auth::acl_rule rule_of(const reader& r, const term& t) {
    auth::acl_rule rule;
    if (t.what != term::kind::tuple || (t.items.size() != 2 && t.items.size() != 4) ||
        !(t.items[0].is_atom("allow") || t.items[0].is_atom("deny")))
        r.fail("a rule is {allow|deny, Who, Access, Topics} or {allow|deny, all}", t.line);
    rule.allow = t.items[0].is_atom("allow");
    if (t.items.size() == 2) {
        if (!t.items[1].is_atom("all")) r.fail("a two-part rule is {allow, all} or {deny, all}", t.line);
        rule.every_topic = true;
        return rule;
    }
    rule.for_whom = who_of(r, t.items[1]);
    const auto& a = t.items[2];
    if (a.is_atom("subscribe")) rule.what = auth::access::subscribe;
    else if (a.is_atom("publish")) rule.what = auth::access::publish;
    else if (a.is_atom("pubsub")) rule.what = auth::access::pubsub;
    else r.fail("access is subscribe, publish or pubsub", a.line);
    const auto& topics = t.items[3];
    if (topics.what != term::kind::list || topics.items.empty()) r.fail("topics are a list of strings", topics.line);
    for (const auto& item : topics.items) {
        auth::topic_rule tr;
        if (item.what == term::kind::tuple && item.items.size() == 2 && item.items[0].is_atom("eq")) {
            tr.literal = true;
            tr.text = string_of(r, item.items[1], "the topic of {eq, T}");
        } else {
            tr.text = string_of(r, item, "a topic");
        }
        if (tr.text.empty()) r.fail("a topic is not empty", item.line);
        rule.topics.push_back(std::move(tr));
    }
    return rule;
}

}  // namespace

std::vector<auth::acl_rule> parse_acl(const std::string& text, const std::string& path) {
    reader r(text, path);
    std::vector<auth::acl_rule> rules;
    while (!r.at_end()) rules.push_back(rule_of(r, r.rule()));
    return rules;
}

std::vector<auth::acl_rule> read_acl_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw config_error({path, 0}, "cannot read the ACL file");
    std::ostringstream text;
    text << in.rdbuf();
    return parse_acl(text.str(), path);
}

}  // namespace conf
