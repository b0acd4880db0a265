// Drives the connection's MQTT rules with arbitrary sequences of packets (made to order,
// then through the encoder and the broker's decoder), raw bytes,
// timer ticks and completions (writes finishing, holds released), on two connections
// of one broker whose client ids collide, so that takeovers happen too. It checks what
// the rules must always keep: every byte they send decodes as packets of the client's
// version, none beyond the client's Maximum Packet Size; the unwritten output stays
// bounded; phases only move forward.
//
// Input: a sequence of operations, each one byte (the top bit picks the connection, the
// low bits the operation) followed by the operation's own bytes.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/broker.hpp"
#include "broker/connection_rules.hpp"
#include "broker/log.hpp"
#include "protocol/decoder.hpp"
#include "protocol/encoder.hpp"

namespace {

using rules_clock = mqttd::connection_rules::clock;
using phase = mqttd::connection_rules::phase;

void require(bool ok) {
    if (!ok) std::abort();
}

class input {
public:
    input(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
    bool empty() const { return i_ >= n_; }
    std::uint8_t byte() { return i_ < n_ ? d_[i_++] : 0; }
    std::string_view bytes(std::size_t n) {
        n = std::min(n, n_ - std::min(i_, n_));
        std::string_view s(reinterpret_cast<const char*>(d_) + i_, n);
        i_ += n;
        return s;
    }

private:
    const std::uint8_t* d_;
    std::size_t n_;
    std::size_t i_ = 0;
};

struct null_owner : mqttd::session_owner {
    void wake() override {}
    void taken_over() override {}
};

constexpr std::array<std::string_view, 3> client_ids{"a", "b", ""};
constexpr std::array<std::string_view, 6> topics{"t", "t/1", "a/b/c/d", "$SYS/x", "s/1", ""};
constexpr std::array<std::string_view, 6> filters{"#", "t/+", "a/#", "$share/g/t", "s/1", "+/+/+/+"};

// One connection as its I/O layer would drive it.
struct conn {
    std::shared_ptr<null_owner> owner = std::make_shared<null_owner>();
    mqttd::connection_rules rules;
    mqtt::decoder server;                 // the broker's side, for raw bytes
    mqtt::decoder reader{mqtt::max_packet_size_limit};  // the client's side, for what is sent
    std::optional<mqtt::protocol_version> version;      // of the CONNECT the rules saw first
    bool writing = false;
    phase last = phase::awaiting_connect;

    conn(mqttd::broker& b, rules_clock::time_point now) : rules(b, owner, now), server(b.options().max_packet_size) {}

    // The first CONNECT decides the version and the client's Maximum Packet Size; one
    // after a refusal (the connection closing) decides nothing.
    void note(const mqtt::packet& p) {
        const auto* c = std::get_if<mqtt::connect>(&p);
        if (!c || version || rules.state() != phase::awaiting_connect) return;
        version = c->version;
        if (auto max = c->props.integer(mqtt::property_id::maximum_packet_size)) reader.set_max_packet_size(*max);
    }

    void check_output(std::string_view bytes) {
        if (bytes.empty()) return;
        // A refusal of an unknown protocol level is sent in the 3.1.1 form.
        reader.set_version(version.value_or(server.version().value_or(mqtt::protocol_version::v311)));
        reader.feed(bytes);
        std::error_code ec;
        while (reader.next(ec)) {
        }
        if (ec) {  // say what was sent, for whoever reads the crash
            std::fprintf(stderr, "the rules sent what the client cannot decode (%s):", ec.message().c_str());
            for (const unsigned char ch : bytes) std::fprintf(stderr, " %02x", ch);
            std::fprintf(stderr, "\n");
            std::abort();
        }
    }

    void after() {
        require(static_cast<int>(rules.state()) >= static_cast<int>(last));
        last = rules.state();
        require(rules.unwritten() <= 8 * mqttd::connection_rules::output_bound);
    }
};

mqtt::properties some_properties(input& in, bool connect) {
    mqtt::properties p;
    const auto bits = in.byte();
    using mqtt::property_id;
    if (bits & 1) p.add(property_id::topic_alias, std::uint32_t{in.byte()} % 4);
    if (bits & 2) p.add(property_id::message_expiry_interval, std::uint32_t{in.byte()} % 3);
    if (bits & 4) p.add(property_id::payload_format_indicator, std::uint32_t{1});
    if (connect) {
        if (bits & 8) p.add(property_id::maximum_packet_size, std::uint32_t{in.byte()} + 1);
        if (bits & 16) p.add(property_id::receive_maximum, std::uint32_t{in.byte()} % 4 + 1);
        if (bits & 32) p.add(property_id::topic_alias_maximum, std::uint32_t{in.byte()} % 4);
        if (bits & 64) p.add(property_id::request_response_information, std::uint32_t{1});
        if (bits & 128) p.add(property_id::session_expiry_interval, std::uint32_t{in.byte()});
    }
    return p;
}

// Only packets the broker's decoder could produce: packet identifiers are never 0
// [MQTT-2.2.1-3].
mqtt::packet make_packet(input& in, std::uint8_t op) {
    const auto id = static_cast<std::uint16_t>(in.byte() % 9 + 1);
    switch (op) {
        case 0: {
            mqtt::connect c;
            const auto flags = in.byte();
            static constexpr mqtt::protocol_version versions[] = {
                mqtt::protocol_version::v31, mqtt::protocol_version::v311, mqtt::protocol_version::v5};
            c.version = versions[flags % 3];
            c.clean_start = flags & 4;
            c.client_id = client_ids[(flags >> 3) % client_ids.size()];
            c.keep_alive = in.byte();
            if (c.version == mqtt::protocol_version::v5) c.props = some_properties(in, true);
            if (flags & 0x40) {
                mqtt::will_message w;
                w.topic = "will";
                w.payload = mqtt::shared_payload(std::string_view("w"));
                w.qos = static_cast<mqtt::qos>((id - 1) % 3);
                c.will = std::move(w);
            }
            return c;
        }
        case 1: {
            mqtt::publish p;
            const auto flags = in.byte();
            p.topic = topics[flags % topics.size()];
            p.qos = static_cast<mqtt::qos>((flags >> 3) % 3);
            p.retain = flags & 0x40;
            p.packet_id = p.qos == mqtt::qos::at_most_once ? 0 : id;
            p.payload = mqtt::shared_payload(in.bytes(in.byte() % 8));
            p.props = some_properties(in, false);
            return p;
        }
        case 2: return mqtt::puback{{id}};
        case 3: return mqtt::pubrec{{id}};
        case 4: return mqtt::pubrel{{id}};
        case 5: return mqtt::pubcomp{{id}};
        case 6: {
            mqtt::subscribe s;
            s.packet_id = id;
            const auto f = in.byte();
            s.subscriptions.push_back({std::string(filters[f % filters.size()]),
                                       {static_cast<mqtt::qos>((f >> 3) % 3), bool(f & 0x20), bool(f & 0x40),
                                        static_cast<std::uint8_t>((f >> 7) * 2)}});
            return s;
        }
        case 7: {
            mqtt::unsubscribe u;
            u.packet_id = id;
            u.filters.emplace_back(filters[in.byte() % filters.size()]);
            return u;
        }
        case 8: return mqtt::pingreq{};
        default: {
            mqtt::disconnect d;
            d.reason = (id & 1) ? mqtt::reason_code::disconnect_with_will : mqtt::reason_code::success;
            if (id & 2) d.props.add(mqtt::property_id::session_expiry_interval, std::uint32_t{id - 1u});
            return d;
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    mqttd::log::threshold = mqttd::log::level::error;  // closes are expected here, by the thousand
    mqttd::broker_options o;
    o.listeners.clear();
    o.max_inflight = 4;
    o.max_mqueue_len = 8;
    o.max_awaiting_rel = 4;
    o.max_topic_levels = 3;
    o.max_keepalive = 100;
    // An ACL that refuses some of the topics and filters below.
    auto acl = std::make_shared<std::vector<auth::acl_rule>>(2);
    (*acl)[0].what = auth::access::publish;
    (*acl)[0].topics = {{"t/1"}, {"s/%c"}};
    (*acl)[1].what = auth::access::subscribe;
    (*acl)[1].topics = {{"#", true}};
    o.acl = std::move(acl);
    mqttd::broker b(o);
    std::vector<mqttd::publish_hold> holds;
    bool holding = false;
    b.hooks().on_message_publish([&](const mqttd::client_info&, const mqttd::message_ptr&,
                                     const mqttd::publish_hold& h) {
        if (holding && h && holds.size() < 64) holds.push_back(h);
    });

    auto now = rules_clock::time_point{} + std::chrono::hours(1);
    std::array<std::unique_ptr<conn>, 2> conns;
    for (auto& c : conns) c = std::make_unique<conn>(b, now);
    int connections_left = 16;

    const auto feed = [&](conn& c, std::string_view bytes) {
        auto& r = c.rules;
        c.server.feed(bytes);
        r.received(now);
        std::error_code ec;
        while (r.state() == phase::awaiting_connect || r.state() == phase::connected) {
            auto p = c.server.next(ec);
            if (ec) {
                // A refusal before any CONNECT is in the version the decoder saw.
                if (r.state() == phase::awaiting_connect && !c.version) c.version = c.server.version();
                r.decode_error(ec, c.server.version(), now);
                break;
            }
            if (!p) break;
            c.note(*p);
            r.packet(*p, now);
        }
    };

    input in(data, size);
    while (!in.empty()) {
        const auto op = in.byte();
        auto& slot = conns[op >> 7];
        if (slot->rules.state() == phase::ended) {
            if (--connections_left < 0) break;
            slot = std::make_unique<conn>(b, now);
        }
        auto& c = *slot;
        auto& r = c.rules;
        switch (const auto kind = op & 0x1f; kind) {
            case 10:  // bytes on the wire
                feed(c, in.bytes(in.byte()));
                break;
            case 11: now += std::chrono::milliseconds(std::uint32_t{in.byte()} * 250); [[fallthrough]];
            case 12:
                for (auto& other : conns) other->rules.tick(now);
                break;
            case 13:
                if (!c.writing && r.has_output()) {
                    std::string bytes;
                    r.take_output(bytes, now);
                    c.check_output(bytes);
                    c.writing = true;
                }
                break;
            case 14:
                if (c.writing) {
                    c.writing = false;
                    r.written(now);
                }
                break;
            case 15: r.woken(now); break;
            case 16:
                if (r.state() == phase::closing && !c.writing && !r.has_output()) r.flushed(now);
                break;
            case 17: r.input_ended(); break;
            case 18:
                c.writing = false;
                r.output_failed();
                break;
            case 19: r.taken_over(now); break;
            case 20: r.shutting_down(now); break;
            case 21: holding = !holding; break;
            case 22: {  // the backend answers the held publishes
                const auto fail = in.byte();
                for (auto& h : holds)
                    if (fail & 1) h->fail(mqtt::reason_code::unspecified_error);
                holds.clear();
                for (auto& other : conns) other->rules.woken(now);
                break;
            }
            default: {
                if (kind > 9) break;
                // A packet made to order goes through the encoder and the broker's decoder,
                // so that the rules see only what a decoder lets through.
                const auto p = make_packet(in, kind);
                const auto* connect = std::get_if<mqtt::connect>(&p);
                const auto v = connect ? connect->version : c.server.version().value_or(mqtt::protocol_version::v311);
                std::string wire;
                std::error_code ec;
                mqtt::encode(p, v, wire, ec);
                if (!ec) feed(c, wire);
                break;
            }
        }
        // Everything sent must decode and fit the client's limit, written or not.
        for (auto& each : conns) each->after();
    }
    // Drain what is left, as the connection would, and end both.
    for (auto& c : conns) {
        if (c->writing) c->rules.written(now);
        std::string bytes;
        c->rules.take_output(bytes, now);
        c->check_output(bytes);
        c->rules.input_ended();
        require(c->rules.state() == phase::ended);
    }
    holds.clear();
    return 0;
}
