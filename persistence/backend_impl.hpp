#pragma once
// Inside the backend: what backend.cpp, schema.cpp, functions.cpp, offline_fetch.cpp and
// sql_actions.cpp share. Not for use outside persistence/.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include "broker/hooks.hpp"
#include "conf/backend_settings.hpp"
#include "persistence/backend.hpp"
#include "persistence/fetch_pointer.hpp"
#include "persistence/payload_codec.hpp"
#include "persistence/pg_pool.hpp"
#include "persistence/row_ids.hpp"
#include "persistence/statements.hpp"
#include "persistence/topic_sql.hpp"
#include "persistence/write_stream.hpp"

namespace mqttd::persistence {

// What the schema probe found on a pool's server (read and written on the executor).
struct pool_schema {
    payload_column msg_payload = payload_column::text;
    payload_column retain_payload = payload_column::text;
    bool msgid_unique = false;
    sql::msg_column_types msg_types;
    // SQL action statement name -> per parameter: declared bytea by the server.
    std::unordered_map<std::string, std::vector<bool>> bytea_params;
    // The tables the hooks use exist, with their columns, and may be used (checked at
    // every (re)connection).
    std::atomic<bool> healthy{true};
    // Characters a message's topic and sender may have in mqtt_msg and mqtt_retain (0: no
    // limit known). Read by the hook handlers on the broker's threads.
    struct column_limits {
        std::atomic<std::uint32_t> msg_topic{0}, msg_sender{0}, retain_topic{0}, retain_sender{0};
    } limits;
};

// Which tables a pool's hooks use (decides the statements prepared and probed).
struct pool_needs {
    bool client = false;  // mqtt_client
    bool sub = false;     // mqtt_sub
    bool msg = false;     // mqtt_msg
    bool retain = false;  // mqtt_retain
    bool acked = false;   // mqtt_acked
};

// A SQL action statement registered as a prepared statement.
struct action_statement {
    std::string name;
    const conf::sql_statement* statement = nullptr;
};

// A connection's row in mqtt_client, shared by its connect and disconnect operations.
struct client_row {
    enum state_t : int { queued, sent, dropped };
    std::atomic<state_t> state{queued};
    std::chrono::system_clock::time_point connected_at{};
};

struct pool_runtime {
    conf::pool_settings settings;
    std::unique_ptr<pg::pool> pool;
    std::unique_ptr<write_stream> stream;
    pool_needs needs;
    std::vector<action_statement> actions;
    pool_schema schema;
    bool prepared = false;  // statements registered
    row_ids ids;            // of the messages this pool wrote or read lately (executor only)
    // The connect row of each connected client (by client id), until its disconnect.
    std::mutex client_rows_mutex;
    std::unordered_map<std::string, std::shared_ptr<client_row>> client_rows;
};

// One configured hook, bound to its pool.
struct hook_runtime {
    const conf::hook* config = nullptr;
    pool_runtime* pool = nullptr;
    std::vector<std::string> statement_names;  // SQL action: one per statement
};

// What every page of one subscription's offline fetch asks for.
struct fetch_request {
    pool_runtime* pool = nullptr;
    std::string clientid, filter;
    mqtt::qos qos = mqtt::qos::at_least_once;
    topic_condition cond;
    std::string subscribed_at;  // rows that arrived later were delivered live
    std::optional<std::string> range;
    std::int64_t page_rows = 1;
    std::size_t page_bytes = 1;  // payload and topic bytes; one row at least
};

// The values of one event that SQL actions may bind (`${name}`).
struct event_vars {
    std::string clientid;
    std::string username;
    std::string topic;
    std::string msgid;
    int qos = 0;
    bool retain = false;
    std::int64_t timestamp_ms = 0;
    message_ptr msg;  // the payload's source, for message.publish
};

struct backend::impl {
    impl(conf::backend_settings s, hook_bus& h, broker_api& b);
    ~impl();

    // The io_context first: destroyed last, after every object that uses it.
    boost::asio::io_context ctx{1};
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
    std::thread thread;

    conf::backend_settings settings;
    hook_bus& hooks;
    broker_api& broker;

    std::vector<std::unique_ptr<pool_runtime>> pools;
    std::vector<hook_runtime> hook_rts;

    mutable std::mutex attach_mutex;
    std::vector<hook_bus::handle> handles;
    bool started = false;
    std::atomic<bool> stopped{false};

    // Subscription filters each client's session has with an on_message_fetch hook
    // (QoS > 0), with the state of their ack pointers: on_message_acked moves the pointer
    // of every one of them that matches, as its fetch_pointer allows. Dropped when the
    // session ends, or when a later session of the client subscribes.
    struct tracked_filter {
        std::string filter;
        std::uint64_t serial = 0;  // tells this subscription's pages from an earlier one's
        std::shared_ptr<const fetch_request> request;  // null: not fetched (resumed session)
        fetch_pointer pointer{false};
    };
    struct tracked_filters {
        const session* owner = nullptr;
        std::vector<tracked_filter> filters;
    };
    std::mutex tracked_mutex;
    std::unordered_map<std::string, tracked_filters> tracked;
    std::uint64_t fetch_serial = 0;  // under tracked_mutex
    bool any_fetch = false;
    // Rows refused when their message arrived: they could never be stored.
    std::atomic<std::uint64_t> unfit_rows{0};

    void build_runtime();
    void attach_handlers();

    // Handlers, one per hookpoint (functions.cpp); `h` has already matched the event.
    void on_client_connected(const hook_runtime& h, const client_info& c);
    void on_client_disconnected(const hook_runtime& h, const client_info& c);
    void on_session_subscribed(const hook_runtime& h, const subscription_event& e);
    void on_session_unsubscribed(const hook_runtime& h, const subscription_event& e);
    void on_message_publish(const hook_runtime& h, const client_info& c, const message_ptr& m,
                            const publish_hold& hold);
    void on_message_acked(const hook_runtime& h, const delivery_event& e);
    void on_message_delivered(const hook_runtime& h, const delivery_event& e);

    // offline_fetch.cpp
    tracked_filter& track(const subscription_event& e);  // under tracked_mutex
    void untrack(const subscription_event& e);
    void untrack_session(const session_event& e);
    std::size_t tracked_clients();
    void push_fetch(const hook_runtime& h, const subscription_event& e);
    void push_retain_lookup(const hook_runtime& h, const subscription_event& e);
    void push_subscription_lookup(const hook_runtime& h, const client_info& c);
    // on_message_acked: the client's ack, for each of its tracked filters.
    void ack_tracked(const hook_runtime& h, const delivery_event& e);
    // A page of the fetch `serial` was read: false if that subscription is gone; `send`
    // gets the indexes of the rows to deliver. Then handed over: the session took the
    // first `taken` of them.
    bool page_fetched(const fetch_request& r, std::uint64_t serial, std::vector<fetch_pointer::row> rows,
                      bool full, std::vector<std::size_t>& send);
    void page_handed_over(const fetch_request& r, std::uint64_t serial, std::size_t taken,
                          const std::vector<std::size_t>& send);
    // What the pointer's step asks: pointer moves and fetches, on the fetch's pool (or
    // `ack_pool` for a filter never fetched); under tracked_mutex.
    void apply(const std::string& clientid, const tracked_filter& f, const fetch_pointer::step& s,
               pool_runtime* ack_pool);

    // sql_actions.cpp: one op per statement, each in its own sync segment.
    void push_actions(const hook_runtime& h, const std::shared_ptr<const event_vars>& vars,
                      const publish_hold& hold);

    // Keeps a publish's hold according to publish_ack; ops without a hold may be refused.
    void keep_hold(stream_op& op, const publish_hold& hold, write_stream& s) const;
};

// message_rows.cpp: an mqtt_msg row (`function`: the hook's function, for log lines), and
// the move of an ack pointer to the row of `msgid`, or to a row id.
op_ptr message_insert(pool_runtime& p, message_ptr m, std::string_view function);
op_ptr ack_advance(pool_runtime& p, const std::string& clientid, const std::string& filter, const std::string& msgid);
op_ptr ack_advance_to(pool_runtime& p, const std::string& clientid, const std::string& filter, std::int64_t row_id);

// functions.cpp: a payload as the column wants it, raw bytes (bytea) or the text rule.
pg::param payload_param(std::string_view bytes, payload_column col, std::string& scratch);

// schema.cpp: probes the server once connected and registers the pool's statements.
boost::asio::awaitable<std::error_code> set_up_pool(pool_runtime& p);

// Log lines of the backend: "pgsql <pool>: ...".
void backend_log(pg::log_level l, std::string_view text);

}  // namespace mqttd::persistence
