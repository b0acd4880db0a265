#pragma once
// The broker: the shared state every connection works on (sessions, subscriptions,
// retained messages, hooks, counters) and the threads that run the connections, one
// io_context per thread.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "auth/password_checker.hpp"
#include "broker/connection_set.hpp"
#include "broker/hooks.hpp"
#include "broker/options.hpp"
#include "broker/retained_store.hpp"
#include "broker/router.hpp"
#include "broker/session_registry.hpp"
#include "broker/stats.hpp"
#include "broker/topic_tree.hpp"

namespace mqttd {

class connection_set;
class listener;

class broker final : public broker_api {
public:
    explicit broker(broker_options opts);
    ~broker() override;
    broker(const broker&) = delete;
    broker& operator=(const broker&) = delete;

    // Opens the listeners (throws if one cannot be bound) and starts the threads.
    void start();
    // Asks every connection to close and the threads to finish; thread-safe.
    void stop();
    // Blocks until the threads have finished after stop().
    void wait();

    // The bound ports of the listeners, in configuration order (useful with port 0).
    std::vector<std::uint16_t> ports() const;

    const broker_options& options() const noexcept { return opts_; }
    hook_bus& hooks() noexcept { return hooks_; }
    session_registry& sessions() noexcept { return sessions_; }
    topic_tree<session_ptr>& subscriptions() noexcept { return tree_; }
    retained_store& retained() noexcept { return retained_; }
    mqttd::router& router() noexcept { return router_; }
    mqttd::stats& counters() noexcept { return stats_; }
    auth::password_checker& password_checker() noexcept { return password_checker_; }
    std::chrono::steady_clock::time_point started_at() const noexcept { return started_at_; }

    // A unique message id (EMQX's msgid column holds up to 60 characters).
    std::string next_msgid();

    // stop() was called.
    bool stopping() const noexcept { return stopping_.load(); }

    // Subscribes a session to one filter and queues the retained messages the
    // subscription asks for. `v5_rules` refuses what this broker does not offer with the
    // 5.0 reason codes.
    struct subscribe_outcome {
        std::uint8_t reason;  // for the SUBACK: granted QoS, or a failure >= 0x80
        bool existed;         // replaced the session's subscription to the same filter
    };
    subscribe_outcome add_subscription(const session_ptr& s, const mqtt::subscription& sub, std::uint32_t sub_id,
                                       bool v5_rules);

    // Publishes a will that is due, as its client would have published it.
    void publish_will(const message_ptr& due);

    // Statistics of a part the broker does not know (the backend), published with the
    // broker's own under $SYS/broker/: (name under it, value). Add before start().
    using statistics = std::vector<std::pair<std::string, std::string>>;
    void add_statistics(std::function<statistics()> source) { statistics_.push_back(std::move(source)); }
    const std::vector<std::function<statistics()>>& statistics_sources() const noexcept { return statistics_; }

    // A member of shared subscriptions lost its connection: the QoS 1/2 messages they sent
    // it that it has not acknowledged go to another connected member of the same group.
    void hand_over_shared(const session_ptr& from);

    // broker_api
    bool subscribe(const std::string& clientid, const std::vector<mqtt::subscription>& subs) override;
    bool deliver(const std::string& clientid, const std::vector<message_ptr>& msgs, mqtt::qos qos,
                 bool retained) override;
    std::size_t deliver_stored(const std::string& clientid, const std::vector<message_ptr>& msgs,
                               mqtt::qos qos) override;
    const std::string& node_name() const override { return opts_.node_name; }

private:
    void housekeeping();  // session expiry sweep and $SYS, on the first context

    broker_options opts_;
    hook_bus hooks_;
    stats stats_;
    topic_tree<session_ptr> tree_;
    retained_store retained_;
    mqttd::router router_;
    session_registry sessions_;

    std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
    // After contexts_: destroyed first, while their io_contexts still exist.
    std::vector<std::unique_ptr<connection_set>> sets_;
    std::vector<std::thread> threads_;
    std::vector<std::shared_ptr<listener>> listeners_;
    std::atomic<bool> stopping_{false};
    std::chrono::steady_clock::time_point started_at_;
    std::atomic<std::uint64_t> msg_counter_{0};
    std::string msgid_prefix_;
    std::vector<std::function<statistics()>> statistics_;
    // Last: destroyed (its thread joined) first, so that no check's wake-up reaches a
    // connection or io_context being torn down.
    auth::password_checker password_checker_;
};

}  // namespace mqttd
