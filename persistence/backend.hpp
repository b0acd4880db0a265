#pragma once
// The PostgreSQL backend: EMQX 4.x's emqx_backend_pgsql for mqttd. It listens to the
// broker's hook events (the `backend.pgsql.hook.*` entries of the configuration), and
// runs the built-in functions and SQL actions on the configured pools, each pool with
// one ordered, batching write stream (write_stream.hpp).
//
// Threading: the backend runs its own io_context on its own thread; the pools and their
// connections live there. Hook handlers run on the broker's threads and never block:
// they queue work on the streams.
//
// Lifetime: construct, start(), attach(); at shutdown stop() (after the broker stopped
// accepting), then destroy the backend before the broker.
#include <chrono>
#include <cstdint>
#include <memory>

#include "broker/hooks.hpp"
#include "conf/backend_settings.hpp"

namespace mqttd::persistence {

struct backend_stats {
    std::uint64_t committed = 0;  // operations written (or read) successfully
    std::uint64_t failed = 0;     // operations that failed (logged with their SQLSTATE)
    std::uint64_t refused = 0;    // rows refused over the queue bound (QoS 0, delivered)
    std::uint64_t unfit = 0;      // rows refused on arrival: a column is too short for them
    bool healthy = true;          // every table the hooks use exists and may be used
    std::uint64_t abandoned = 0;  // operations not written at shutdown
    std::uint64_t batches = 0;    // round trips
    std::uint64_t grouped = 0;    // operations written with others of their kind in one statement
    std::uint64_t pending = 0;    // queued or being written now
    std::uint64_t tracked_clients = 0;  // clients whose session's ack pointers on_message_acked moves
};

class backend {
public:
    backend(conf::backend_settings settings, hook_bus& hooks, broker_api& broker);
    ~backend();
    backend(const backend&) = delete;
    backend& operator=(const backend&) = delete;

    // Creates the pools (they connect in the background; an unreachable server is
    // logged and retried) and starts the backend's thread.
    void start();

    // Attaches / detaches every hook handler of the backend; thread-safe, idempotent.
    // While detached, events pass the backend by; what was queued is still written.
    void attach();
    void detach();
    bool attached() const;

    // Detaches, writes what is queued (waiting at most `flush_timeout` for the server),
    // closes the pools and ends the thread. Idempotent.
    void stop(std::chrono::milliseconds flush_timeout = std::chrono::milliseconds(1500));

    backend_stats stats() const;

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

// True when the settings have an on_retain_lookup hook: the backend serves retained
// messages on SUBSCRIBE, so the broker must not also send them from memory
// (broker_options::retained_on_subscribe = false).
bool serves_retained(const conf::backend_settings& settings);

}  // namespace mqttd::persistence
