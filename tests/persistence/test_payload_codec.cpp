// The payload rule for text columns: plain UTF-8 stays as it is, anything else becomes
// "\x" + lowercase hex; reading inverts it. Every payload round-trips byte-exact.
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "persistence/payload_codec.hpp"

using namespace mqttd::persistence;

namespace {
std::string roundtrip(std::string_view p) { return payload_from_text(payload_to_text(p)); }
}  // namespace

TEST_CASE("plain UTF-8 text is stored as it is") {
    for (std::string_view p : {"", "hello", "ünïcödé ✓ 😀", "a\\b", "x\\", "\\", "\\X41", "line\nbreak\ttab", "{\"json\": 1}"}) {
        CAPTURE(p);
        CHECK(payload_is_plain_text(p));
        CHECK(payload_to_text(p) == p);
        CHECK(roundtrip(p) == p);
    }
}

TEST_CASE("every single byte value round-trips, and the 256-byte payload too") {
    std::string all;
    for (int i = 0; i < 256; ++i) {
        const std::string one(1, static_cast<char>(i));
        CAPTURE(i);
        CHECK(roundtrip(one) == one);
        CHECK(payload_is_plain_text(one) == (i > 0 && i < 0x80));
        all.push_back(static_cast<char>(i));
    }
    const auto text = payload_to_text(all);
    CHECK(text.size() == 2 + 512);
    CHECK(text.starts_with("\\x000102"));
    CHECK(text.ends_with("fdfeff"));
    CHECK(roundtrip(all) == all);
}

TEST_CASE("NUL, invalid UTF-8, surrogates and a \\x prefix take the hex form") {
    for (std::string_view p : {std::string_view("a\0b", 3), std::string_view("\xff"), std::string_view("\xc3"),
                               std::string_view("\xc0\xaf"), std::string_view("\xed\xa0\x80"),
                               std::string_view("\xf4\x90\x80\x80"), std::string_view("\\x41"),
                               std::string_view("\\x"), std::string_view("\\xzz")}) {
        CAPTURE(p);
        CHECK_FALSE(payload_is_plain_text(p));
        CHECK(payload_to_text(p).starts_with("\\x"));
        CHECK(roundtrip(p) == p);
    }
    CHECK(payload_to_text(std::string_view("\\x41")) == "\\x5c783431");
    CHECK(payload_to_text(std::string_view("a\0", 2)) == "\\x6100");
}

TEST_CASE("reading: hex form decoded, anything else verbatim") {
    CHECK(payload_from_text("\\x48656c6C6f") == "Hello");  // either case of hex digits
    CHECK(payload_from_text("\\x") == "");
    CHECK(payload_from_text("\\x123") == "\\x123");  // odd number of digits
    CHECK(payload_from_text("\\xgg") == "\\xgg");    // not hex
    CHECK(payload_from_text("plain") == "plain");
    CHECK(payload_from_text("\\X41") == "\\X41");
}

TEST_CASE("random payloads round-trip") {
    std::mt19937 rng(42);
    for (int n = 0; n < 2000; ++n) {
        std::string p(rng() % 64, '\0');
        const bool ascii = n % 2 == 0;
        for (auto& c : p) c = static_cast<char>(ascii ? 0x20 + rng() % 0x5f : rng() % 256);
        CAPTURE(n);
        CHECK(roundtrip(p) == p);
    }
}
