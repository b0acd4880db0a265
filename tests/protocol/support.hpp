#pragma once
// Helpers shared by the protocol tests.
#include <doctest/doctest.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "protocol/decoder.hpp"
#include "protocol/encoder.hpp"

namespace test {

// Wire bytes written out one by one; characters may be given as 'M', 'Q', ...
inline std::string bytes(std::initializer_list<int> b) {
    std::string out;
    for (int c : b) out.push_back(static_cast<char>(c));
    return out;
}

inline std::string hex(std::string_view s) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
        if (!out.empty()) out.push_back(' ');
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 15]);
    }
    return out;
}

inline mqtt::properties props(std::initializer_list<mqtt::property> items) {
    mqtt::properties p;
    for (const auto& i : items) p.add(i.id, i.value);
    return p;
}

struct decoded {
    std::optional<mqtt::packet> packet;
    std::error_code ec;
    std::optional<mqtt::protocol_version> version;
    std::size_t left = 0;  // bytes still buffered
};

// Decodes the first packet of `wire`; without a version only a CONNECT can be decoded.
inline decoded decode(std::string_view wire, std::optional<mqtt::protocol_version> v,
                      std::uint32_t max_packet_size = mqtt::max_packet_size_limit) {
    mqtt::decoder d(max_packet_size);
    if (v) d.set_version(*v);
    d.feed(wire);
    decoded out;
    out.packet = d.next(out.ec);
    out.version = d.version();
    out.left = d.buffered();
    return out;
}

}  // namespace test
