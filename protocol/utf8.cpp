#include "protocol/utf8.hpp"

#include <cstdint>
#include <cstring>

namespace mqtt {

namespace {

// True when none of the 8 bytes has its high bit set and none is zero.
bool plain_ascii_word(const unsigned char* p) noexcept {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    constexpr std::uint64_t lows = 0x0101010101010101ull;
    constexpr std::uint64_t highs = 0x8080808080808080ull;
    const bool has_zero = ((w - lows) & ~w & highs) != 0;
    return (w & highs) == 0 && !has_zero;
}

bool continuation(unsigned char c) noexcept { return (c & 0xC0) == 0x80; }

// Well-formed sequences as in Unicode table 3-7; the ranges of the second byte exclude
// overlong forms, surrogates (ED A0..BF) and code points above U+10FFFF.
bool well_formed(std::string_view s, bool allow_nul) noexcept {
    auto p = reinterpret_cast<const unsigned char*>(s.data());
    const auto end = p + s.size();
    while (p < end) {
        if (end - p >= 8 && plain_ascii_word(p)) {
            p += 8;
            continue;
        }
        const unsigned char c = *p;
        if (c < 0x80) {
            if (c == 0 && !allow_nul) return false;
            ++p;
            continue;
        }
        std::size_t len;
        unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return false;
        }
        if (static_cast<std::size_t>(end - p) < len) return false;
        if (p[1] < lo || p[1] > hi) return false;
        for (std::size_t i = 2; i < len; ++i)
            if (!continuation(p[i])) return false;
        p += len;
    }
    return true;
}

}  // namespace

bool valid_mqtt_utf8(std::string_view s) noexcept { return well_formed(s, false); }

bool valid_utf8(std::string_view s) noexcept { return well_formed(s, true); }

}  // namespace mqtt
