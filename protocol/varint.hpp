#pragma once
// Variable Byte Integer (spec 1.5.5): 1 to 4 bytes, minimal encoding required.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mqtt {

inline constexpr std::uint32_t varint_max = 268'435'455;

inline std::size_t varint_size(std::uint32_t v) noexcept {
    return v < 128 ? 1 : v < 16'384 ? 2 : v < 2'097'152 ? 3 : 4;
}

inline void put_varint(std::uint32_t v, std::string& out) {
    do {
        auto byte = static_cast<std::uint8_t>(v % 128);
        v /= 128;
        if (v > 0) byte |= 0x80;
        out.push_back(static_cast<char>(byte));
    } while (v > 0);
}

enum class varint_status { ok, incomplete, malformed };

struct varint_result {
    varint_status status;
    std::uint32_t value = 0;
    std::size_t length = 0;  // bytes consumed
};

// Rejects a fifth byte and non-minimal encodings (a trailing 0x00 continuation).
inline varint_result get_varint(std::string_view in) noexcept {
    std::uint32_t value = 0;
    std::uint32_t multiplier = 1;
    for (std::size_t i = 0; i < 4; ++i) {
        if (i >= in.size()) return {varint_status::incomplete};
        auto byte = static_cast<std::uint8_t>(in[i]);
        value += (byte & 0x7Fu) * multiplier;
        if ((byte & 0x80u) == 0) {
            if (i > 0 && byte == 0) return {varint_status::malformed};
            return {varint_status::ok, value, i + 1};
        }
        multiplier *= 128;
    }
    return {varint_status::malformed};
}

}  // namespace mqtt
