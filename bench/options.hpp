#pragma once
// The load generator's command line: which pattern of clients to run against which
// broker, how hard and for how long.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

enum class pattern {
    p2p,     // publisher i -> subscriber i, one topic per pair
    fanout,  // a few publishers -> every subscriber, one topic
    fanin,   // many publishers, a topic each -> one subscriber or a shared group
    storm,   // connect-only clients arriving at a set rate
    idle,    // connect-only clients held open: the broker's memory per connection
    drain,   // a subscriber away while messages are published, then back
};

std::string_view to_string(pattern p) noexcept;

struct options {
    pattern scenario = pattern::p2p;
    std::string label = "broker";  // names the broker under test in the result line
    std::string host = "127.0.0.1";
    std::uint16_t port = 1883;
    unsigned threads = 1;  // io_context threads of the generator

    unsigned publishers = 1;
    unsigned subscribers = 1;
    unsigned connections = 1000;  // storm and idle
    unsigned qos = 1;
    std::size_t payload = 64;  // bytes; the first 24 carry the send time and the publisher
    double rate = 0;           // messages/s per publisher; 0: as fast as the windows allow
    unsigned inflight = 32;    // QoS 1/2 messages awaiting their ack, per publisher
    // Messages per publisher on their way to its subscribers (see flow.hpp); 0: none.
    unsigned window = 0;
    bool shared = false;       // fan-in: subscribers join $share/bench/...
    double connect_rate = 0;   // connects/s; 0: as fast as connect_concurrency allows
    unsigned connect_concurrency = 64;
    unsigned messages = 10'000;  // drain
    // drain: the subscriber returns with a clean session and subscribes again (the
    // backend's offline fetch) instead of resuming its persistent session.
    bool resubscribe = false;
    std::chrono::milliseconds warmup{1000};
    std::chrono::milliseconds duration{5000};
    // A hard bound on the whole run; when it passes, the generator reports what it has.
    std::chrono::milliseconds timeout{120'000};
    std::uint16_t keepalive = 60;
    std::optional<int> broker_pid;
    // The database's processes, when the broker writes to one: their CPU time is the
    // other half of what persisting costs.
    std::vector<int> db_pids;
    std::string topic_prefix = "bench";
    std::string id_prefix;  // default: unique per run
};

// Parses the command line. --help prints the usage and exits; anything wrong throws
// std::invalid_argument with a message naming the option.
options parse_options(int argc, char** argv);

}  // namespace bench
