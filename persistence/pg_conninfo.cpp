#include "persistence/pg_conninfo.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <memory>

namespace mqttd::pg {

std::optional<conninfo> conninfo::parse(std::string_view text, std::string& error) {
    std::string s(text);
    char* err = nullptr;
    std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> opts(PQconninfoParse(s.c_str(), &err),
                                                                       &PQconninfoFree);
    if (!opts) {
        error = err ? err : "out of memory";
        PQfreemem(err);
        return std::nullopt;
    }
    conninfo ci;
    for (auto* o = opts.get(); o->keyword; ++o)
        if (o->val && *o->val) ci.set(o->keyword, o->val);
    return ci;
}

conninfo& conninfo::set(std::string_view keyword, std::string_view value) {
    auto it = std::find_if(entries_.begin(), entries_.end(), [&](const auto& e) { return e.first == keyword; });
    if (value.empty()) {
        if (it != entries_.end()) entries_.erase(it);
    } else if (it != entries_.end()) {
        it->second = value;
    } else {
        entries_.emplace_back(keyword, value);
    }
    return *this;
}

std::string_view conninfo::get(std::string_view keyword) const noexcept {
    for (const auto& [k, v] : entries_)
        if (k == keyword) return v;
    return {};
}

std::string conninfo::describe() const {
    std::string host(get("host"));
    if (host.empty()) host = get("hostaddr");
    if (host.empty()) host = "localhost";
    std::string out;
    if (auto u = get("user"); !u.empty()) out.append(u).append("@");
    out += host;
    if (auto p = get("port"); !p.empty()) out.append(":").append(p);
    if (auto d = get("dbname"); !d.empty()) out.append("/").append(d);
    return out;
}

}  // namespace mqttd::pg
