#include "bench/options.hpp"

#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <stdexcept>

namespace bench {

namespace {

constexpr std::string_view usage = R"(usage: mqtt_load --scenario NAME [options]
Drives MQTT 3.1.1 clients against one broker and prints one JSON result line on stdout
(progress goes to stderr once a second).

scenarios
  p2p      publisher i -> subscriber i (--publishers pairs)
  fanout   --publishers -> all --subscribers on one topic
  fanin    --publishers, a topic each -> --subscribers (with --shared: one $share group)
  storm    --connections clients connecting at --connect-rate, held until the end
  idle     --connections idle clients; broker RSS growth per connection (needs --broker-pid)
  drain    a subscriber goes away, --messages QoS 1 messages are published, it returns:
           time from its CONNECT to the last message

options
  --host ADDR (127.0.0.1)   --port N (1883)   --threads N (1)   --label TEXT
  --publishers N (1)        --subscribers N (1)                --connections N (1000)
  --qos 0|1|2 (1)           --payload BYTES (64, at least 24)
  --rate R        messages/s per publisher (0: as fast as the windows allow)
  --inflight N    QoS 1/2 messages awaiting ack per publisher (32)
  --window N      messages per publisher not yet received by all its subscribers (0: no limit);
                  unlike --inflight this bounds the broker's queues too
  --shared        fanin: subscribers share $share/bench/TOPIC
  --connect-rate R (0: as fast as --connect-concurrency allows)  --connect-concurrency N (64)
  --messages N (10000)      --resubscribe   drain through a clean session and SUBSCRIBE
  --warmup S (1)  --duration S (5)  --timeout S (120)   seconds, fractions allowed
  --keepalive S (60)        --topic-prefix T (bench)  --id-prefix P
  --broker-pid PID          the broker's RSS and CPU time are reported
  --db-pids PID,PID,...     the CPU time of these processes (a database's) is reported
)";

template <typename T>
T number(std::string_view name, std::string_view text) {
    T value{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size())
        throw std::invalid_argument("--" + std::string(name) + ": not a number: " + std::string(text));
    return value;
}

std::chrono::milliseconds seconds(std::string_view name, std::string_view text) {
    auto s = number<double>(name, text);
    if (s < 0) throw std::invalid_argument("--" + std::string(name) + " must not be negative");
    return std::chrono::milliseconds(static_cast<long long>(s * 1000));
}

std::vector<int> pid_list(std::string_view text) {
    std::vector<int> pids;
    while (!text.empty()) {
        auto comma = text.find(',');
        pids.push_back(number<int>("db-pids", text.substr(0, comma)));
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    }
    return pids;
}

pattern pattern_named(std::string_view text) {
    for (auto p : {pattern::p2p, pattern::fanout, pattern::fanin, pattern::storm, pattern::idle, pattern::drain})
        if (to_string(p) == text) return p;
    throw std::invalid_argument("--scenario: unknown scenario " + std::string(text));
}

}  // namespace

std::string_view to_string(pattern p) noexcept {
    switch (p) {
        case pattern::p2p: return "p2p";
        case pattern::fanout: return "fanout";
        case pattern::fanin: return "fanin";
        case pattern::storm: return "storm";
        case pattern::idle: return "idle";
        case pattern::drain: return "drain";
    }
    return "?";
}

options parse_options(int argc, char** argv) {
    options o;
    using setter = std::function<void(std::string_view)>;
    const std::map<std::string_view, setter> with_value = {
        {"scenario", [&](auto v) { o.scenario = pattern_named(v); }},
        {"label", [&](auto v) { o.label = v; }},
        {"host", [&](auto v) { o.host = v; }},
        {"port", [&](auto v) { o.port = number<std::uint16_t>("port", v); }},
        {"threads", [&](auto v) { o.threads = number<unsigned>("threads", v); }},
        {"publishers", [&](auto v) { o.publishers = number<unsigned>("publishers", v); }},
        {"subscribers", [&](auto v) { o.subscribers = number<unsigned>("subscribers", v); }},
        {"connections", [&](auto v) { o.connections = number<unsigned>("connections", v); }},
        {"qos", [&](auto v) { o.qos = number<unsigned>("qos", v); }},
        {"payload", [&](auto v) { o.payload = number<std::size_t>("payload", v); }},
        {"rate", [&](auto v) { o.rate = number<double>("rate", v); }},
        {"inflight", [&](auto v) { o.inflight = number<unsigned>("inflight", v); }},
        {"window", [&](auto v) { o.window = number<unsigned>("window", v); }},
        {"connect-rate", [&](auto v) { o.connect_rate = number<double>("connect-rate", v); }},
        {"connect-concurrency", [&](auto v) { o.connect_concurrency = number<unsigned>("connect-concurrency", v); }},
        {"messages", [&](auto v) { o.messages = number<unsigned>("messages", v); }},
        {"warmup", [&](auto v) { o.warmup = seconds("warmup", v); }},
        {"duration", [&](auto v) { o.duration = seconds("duration", v); }},
        {"timeout", [&](auto v) { o.timeout = seconds("timeout", v); }},
        {"keepalive", [&](auto v) { o.keepalive = number<std::uint16_t>("keepalive", v); }},
        {"broker-pid", [&](auto v) { o.broker_pid = number<int>("broker-pid", v); }},
        {"db-pids", [&](auto v) { o.db_pids = pid_list(v); }},
        {"topic-prefix", [&](auto v) { o.topic_prefix = v; }},
        {"id-prefix", [&](auto v) { o.id_prefix = v; }},
    };
    const std::map<std::string_view, std::function<void()>> flags = {
        {"shared", [&] { o.shared = true; }},
        {"resubscribe", [&] { o.resubscribe = true; }},
        {"help", [&] {
             std::fputs(usage.data(), stdout);
             std::exit(0);
         }},
    };

    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (!arg.starts_with("--")) throw std::invalid_argument("unexpected argument " + std::string(arg));
        auto name = arg.substr(2);
        if (auto f = flags.find(name); f != flags.end()) {
            f->second();
        } else if (auto s = with_value.find(name); s != with_value.end()) {
            if (i + 1 >= argc) throw std::invalid_argument("--" + std::string(name) + " needs a value");
            s->second(argv[++i]);
        } else {
            throw std::invalid_argument("unknown option " + std::string(arg) + " (see --help)");
        }
    }

    if (o.qos > 2) throw std::invalid_argument("--qos must be 0, 1 or 2");
    if (o.payload < 24) throw std::invalid_argument("--payload must be at least 24 bytes (the send time and publisher)");
    if (o.threads == 0 || o.inflight == 0 || o.inflight > 65534 || o.connect_concurrency == 0)
        throw std::invalid_argument("--threads, --inflight (up to 65534) and --connect-concurrency must be positive");
    if (o.rate < 0 || o.connect_rate < 0) throw std::invalid_argument("rates must not be negative");
    if (o.id_prefix.empty()) o.id_prefix = "load" + std::to_string(::getpid());
    return o;
}

}  // namespace bench
