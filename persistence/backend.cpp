#include "persistence/backend.hpp"

#include <fmt/format.h>

#include <boost/asio/post.hpp>

#include <future>

#include "broker/log.hpp"
#include "persistence/backend_impl.hpp"
#include "protocol/topic.hpp"

namespace mqttd::persistence {

namespace asio = boost::asio;

void backend_log(pg::log_level l, std::string_view text) {
    const auto level = log::level_of(l);
    if (log::enabled(level)) log::write(level, fmt::format("pgsql {}", text));
}

bool serves_retained(const conf::backend_settings& settings) {
    for (const auto& h : settings.hooks)
        if (const auto* f = std::get_if<conf::hook_function>(&h.action); f && *f == conf::hook_function::on_retain_lookup)
            return true;
    return false;
}

namespace {

// The hook's topic filter against the event: a message's topic, or a subscription's
// filter (a shared subscription's filter without its $share/{group}/ part).
bool hook_matches(const conf::hook& h, std::string_view topic) {
    if (h.topic.empty()) return true;
    if (h.point == conf::hookpoint::session_subscribed || h.point == conf::hookpoint::session_unsubscribed)
        if (auto s = mqtt::parse_shared(topic)) topic = s->filter;
    return mqtt::topic_matches(h.topic, topic);
}

}  // namespace

backend::impl::impl(conf::backend_settings s, hook_bus& h, broker_api& b)
    : settings(std::move(s)), hooks(h), broker(b) {
    build_runtime();
}

backend::impl::~impl() = default;

void backend::impl::build_runtime() {
    for (const auto& ps : settings.pools) {
        auto p = std::make_unique<pool_runtime>();
        p->settings = ps;
        pools.push_back(std::move(p));
    }
    auto find_pool = [&](const std::string& name) -> pool_runtime* {
        for (auto& p : pools)
            if (p->settings.name == name) return p.get();
        return nullptr;
    };
    for (const auto& h : settings.hooks) {
        hook_runtime rt;
        rt.config = &h;
        rt.pool = find_pool(h.pool);
        if (!rt.pool) throw std::invalid_argument(fmt::format("hook uses unknown pool {}", h.pool));
        auto& n = rt.pool->needs;
        if (const auto* f = std::get_if<conf::hook_function>(&h.action)) {
            using F = conf::hook_function;
            switch (*f) {
            case F::on_client_connected:
            case F::on_client_disconnected: n.client = true; break;
            case F::on_subscribe_lookup: n.sub = true; break;
            case F::on_message_publish:
            case F::on_message_store: n.msg = true; break;
            case F::on_message_retain:
            case F::on_retain_delete:
            case F::on_retain_lookup: n.retain = true; break;
            case F::on_message_fetch:
                n.msg = n.acked = true;
                any_fetch = true;
                break;
            case F::on_message_acked: n.msg = n.acked = true; break;
            }
        } else {
            const auto& sts = std::get<std::vector<conf::sql_statement>>(h.action);
            for (std::size_t i = 0; i < sts.size(); ++i) {
                auto name = fmt::format("mqttd_action_{}_{}_{}", static_cast<int>(h.point), h.number, i + 1);
                rt.statement_names.push_back(name);
            }
        }
        hook_rts.push_back(std::move(rt));
    }
    // The names live in hook_rts (stable from here on: no more push_back).
    for (auto& rt : hook_rts) {
        if (!std::holds_alternative<std::vector<conf::sql_statement>>(rt.config->action)) continue;
        const auto& sts = std::get<std::vector<conf::sql_statement>>(rt.config->action);
        for (std::size_t i = 0; i < sts.size(); ++i) rt.pool->actions.push_back({rt.statement_names[i], &sts[i]});
    }
}

void backend::impl::attach_handlers() {
    // In configuration order (hookpoint, then number): the bus calls handlers in the
    // order they were attached.
    for (const auto& rt : hook_rts) {
        const hook_runtime* h = &rt;
        switch (rt.config->point) {
        case conf::hookpoint::client_connected:
            handles.push_back(hooks.on_client_connected([this, h](const client_info& c) { on_client_connected(*h, c); }));
            break;
        case conf::hookpoint::client_disconnected:
            handles.push_back(
                hooks.on_client_disconnected([this, h](const client_info& c) { on_client_disconnected(*h, c); }));
            break;
        case conf::hookpoint::session_subscribed:
            handles.push_back(hooks.on_session_subscribed([this, h](const subscription_event& e) {
                if (hook_matches(*h->config, e.topic)) on_session_subscribed(*h, e);
            }));
            break;
        case conf::hookpoint::session_unsubscribed:
            handles.push_back(hooks.on_session_unsubscribed([this, h](const subscription_event& e) {
                if (hook_matches(*h->config, e.topic)) on_session_unsubscribed(*h, e);
            }));
            break;
        case conf::hookpoint::message_publish:
            handles.push_back(hooks.on_message_publish(
                [this, h](const client_info& c, const message_ptr& m, const publish_hold& hold) {
                    if (hook_matches(*h->config, m->topic)) on_message_publish(*h, c, m, hold);
                }));
            break;
        case conf::hookpoint::message_acked:
            handles.push_back(hooks.on_message_acked([this, h](const delivery_event& e) {
                if (hook_matches(*h->config, e.msg->topic)) on_message_acked(*h, e);
            }));
            break;
        case conf::hookpoint::message_delivered:
            handles.push_back(hooks.on_message_delivered([this, h](const delivery_event& e) {
                if (hook_matches(*h->config, e.msg->topic)) on_message_delivered(*h, e);
            }));
            break;
        }
    }
    if (any_fetch) {
        // Unsubscribing ends the tracking of a filter's ack pointer; the end of the session
        // that of all its filters.
        handles.push_back(hooks.on_session_unsubscribed([this](const subscription_event& e) { untrack(e); }));
        handles.push_back(hooks.on_session_terminated([this](const session_event& e) { untrack_session(e); }));
    }
}

backend::backend(conf::backend_settings settings, hook_bus& hooks, broker_api& broker)
    : impl_(std::make_unique<impl>(std::move(settings), hooks, broker)) {}

backend::~backend() {
    stop(std::chrono::milliseconds(1000));
}

void backend::start() {
    auto& d = *impl_;
    std::lock_guard lock(d.attach_mutex);
    if (d.started) return;
    d.started = true;
    for (auto& p : d.pools) {
        const auto& s = p->settings;
        pg::pool_params pp;
        pp.host = s.host;
        pp.port = s.port;
        pp.user = s.username;
        pp.password = s.password;
        pp.database = s.database;
        pp.ssl = s.ssl;
        pp.ssl_verify = s.verify == conf::ssl_verify::verify_peer;
        pp.ssl_rootcert = s.cacertfile;
        pp.ssl_cert = s.certfile;
        pp.ssl_key = s.keyfile;
        pp.pool_size = s.pool_size;
        pp.acquire_timeout = std::chrono::milliseconds(2000);
        const std::string prefix = s.name;
        pp.log = [prefix](pg::log_level l, std::string_view text) { backend_log(l, fmt::format("{}: {}", prefix, text)); };
        p->pool = std::make_unique<pg::pool>(d.ctx.get_executor(), std::move(pp));

        stream_params sp;
        sp.name = s.name;
        sp.batch_size = d.settings.batch_size;
        sp.batch_delay = d.settings.batch_delay;
        sp.max_pending = d.settings.max_pending;
        sp.max_pending_bytes = d.settings.max_pending_bytes;
        p->stream = std::make_unique<write_stream>(*p->pool, sp, backend_log);
        pool_runtime* rt = p.get();
        p->stream->set_setup([rt] { return set_up_pool(*rt); });
        p->stream->start();
        log::info("pgsql {}: {}@{}:{}/{} ({} connections)", s.name, s.username, s.host, s.port, s.database,
                  s.pool_size);
    }
    d.work.emplace(d.ctx.get_executor());
    d.thread = std::thread([&d] { d.ctx.run(); });
}

void backend::attach() {
    auto& d = *impl_;
    std::lock_guard lock(d.attach_mutex);
    if (!d.handles.empty() || d.stopped) return;
    d.attach_handlers();
    log::info("pgsql: backend attached ({} hooks)", d.hook_rts.size());
}

void backend::detach() {
    auto& d = *impl_;
    std::lock_guard lock(d.attach_mutex);
    if (d.handles.empty()) return;
    for (auto h : d.handles) d.hooks.detach(h);
    d.handles.clear();
    log::info("pgsql: backend detached");
}

bool backend::attached() const {
    std::lock_guard lock(impl_->attach_mutex);
    return !impl_->handles.empty();
}

void backend::stop(std::chrono::milliseconds flush_timeout) {
    auto& d = *impl_;
    detach();
    {
        std::lock_guard lock(d.attach_mutex);
        if (d.stopped.exchange(true)) return;
        if (!d.started) return;
    }
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + flush_timeout;
    for (auto& p : d.pools) p->stream->stop(deadline);
    for (auto& p : d.pools) p->stream->wait_stopped(deadline + std::chrono::milliseconds(500));
    // Close the pools on their executor; the thread ends when nothing is left to run.
    asio::post(d.ctx, [&d] {
        for (auto& p : d.pools) p->pool->close();
    });
    d.work.reset();
    // The connections' coroutines end at their next turn; bound the wait all the same.
    auto ended = std::make_shared<std::promise<void>>();
    auto ended_f = ended->get_future();
    std::thread waiter([&d, ended] {
        if (d.thread.joinable()) d.thread.join();
        ended->set_value();
    });
    if (ended_f.wait_for(std::chrono::seconds(1)) != std::future_status::ready) {
        log::warning("pgsql: the backend's thread did not end in time; stopping it");
        d.ctx.stop();
    }
    waiter.join();
    const auto st = stats();
    log::info("pgsql: backend stopped ({} operations written, {} failed, {} refused, {} not written)", st.committed,
              st.failed, st.refused, st.abandoned);
}

backend_stats backend::stats() const {
    backend_stats out;
    for (const auto& p : impl_->pools) {
        if (!p->stream) continue;
        const auto s = p->stream->stats();
        out.committed += s.committed;
        out.failed += s.failed;
        out.refused += s.refused;
        out.abandoned += s.abandoned;
        out.batches += s.batches;
        out.grouped += s.grouped;
        out.pending += s.pending;
        out.healthy = out.healthy && p->schema.healthy.load();
    }
    out.unfit = impl_->unfit_rows.load();
    out.tracked_clients = impl_->tracked_clients();
    return out;
}

}  // namespace mqttd::persistence
