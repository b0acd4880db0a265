#pragma once
// The PostgreSQL backend's settings: every `backend.pgsql.*` key, typed, with defaults.
// Key names and hook JSON are EMQX 4.x's emqx_backend_pgsql; ssl_opts.*, publish_ack,
// max_pending*, batch_* are mqttd's additions.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config_file.hpp"
#include "conf/hook.hpp"

namespace conf {

enum class ssl_verify { verify_none, verify_peer };

// backend.pgsql.<name>.*; exists when any of its keys is given, and then needs `server`.
struct pool_settings {
    std::string name;
    std::string host;  // a name or IP; IPv6 without brackets
    std::uint16_t port = 5432;
    unsigned pool_size = 8;
    std::string username;
    std::string password;
    std::string database;
    bool ssl = false;
    // ssl_opts.*; only with ssl = true (certificates given without it would silently go
    // unused over a plain connection).
    std::string cacertfile;
    std::string certfile;
    std::string keyfile;
    ssl_verify verify = ssl_verify::verify_none;
    origin where;  // the pool's first key
};

// When a publish that a hook stores is acknowledged to its publisher.
enum class ack_mode {
    after_commit,  // PUBACK/PUBREC after the row is committed
    async,         // at once, as EMQX does
};

struct backend_settings {
    std::vector<pool_settings> pools;  // in order of first appearance
    offline_limits offline;            // max_returned_count, time_range; default infinity
    ack_mode publish_ack = ack_mode::after_commit;
    std::uint64_t max_pending = 100'000;            // rows queued for writing
    std::uint64_t max_pending_bytes = 256ull << 20;  // and their bytes
    std::uint32_t batch_size = 4000;
    std::chrono::milliseconds batch_delay = std::chrono::milliseconds(2);
    std::vector<hook> hooks;  // by hookpoint, then by number
    // The broker's mqtt.max_mqueue_len (0: no count limit) and mqtt.max_mqueue_bytes, set
    // by parse_settings: a page of fetched offline messages must fit in a session queue.
    std::uint32_t session_queue_len = 1000;
    std::uint64_t session_queue_bytes = 64ull << 20;

    const pool_settings* find_pool(std::string_view name) const noexcept;
};

// Reads every entry whose key starts with `backend.`: only `backend.pgsql.*` is known.
// Throws config_error naming the file and line of the first problem.
backend_settings parse_backend_settings(const std::vector<entry>& entries);

}  // namespace conf
