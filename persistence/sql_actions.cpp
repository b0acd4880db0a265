// SQL actions: `{"action": {"sql": [STATEMENTS]}}`. Each statement is a prepared
// statement whose ${name} variables conf/ has already turned into $1, $2, ... (never text
// pasted into SQL). The statements of an action run in order, each in its own sync
// segment (its own implicit transaction): a failing one is logged and counted, and
// never affects the others or the broker.
//
// Values: clientid, username, topic, msgid as text; qos and retain (0/1) as integers;
// timestamp as the message's time in milliseconds since 1970-01-01 UTC; payload as raw
// bytes where the server typed the parameter bytea, else as text with the payload rule
// of payload_codec.hpp.
#include <fmt/format.h>

#include "persistence/backend_impl.hpp"

namespace mqttd::persistence {

namespace {

class action_op final : public stream_op {
public:
    action_op(const pool_runtime& p, const std::string& name, const conf::sql_statement& st,
              std::shared_ptr<const event_vars> vars, conf::hookpoint point)
        : pool_(p), name_(name), st_(st), vars_(std::move(vars)), point_(point) {
        own_segment = true;
        bytes = 128 + (vars_->msg ? vars_->msg->payload.size() * 2 : 0);
    }

    void build(pg::batch& b) const override {
        const auto& v = *vars_;
        const std::vector<bool>* bytea = nullptr;
        if (auto it = pool_.schema.bytea_params.find(name_); it != pool_.schema.bytea_params.end())
            bytea = &it->second;
        std::vector<pg::param> params;
        params.reserve(st_.params.size());
        std::string scratch, qos = std::to_string(v.qos), ts = std::to_string(v.timestamp_ms);
        for (std::size_t i = 0; i < st_.params.size(); ++i) {
            const auto& n = st_.params[i];
            if (n == "clientid") params.emplace_back(v.clientid);
            else if (n == "username") params.emplace_back(v.username);
            else if (n == "topic") params.emplace_back(v.topic);
            else if (n == "msgid") params.emplace_back(v.msgid);
            else if (n == "qos") params.emplace_back(std::string_view(qos));
            else if (n == "retain") params.emplace_back(std::string_view(v.retain ? "1" : "0"));
            else if (n == "timestamp") params.emplace_back(std::string_view(ts));
            else if (n == "payload") {
                const auto bytes = v.msg ? v.msg->payload.view() : std::string_view();
                if (bytea && i < bytea->size() && (*bytea)[i])
                    params.push_back(pg::param::binary(bytes));
                else
                    params.emplace_back(payload_to_text(bytes, scratch));
            } else {
                params.emplace_back(std::nullopt);  // conf/ refuses unknown names; defensive
            }
        }
        b.execute(name_, std::span<const pg::param>(params));
    }

    std::string describe() const override {
        return fmt::format("SQL action on {} (client {}{}{}): {}", conf::to_string(point_), vars_->clientid,
                           vars_->topic.empty() ? "" : ", topic ", vars_->topic, st_.text);
    }

private:
    const pool_runtime& pool_;
    const std::string& name_;
    const conf::sql_statement& st_;
    std::shared_ptr<const event_vars> vars_;
    conf::hookpoint point_;
};

}  // namespace

void backend::impl::push_actions(const hook_runtime& h, const std::shared_ptr<const event_vars>& vars,
                                 const publish_hold& hold) {
    const auto& statements = std::get<std::vector<conf::sql_statement>>(h.config->action);
    auto& s = *h.pool->stream;
    for (std::size_t i = 0; i < statements.size(); ++i) {
        auto op = std::make_unique<action_op>(*h.pool, h.statement_names[i], statements[i], vars, h.config->point);
        if (h.config->point == conf::hookpoint::message_publish)
            keep_hold(*op, hold, s);
        else
            op->when_over = shed::over_bound;  // nothing waits for it
        s.push(std::move(op));
    }
}

}  // namespace mqttd::persistence
