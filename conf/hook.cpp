#include "conf/hook.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "conf/units.hpp"

namespace conf {
namespace {

constexpr std::string_view hook_prefix = "backend.pgsql.hook.";

constexpr std::array<std::string_view, 1> client_vars{"clientid"};
constexpr std::array<std::string_view, 3> session_vars{"clientid", "topic", "qos"};
constexpr std::array<std::string_view, 8> publish_vars{"msgid",  "clientid", "topic",     "qos",
                                                       "retain", "payload",  "timestamp", "username"};
constexpr std::array<std::string_view, 3> ack_vars{"msgid", "clientid", "topic"};

struct hookpoint_info {
    std::string_view name;
    hookpoint point;
    std::span<const std::string_view> vars;
};
constexpr std::array<hookpoint_info, 7> hookpoints{{
    {"client.connected", hookpoint::client_connected, client_vars},
    {"client.disconnected", hookpoint::client_disconnected, client_vars},
    {"session.subscribed", hookpoint::session_subscribed, session_vars},
    {"session.unsubscribed", hookpoint::session_unsubscribed, session_vars},
    {"message.publish", hookpoint::message_publish, publish_vars},
    {"message.acked", hookpoint::message_acked, ack_vars},
    {"message.delivered", hookpoint::message_delivered, ack_vars},
}};

struct function_info {
    std::string_view name;
    hook_function function;
    hookpoint serves;
};
constexpr std::array<function_info, 10> functions{{
    {"on_client_connected", hook_function::on_client_connected, hookpoint::client_connected},
    {"on_subscribe_lookup", hook_function::on_subscribe_lookup, hookpoint::client_connected},
    {"on_client_disconnected", hook_function::on_client_disconnected, hookpoint::client_disconnected},
    {"on_message_fetch", hook_function::on_message_fetch, hookpoint::session_subscribed},
    {"on_retain_lookup", hook_function::on_retain_lookup, hookpoint::session_subscribed},
    {"on_message_publish", hook_function::on_message_publish, hookpoint::message_publish},
    {"on_message_store", hook_function::on_message_store, hookpoint::message_publish},
    {"on_message_retain", hook_function::on_message_retain, hookpoint::message_publish},
    {"on_retain_delete", hook_function::on_retain_delete, hookpoint::message_publish},
    {"on_message_acked", hook_function::on_message_acked, hookpoint::message_acked},
}};

const hookpoint_info& info(hookpoint p) {
    return *std::find_if(hookpoints.begin(), hookpoints.end(), [p](const auto& i) { return i.point == p; });
}

// Non-empty; '#' only as the whole last level; '+' only as a whole level.
bool valid_topic_filter(std::string_view filter) {
    if (filter.empty() || filter.find('\0') != std::string_view::npos) return false;
    for (std::size_t start = 0;;) {
        const auto end = filter.find('/', start);
        const auto level = filter.substr(start, end - start);
        const bool last = end == std::string_view::npos;
        if (level.find('#') != std::string_view::npos && (level != "#" || !last)) return false;
        if (level.find('+') != std::string_view::npos && level != "+") return false;
        if (last) return true;
        start = end + 1;
    }
}

// Reads one hook entry; `fail` prefixes every message with the entry's file, line and key.
class hook_reader {
public:
    explicit hook_reader(const entry& e) : e_(e) {}

    [[noreturn]] void fail(std::string_view message) const {
        throw config_error(e_.where, fmt::format("{}: {}", e_.key, message));
    }

    // "<hookpoint>.<n>" after the prefix; n a positive integer without leading zeros,
    // so that two keys never share a number.
    void read_key(hook& h) const {
        const auto rest = std::string_view(e_.key).substr(hook_prefix.size());
        const auto dot = rest.rfind('.');
        const auto name = rest.substr(0, dot);
        const auto it = std::find_if(hookpoints.begin(), hookpoints.end(),
                                     [&](const auto& i) { return i.name == name; });
        if (dot == std::string_view::npos || it == hookpoints.end())
            fail(fmt::format("unknown hookpoint \"{}\"", name));
        const auto digits = rest.substr(dot + 1);
        const auto n = parse_uint(digits);
        if (!n || *n == 0 || *n > UINT32_MAX || digits.front() == '0')
            fail(fmt::format("hook number \"{}\" is not a positive integer", digits));
        h.point = it->point;
        h.number = static_cast<std::uint32_t>(*n);
    }

    void read_action(hook& h, const boost::json::value* action) const {
        if (!action) fail("missing \"action\"");
        const auto* obj = action->if_object();
        if (!obj || obj->size() != 1 || !(obj->contains("function") || obj->contains("sql")))
            fail("\"action\" must be {\"function\": NAME} or {\"sql\": [STATEMENT, ...]}");
        if (const auto* f = obj->if_contains("function")) {
            const auto* name = f->if_string();
            const auto it = std::find_if(functions.begin(), functions.end(),
                                         [&](const auto& i) { return name && i.name == *name; });
            if (it == functions.end()) fail(fmt::format("unknown function {}", boost::json::serialize(*f)));
            if (it->serves != h.point)
                fail(fmt::format("function {} serves {}, not {}", it->name, to_string(it->serves), to_string(h.point)));
            h.action = it->function;
            return;
        }
        const auto& sql = obj->at("sql");
        std::vector<const boost::json::value*> texts;
        if (sql.is_string()) texts.push_back(&sql);
        if (const auto* list = sql.if_array())
            for (const auto& s : *list) texts.push_back(&s);
        const bool valid = !texts.empty() && std::all_of(texts.begin(), texts.end(), [](const auto* s) {
            return s->is_string() && !s->get_string().empty();
        });
        if (!valid) fail("\"sql\" must be a non-empty statement or a non-empty list of them");
        std::vector<sql_statement> statements;
        for (const auto* s : texts) {
            try {
                statements.push_back(bind_variables(s->get_string(), sql_variables(h.point)));
            } catch (const std::invalid_argument& x) {
                fail(x.what());
            }
        }
        h.action = std::move(statements);
    }

    void read_offline_opts(hook& h, const boost::json::value& opts) const {
        const auto* fn = std::get_if<hook_function>(&h.action);
        if (!fn || *fn != hook_function::on_message_fetch) fail("\"offline_opts\" applies to on_message_fetch only");
        const auto* obj = opts.if_object();
        if (!obj) fail("\"offline_opts\" must be an object");
        for (const auto& [key, value] : *obj) {
            const bool infinity = value.is_string() && value.get_string() == "infinity";
            if (key == "max_returned_count") {
                if (infinity)
                    h.offline.max_returned_count.reset();
                else if (value.is_uint64() || (value.is_int64() && value.get_int64() >= 0))
                    h.offline.max_returned_count = value.to_number<std::uint64_t>();
                else
                    fail("offline_opts.max_returned_count must be a count or \"infinity\"");
            } else if (key == "time_range") {
                const auto d = value.is_string() ? parse_duration(value.get_string()) : std::nullopt;
                if (infinity)
                    h.offline.time_range.reset();
                else if (d)
                    h.offline.time_range = *d;
                else
                    fail("offline_opts.time_range must be a duration such as \"2h\" or \"infinity\"");
            } else {
                fail(fmt::format("unknown offline_opts field \"{}\"", std::string_view(key)));
            }
        }
    }

private:
    const entry& e_;
};

}  // namespace

std::string_view to_string(hookpoint p) noexcept { return info(p).name; }

std::span<const std::string_view> sql_variables(hookpoint p) noexcept { return info(p).vars; }

std::string_view to_string(hook_function f) noexcept {
    return std::find_if(functions.begin(), functions.end(), [f](const auto& i) { return i.function == f; })->name;
}

hook parse_hook(const entry& e, const offline_limits& defaults) {
    const hook_reader r(e);
    hook h;
    h.where = e.where;
    h.offline = defaults;
    r.read_key(h);

    boost::system::error_code ec;
    const auto json = boost::json::parse(e.value, ec);
    if (ec) r.fail(fmt::format("bad JSON: {}", ec.message()));
    const auto* obj = json.if_object();
    if (!obj) r.fail("expected a JSON object");
    for (const auto& [key, value] : *obj)
        if (key != "action" && key != "pool" && key != "topic" && key != "offline_opts")
            r.fail(fmt::format("unknown field \"{}\"", std::string_view(key)));

    r.read_action(h, obj->if_contains("action"));

    const auto* pool = obj->if_contains("pool");
    if (!pool || !pool->is_string() || pool->get_string().empty()) r.fail("\"pool\" must name a pool");
    h.pool = pool->get_string();

    if (const auto* topic = obj->if_contains("topic")) {
        if (!topic->is_string() || !valid_topic_filter(topic->get_string()))
            r.fail(fmt::format("bad topic filter {}", boost::json::serialize(*topic)));
        h.topic = topic->get_string();
    }
    if (const auto* opts = obj->if_contains("offline_opts")) r.read_offline_opts(h, *opts);
    return h;
}

}  // namespace conf
