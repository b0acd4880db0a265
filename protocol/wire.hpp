#pragma once
// Primitives of the MQTT wire format (spec 1.5): big-endian integers, Variable Byte
// Integers, length-prefixed strings. Private to the codec.
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/reason_code.hpp"
#include "protocol/utf8.hpp"
#include "protocol/varint.hpp"

namespace mqtt::wire {

// Bounds-checked reading. The first violation sticks: later reads return zeros and empty
// views, so a parser can read a whole packet and check failed() once.
class reader {
public:
    explicit reader(std::string_view in) noexcept : in_(in) {}

    bool failed() const noexcept { return error_ != reason_code::success; }
    reason_code error() const noexcept { return error_; }
    bool empty() const noexcept { return in_.empty(); }
    void fail(reason_code rc) noexcept {
        if (failed()) return;
        error_ = rc;
        in_ = {};
    }

    std::uint8_t u8() noexcept {
        auto b = bytes(1);
        return b.empty() ? 0 : static_cast<std::uint8_t>(b[0]);
    }
    std::uint16_t u16() noexcept {
        auto b = bytes(2);
        return b.empty() ? 0 : static_cast<std::uint16_t>(byte(b, 0) << 8 | byte(b, 1));
    }
    std::uint32_t u32() noexcept {
        auto b = bytes(4);
        return b.empty() ? 0 : byte(b, 0) << 24 | byte(b, 1) << 16 | byte(b, 2) << 8 | byte(b, 3);
    }
    std::uint32_t varint() noexcept {
        const auto r = get_varint(in_);
        if (r.status != varint_status::ok) {
            fail(reason_code::malformed_packet);
            return 0;
        }
        in_.remove_prefix(r.length);
        return r.value;
    }
    std::string_view bytes(std::size_t n) noexcept {
        if (in_.size() < n) {
            fail(reason_code::malformed_packet);
            return {};
        }
        const auto out = in_.substr(0, n);
        in_.remove_prefix(n);
        return out;
    }
    std::string_view rest() noexcept { return bytes(in_.size()); }
    // Binary Data (spec 1.5.6).
    std::string_view binary() noexcept { return bytes(u16()); }
    // UTF-8 Encoded String (spec 1.5.4); ill-formed UTF-8 is a Malformed Packet.
    std::string_view utf8() noexcept {
        const auto s = binary();
        if (valid_mqtt_utf8(s)) return s;
        fail(reason_code::malformed_packet);
        return {};
    }

private:
    static std::uint32_t byte(std::string_view b, std::size_t i) noexcept {
        return static_cast<std::uint8_t>(b[i]);
    }

    std::string_view in_;
    reason_code error_ = reason_code::success;
};

// Appends to a string; the encoder runs the same code over a size_sink to measure.
struct string_sink {
    std::string& out;
    void u8(std::uint8_t v) { out.push_back(static_cast<char>(v)); }
    void u16(std::uint16_t v) {
        u8(static_cast<std::uint8_t>(v >> 8));
        u8(static_cast<std::uint8_t>(v));
    }
    void u32(std::uint32_t v) {
        u16(static_cast<std::uint16_t>(v >> 16));
        u16(static_cast<std::uint16_t>(v));
    }
    void varint(std::uint32_t v) { put_varint(v, out); }
    void bytes(std::string_view s) { out.append(s); }
};

struct size_sink {
    std::size_t size = 0;
    bool string_too_long = false;  // the encoder's length-prefixed values note it here
    void u8(std::uint8_t) noexcept { size += 1; }
    void u16(std::uint16_t) noexcept { size += 2; }
    void u32(std::uint32_t) noexcept { size += 4; }
    void varint(std::uint32_t v) noexcept { size += varint_size(v); }
    void bytes(std::string_view s) noexcept { size += s.size(); }
};

}  // namespace mqtt::wire
