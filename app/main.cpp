// mqttd: reads its configuration, starts the broker (and, through the configuration's
// backend.pgsql.* keys, the PostgreSQL backend), and runs until SIGINT or SIGTERM.
// SIGUSR1 unloads the backend's hooks at runtime, SIGUSR2 loads them again.
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <climits>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "broker/broker.hpp"
#include "broker/log.hpp"
#include "conf/acl_file.hpp"
#include "conf/password_file.hpp"
#include "conf/settings.hpp"
#include "persistence/backend.hpp"

namespace {

constexpr std::string_view usage =
    "usage: mqttd -c FILE [-c FILE ...]\n"
    "  -c FILE   an EMQX-style configuration file (key = value); later files override earlier ones\n"
    "  -h        this help\n"
    "  -v        the version\n";

std::string hostname() {
    char buf[HOST_NAME_MAX + 1] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
    return buf;
}

mqttd::broker_options broker_options_from(const conf::broker_settings& s) {
    mqttd::broker_options o;
    o.listeners.clear();
    for (const auto& l : s.listeners) {
        auto kind = l.type == conf::listener::kind::ws ? mqttd::listener_options::kind::websocket
                                                        : mqttd::listener_options::kind::tcp;
        o.listeners.push_back({kind, l.address, l.port});
    }
    o.node_name = s.node_name;
    o.threads = s.threads ? s.threads : std::max(1u, std::thread::hardware_concurrency());
    o.max_packet_size = s.max_packet_size;
    o.max_clientid_len = s.max_clientid_len;
    o.max_inflight = s.max_inflight;
    o.max_mqueue_len = s.max_mqueue_len ? s.max_mqueue_len : SIZE_MAX;
    o.max_mqueue_bytes = s.max_mqueue_bytes;
    o.mqueue_store_qos0 = s.mqueue_store_qos0;
    o.session_expiry_interval =
        static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(s.session_expiry_interval).count());
    o.keepalive_backoff = s.keepalive_backoff;
    o.max_awaiting_rel = s.max_awaiting_rel;
    o.await_rel_timeout = s.await_rel_timeout;
    o.max_topic_levels = s.max_topic_levels;
    o.max_topic_alias = s.max_topic_alias;
    o.max_topic_alias_out = s.max_topic_alias_out;
    o.retain_available = s.retain_available;
    o.wildcard_subscription = s.wildcard_subscription;
    o.shared_subscription = s.shared_subscription;
    o.max_qos_allowed = s.max_qos_allowed;
    o.server_keepalive = s.server_keepalive;
    o.max_keepalive = s.max_keepalive;
    o.allow_anonymous = s.allow_anonymous;
    if (!s.password_file.empty()) o.passwords = conf::read_password_file(s.password_file);
    if (!s.acl_file.empty())
        o.acl = std::make_shared<const std::vector<auth::acl_rule>>(conf::read_acl_file(s.acl_file));
    o.acl_nomatch_allow = s.acl_nomatch_allow;
    o.acl_deny_disconnect = s.acl_deny_disconnect;
    o.sys_interval = std::chrono::duration_cast<std::chrono::seconds>(s.sys_interval);
    return o;
}

// Each connection is a descriptor; the usual soft limit of 1024 is far too low for a broker.
void raise_descriptor_limit() {
    rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur >= r.rlim_max) return;
    r.rlim_cur = r.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &r) != 0) mqttd::log::warning("cannot raise the open file limit");
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> files;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "-c" && i + 1 < argc) {
            files.emplace_back(argv[++i]);
        } else if (a == "-h" || a == "--help") {
            std::fputs(usage.data(), stdout);
            return 0;
        } else if (a == "-v" || a == "--version") {
            std::puts("mqttd " MQTTD_VERSION);
            return 0;
        } else {
            std::fprintf(stderr, "mqttd: unexpected argument '%s'\n%s", argv[i], usage.data());
            return 2;
        }
    }
    if (files.empty()) {
        std::fputs(usage.data(), stderr);
        return 2;
    }

    mqttd::broker_options options;
    conf::backend_settings backend_settings;
    try {
        auto settings = conf::load_settings(files, hostname());
        mqttd::log::threshold = mqttd::log::level_of(settings.broker.log);
        options = broker_options_from(settings.broker);
        backend_settings = std::move(settings.backend);
        // The backend serves retained messages on SUBSCRIBE from PostgreSQL: the broker
        // must not send them from memory as well.
        if (mqttd::persistence::serves_retained(backend_settings)) options.retained_on_subscribe = false;
    } catch (const conf::config_error& e) {
        std::fprintf(stderr, "mqttd: configuration error: %s\n", e.what());
        return 2;
    }

    try {
        raise_descriptor_limit();
        mqttd::broker b(std::move(options));
        // Declared after the broker: destroyed first, while the broker still exists.
        std::unique_ptr<mqttd::persistence::backend> backend;
        if (!backend_settings.hooks.empty()) {
            backend = std::make_unique<mqttd::persistence::backend>(std::move(backend_settings), b.hooks(), b);
            backend->start();
            backend->attach();
            b.add_statistics([be = backend.get()] {
                const auto st = be->stats();
                auto n = [](std::uint64_t v) { return std::to_string(v); };
                return mqttd::broker::statistics{
                    {"pgsql/healthy", st.healthy ? "1" : "0"},
                    {"pgsql/operations/committed", n(st.committed)},
                    {"pgsql/operations/failed", n(st.failed)},
                    {"pgsql/operations/refused", n(st.refused)},
                    {"pgsql/operations/unfit", n(st.unfit)},
                    {"pgsql/operations/abandoned", n(st.abandoned)},
                    {"pgsql/operations/pending", n(st.pending)},
                };
            });
        }
        b.start();

        boost::asio::io_context signals_ctx;
        boost::asio::signal_set signals(signals_ctx, SIGINT, SIGTERM);
        signals.add(SIGUSR1);
        signals.add(SIGUSR2);
        std::function<void(const boost::system::error_code&, int)> on_signal =
            [&](const boost::system::error_code& ec, int sig) {
                if (ec) return;
                if (sig == SIGUSR1 || sig == SIGUSR2) {
                    if (!backend)
                        mqttd::log::info("signal {}: no PostgreSQL backend is configured", sig);
                    else if (sig == SIGUSR1)
                        backend->detach();  // unload: events pass the backend by
                    else
                        backend->attach();  // load again
                    signals.async_wait(on_signal);
                    return;
                }
                mqttd::log::info("signal {}: shutting down", sig);
                b.stop();
            };
        signals.async_wait(on_signal);
        signals_ctx.run();
        b.wait();
        // The broker accepts nothing more: write what the backend has queued (bounded).
        if (backend) backend->stop(std::chrono::milliseconds(1500));
    } catch (const std::exception& e) {
        mqttd::log::error("cannot start: {}", e.what());
        return 1;
    }
    mqttd::log::info("stopped");
    return 0;
}
