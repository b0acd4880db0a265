// Generated packets of every kind: encoding then decoding gives the packet back, in one
// piece or fed in chunks of any size.
#include <algorithm>
#include <random>
#include <vector>

#include "allocation_counter.hpp"
#include "protocol/topic.hpp"
#include "support.hpp"

using namespace mqtt;

namespace {

constexpr protocol_version versions[] = {protocol_version::v31, protocol_version::v311, protocol_version::v5};

// Valid packets for one protocol version, drawn at random.
class generator {
public:
    generator(protocol_version v, unsigned seed) : v_(v), rng_(seed) {}

    packet any() {
        const int last = v_ == protocol_version::v5 ? 15 : 14;
        switch (pick(1, last)) {
        case 1: return make_connect();
        case 2: return make_connack();
        case 3: return make_publish();
        case 4: return make_ack<puback>({0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99});
        case 5: return make_ack<pubrec>({0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99});
        case 6: return make_ack<pubrel>({0x00, 0x92});
        case 7: return make_ack<pubcomp>({0x00, 0x92});
        case 8: return make_subscribe();
        case 9: return make_suback();
        case 10: return make_unsubscribe();
        case 11: return make_unsuback();
        case 12: return pingreq{};
        case 13: return pingresp{};
        case 14: return make_disconnect();
        default: return make_auth();
        }
    }

    connect make_connect() {
        connect c;
        c.version = v_;
        c.clean_start = coin();
        c.keep_alive = static_cast<std::uint16_t>(pick(0, 65535));
        c.client_id = text(23);
        c.props = props(property_context::connect);
        if (coin()) {
            will_message w;
            w.topic = topic();
            w.payload = shared_payload(binary(40));
            w.qos = static_cast<qos>(pick(0, 2));
            w.retain = coin();
            w.props = props(property_context::will);
            c.will = std::move(w);
        }
        if (coin()) c.username = text(12);
        if (coin() && (v5() || c.username)) c.password = binary(12);
        return c;
    }

    connack make_connack() {
        connack c;
        c.reason = v5() ? one_of({0x00, 0x80, 0x81, 0x84, 0x87, 0x8A, 0x95, 0x9F})
                        : static_cast<std::uint8_t>(pick(0, 5));
        // MQTT 3.1's first CONNACK byte is reserved: no session-present flag to carry.
        c.session_present = c.reason == 0 && v_ != protocol_version::v31 && coin();
        c.props = props(property_context::connack);
        return c;
    }

    publish make_publish() {
        publish p;
        p.qos = static_cast<qos>(pick(0, 2));
        p.retain = coin();
        if (p.qos != qos::at_most_once) {
            p.dup = coin();
            p.packet_id = packet_id();
        }
        p.props = props(property_context::publish);
        // 5.0 may send an empty topic with a Topic Alias.
        if (!v5() || !p.props.find(property_id::topic_alias) || coin()) p.topic = topic();
        p.payload = shared_payload(binary(pick(0, 1) ? 300 : 10));
        return p;
    }

    template <class Ack>
    Ack make_ack(std::initializer_list<std::uint8_t> codes) {
        Ack a;
        a.packet_id = packet_id();
        if (!v5()) return a;
        a.reason = static_cast<reason_code>(one_of(codes));
        a.props = props(property_context::puback);
        const int shortest = !a.props.empty() ? 4 : a.reason != reason_code::success ? 3 : 2;
        a.wire_length = static_cast<std::uint8_t>(canonical(pick(shortest, 4), shortest));
        return a;
    }

    subscribe make_subscribe() {
        subscribe s;
        s.packet_id = packet_id();
        s.props = props(property_context::subscribe);
        for (int i = pick(1, 4); i > 0; --i) {
            subscription sub{filter(), {.max_qos = static_cast<qos>(pick(0, 2))}};
            if (v5()) {
                sub.options.no_local = !parse_shared(sub.filter) && coin();
                sub.options.retain_as_published = coin();
                sub.options.retain_handling = static_cast<std::uint8_t>(pick(0, 2));
            }
            s.subscriptions.push_back(std::move(sub));
        }
        return s;
    }

    suback make_suback() {
        suback s;
        s.packet_id = packet_id();
        s.props = props(property_context::suback);
        for (int i = pick(1, 4); i > 0; --i)
            s.reasons.push_back(v5() ? one_of({0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2})
                                     : one_of({0x00, 0x01, 0x02, 0x80}));
        return s;
    }

    unsubscribe make_unsubscribe() {
        unsubscribe u;
        u.packet_id = packet_id();
        u.props = props(property_context::unsubscribe);
        for (int i = pick(1, 4); i > 0; --i) u.filters.push_back(filter());
        return u;
    }

    unsuback make_unsuback() {
        unsuback u;
        u.packet_id = packet_id();
        if (!v5()) return u;
        u.props = props(property_context::unsuback);
        for (int i = pick(1, 4); i > 0; --i) u.reasons.push_back(one_of({0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91}));
        return u;
    }

    disconnect make_disconnect() {
        disconnect d;
        if (!v5()) return d;
        d.reason = static_cast<reason_code>(one_of({0x00, 0x04, 0x80, 0x81, 0x8E, 0x95, 0x9C, 0xA2}));
        d.props = props(property_context::disconnect);
        const int shortest = !d.props.empty() ? 2 : d.reason != reason_code::success ? 1 : 0;
        d.wire_length = static_cast<std::uint8_t>(canonical(pick(shortest, 2), shortest));
        return d;
    }

    auth make_auth() {
        auth a;
        a.reason = static_cast<reason_code>(one_of({0x00, 0x18, 0x19}));
        a.props = props(property_context::auth);
        const bool empty = a.reason == reason_code::success && a.props.empty();
        if (empty && coin()) a.wire_length = 2;
        return a;
    }

    int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

private:
    bool v5() const { return v_ == protocol_version::v5; }
    bool coin() { return pick(0, 1) == 1; }
    std::uint8_t one_of(std::initializer_list<std::uint8_t> values) {
        return values.begin()[pick(0, static_cast<int>(values.size()) - 1)];
    }
    std::uint16_t packet_id() { return static_cast<std::uint16_t>(pick(1, 65535)); }
    // wire_length is 0 when the form is the shortest, as the decoder reports it.
    static int canonical(int form, int shortest) { return form == shortest ? 0 : form; }

    std::string text(int max) {
        static const char* const pieces[] = {"a", "b", "z", "0", " ", "-", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80"};
        std::string s;
        for (int i = pick(0, max); i > 0; --i) s += pieces[pick(0, 8)];
        return s;
    }
    std::string binary(int max) {
        std::string s(static_cast<std::size_t>(pick(0, max)), '\0');
        for (auto& c : s) c = static_cast<char>(pick(0, 255));
        return s;
    }
    std::string topic() {
        std::string t = coin() ? "" : "$";
        for (int i = pick(1, 4); i > 0; --i) t += text(5) + (i > 1 ? "/" : "");
        return t.empty() || t == "$" ? t + "x" : t;
    }
    std::string filter() {
        std::string f = pick(0, 3) == 0 ? "$share/" + text(3) + "g/" : "";
        for (int i = pick(1, 4); i > 0; --i) f += (pick(0, 3) == 0 ? std::string("+") : text(4)) + (i > 1 ? "/" : "");
        if (pick(0, 3) == 0) f += f.empty() || f.back() == '/' ? "#" : "/#";
        return f.empty() || f.back() == '/' ? f + "x" : f;
    }

    // A random selection of the properties allowed here, with legal values.
    properties props(property_context context) {
        properties p;
        if (!v5() || coin()) return p;
        const auto ctx = static_cast<std::uint16_t>(context);
        for (int id = 1; id <= 0x2A; ++id) {
            const auto info = describe(static_cast<std::uint8_t>(id));
            if (!info || !(info->contexts & ctx) || pick(0, 2) != 0) continue;
            const auto pid = static_cast<property_id>(id);
            // "It is a Protocol Error to include Authentication Data if there is no Authentication Method."
            if (pid == property_id::authentication_data && !p.find(property_id::authentication_method)) continue;
            const bool repeats = info->may_repeat && context != property_context::subscribe;
            for (int n = repeats ? pick(1, 3) : 1; n > 0; --n) p.add(pid, value(pid, info->type));
        }
        return p;
    }

    property_value value(property_id id, property_type type) {
        switch (type) {
        case property_type::byte: return static_cast<std::uint32_t>(pick(0, 1));
        case property_type::two_byte_integer: return static_cast<std::uint32_t>(pick(1, 65535));
        case property_type::four_byte_integer:
            return static_cast<std::uint32_t>(pick(1, 1'000'000)) * static_cast<std::uint32_t>(pick(1, 4000));
        case property_type::variable_byte_integer: return static_cast<std::uint32_t>(pick(1, 268'435'455));
        case property_type::utf8_string: return id == property_id::response_topic ? topic() : text(8);
        case property_type::binary_data: return binary(8);
        case property_type::utf8_string_pair: return string_pair(text(4), text(6));
        }
        return {};
    }

    protocol_version v_;
    std::mt19937 rng_;
};

std::vector<packet> decode_all(std::string_view stream, std::optional<protocol_version> v,
                               const std::vector<std::size_t>& chunks, bool zero_copy) {
    decoder d;
    if (v) d.set_version(*v);
    std::vector<packet> out;
    std::size_t fed = 0;
    for (std::size_t i = 0; fed < stream.size(); ++i) {
        const auto n = std::min(chunks[i % chunks.size()], stream.size() - fed);
        if (zero_copy) {
            auto space = d.prepare(n);
            std::copy_n(stream.data() + fed, n, space.data());
            d.commit(n);
        } else {
            d.feed(stream.substr(fed, n));
        }
        fed += n;
        std::error_code ec;
        while (auto p = d.next(ec)) out.push_back(std::move(*p));
        REQUIRE_MESSAGE(!ec, ec.message());
    }
    CHECK(d.buffered() == 0);
    return out;
}

}  // namespace

TEST_CASE("round trip: encode then decode gives the packet back") {
    for (auto v : versions) {
        CAPTURE(static_cast<int>(v));
        generator gen(v, 7 + static_cast<unsigned>(v));
        for (int i = 0; i < 3000; ++i) {
            const auto p = gen.any();
            const auto wire = encode(p, v);
            CAPTURE(test::hex(wire));
            REQUIRE(encoded_size(p, v) == wire.size());
            const auto d = test::decode(wire, v);
            REQUIRE_MESSAGE(!d.ec, d.ec.message());
            REQUIRE(d.packet);
            CHECK(*d.packet == p);
            CHECK(d.left == 0);
            CHECK(encode(*d.packet, v) == wire);
        }
    }
}

TEST_CASE("round trip: chunked decoding of a stream equals decoding it whole") {
    for (auto v : versions) {
        CAPTURE(static_cast<int>(v));
        generator gen(v, 1000 + static_cast<unsigned>(v));
        std::vector<packet> sent{gen.make_connect()};
        for (int i = 0; i < 400; ++i) sent.push_back(gen.any());
        std::string stream;
        for (const auto& p : sent) encode(p, v, stream);

        // Without a version: the leading CONNECT sets it.
        CHECK(decode_all(stream, std::nullopt, {stream.size()}, false) == sent);
        CHECK(decode_all(stream, std::nullopt, {1}, false) == sent);
        CHECK(decode_all(stream, std::nullopt, {1}, true) == sent);
        for (int round = 0; round < 5; ++round) {
            std::vector<std::size_t> chunks;
            for (int i = 0; i < 64; ++i) chunks.push_back(static_cast<std::size_t>(gen.pick(1, 700)));
            CHECK(decode_all(stream, std::nullopt, chunks, round % 2 == 0) == sent);
        }
    }
}

TEST_CASE("round trip: a large packet across many small reads") {
    publish p;
    p.topic = "big";
    p.payload = shared_payload(std::string(3'000'000, 'q'));
    const auto wire = encode(p, protocol_version::v311);
    CHECK(wire.size() == 1 + 4 + 5 + 3'000'000);
    const auto got = decode_all(wire + wire, protocol_version::v311, {4096, 1, 65536}, true);
    REQUIRE(got.size() == 2);
    CHECK(got[0] == packet{p});
    CHECK(got[1] == packet{p});
}

TEST_CASE("decoding a PUBLISH allocates only its topic and its payload") {
    const std::string topic(40, 't');  // longer than any small-string buffer
    publish p;
    p.topic = topic;
    p.qos = qos::at_least_once;
    p.packet_id = 1;
    p.payload = shared_payload(std::string(1000, 'x'));

    decoder d;
    d.set_version(protocol_version::v311);
    d.feed(encode(p, protocol_version::v311));
    std::error_code ec;
    auto before = test::allocation_count();
    auto got = d.next(ec);
    CHECK(test::allocation_count() - before == 2);
    REQUIRE(got);

    // 5.0 with properties: one more, for the property list.
    p.props = test::props({{property_id::topic_alias, 3u}, {property_id::message_expiry_interval, 10u}});
    d.set_version(protocol_version::v5);
    d.feed(encode(p, protocol_version::v5));
    before = test::allocation_count();
    got = d.next(ec);
    CHECK(test::allocation_count() - before == 3);
    REQUIRE(got);
    CHECK(*got == packet{p});
}

TEST_CASE("a decoded payload is shared, not copied, by every holder") {
    decoder d;
    d.set_version(protocol_version::v5);
    d.feed(test::bytes({0x30, 0x08, 0x00, 0x01, 't', 0x00, 'd', 'a', 't', 'a'}));
    std::error_code ec;
    const auto got = d.next(ec);
    REQUIRE(got);
    const auto& pub = std::get<publish>(*got);
    CHECK(pub.payload.view() == "data");
    CHECK(pub.payload.use_count() == 1);
    const std::vector<publish> receivers(3, pub);
    CHECK(pub.payload.use_count() == 4);
    CHECK(receivers[2].payload.view().data() == pub.payload.view().data());
}

TEST_CASE("the decoder's buffer is reused: compaction instead of growth on a long stream") {
    generator gen(protocol_version::v5, 99);
    std::string stream;
    for (int i = 0; i < 2000; ++i) encode(gen.make_publish(), protocol_version::v5, stream);
    decoder d;
    d.set_version(protocol_version::v5);
    std::size_t fed = 0, decoded = 0, buffer_allocations = 0;
    std::error_code ec;
    while (fed < stream.size()) {
        const auto n = std::min<std::size_t>(static_cast<std::size_t>(gen.pick(1, 1500)), stream.size() - fed);
        const auto before = test::allocation_count();
        d.feed(std::string_view(stream).substr(fed, n));
        buffer_allocations += test::allocation_count() - before;
        fed += n;
        while (d.next(ec)) ++decoded;
        REQUIRE(!ec);
    }
    CHECK(decoded == 2000);
    CHECK(buffer_allocations <= 6);
}

TEST_CASE("a later CONNECT is decoded in its own version and leaves the session's alone") {
    connect first;
    first.version = protocol_version::v5;
    first.client_id = "a";
    connect second;
    second.version = protocol_version::v311;
    second.client_id = "b";
    decoder d;
    d.feed(encode(first, first.version) + encode(second, second.version));
    std::error_code ec;
    CHECK(d.next(ec) == std::optional<packet>(first));
    CHECK(d.next(ec) == std::optional<packet>(second));
    CHECK_FALSE(ec);
    CHECK(d.version() == protocol_version::v5);
}
