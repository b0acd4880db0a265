// Feeds arbitrary bytes to the decoder, whole and in chunks, and checks that both ways
// agree and that every accepted packet re-encodes to exactly the bytes it came from.
//
// Input layout: byte 0 picks the version the decoder starts with and its maximum packet
// size, byte 1 seeds the chunk sizes, the rest is the stream.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "protocol/decoder.hpp"
#include "protocol/encoder.hpp"

namespace {

struct outcome {
    std::vector<mqtt::packet> packets;
    std::error_code error;
    std::optional<mqtt::protocol_version> version;
};

void require(bool ok) {
    if (!ok) std::abort();
}

mqtt::protocol_version version_for(const mqtt::packet& p, std::optional<mqtt::protocol_version> v) {
    if (const auto* c = std::get_if<mqtt::connect>(&p)) return c->version;
    return *v;
}

// encode(decode(b)) == b, and decoding that again gives the same packet.
void check_round_trip(const mqtt::packet& p, mqtt::protocol_version v, std::string_view wire) {
    const auto bytes = mqtt::encode(p, v);
    require(bytes == wire);
    require(mqtt::encoded_size(p, v) == bytes.size());
    mqtt::decoder again;
    again.set_version(v);
    again.feed(bytes);
    std::error_code ec;
    const auto q = again.next(ec);
    require(!ec && q && *q == p && again.buffered() == 0);
}

struct splitter {
    std::uint32_t state;
    std::size_t next(std::size_t left) {
        state = state * 1103515245u + 12345u;
        const std::size_t n = 1 + (state >> 16) % 17;
        return n < left ? n : left;
    }
};

outcome run(std::string_view stream, std::optional<mqtt::protocol_version> start, std::uint32_t max_size,
            std::optional<splitter> split) {
    outcome out;
    mqtt::decoder d(max_size);
    if (start) d.set_version(*start);
    std::size_t fed = 0;
    std::size_t consumed = 0;
    bool use_prepare = false;
    while (!out.error) {
        if (fed < stream.size()) {
            const auto n = split ? split->next(stream.size() - fed) : stream.size();
            if (use_prepare) {
                std::memcpy(d.prepare(n).data(), stream.data() + fed, n);
                d.commit(n);
            } else {
                d.feed(stream.substr(fed, n));
            }
            use_prepare = !use_prepare;
            fed += n;
        }
        while (auto p = d.next(out.error)) {
            const auto now = fed - d.buffered();
            check_round_trip(*p, version_for(*p, d.version()), stream.substr(consumed, now - consumed));
            consumed = now;
            out.packets.push_back(std::move(*p));
        }
        if (fed == stream.size()) break;
    }
    out.version = d.version();
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    static constexpr std::uint32_t sizes[] = {mqtt::max_packet_size_limit, 16, 128, 1024};
    std::optional<mqtt::protocol_version> start;
    switch (data[0] & 3) {
    case 1: start = mqtt::protocol_version::v31; break;
    case 2: start = mqtt::protocol_version::v311; break;
    case 3: start = mqtt::protocol_version::v5; break;
    default: break;
    }
    const auto max_size = sizes[(data[0] >> 2) & 3];
    const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);

    const auto whole = run(stream, start, max_size, std::nullopt);
    const auto chunked = run(stream, start, max_size, splitter{data[1]});
    require(whole.packets == chunked.packets);
    require(whole.error == chunked.error);
    require(whole.version == chunked.version);
    return 0;
}
