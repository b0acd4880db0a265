#include <doctest/doctest.h>

#include <string>

#include "protocol/utf8.hpp"

using namespace mqtt;

namespace {

std::string bytes(std::initializer_list<unsigned char> b) { return {b.begin(), b.end()}; }

}  // namespace

TEST_CASE("utf8: well-formed strings are accepted") {
    CHECK(valid_mqtt_utf8(""));
    CHECK(valid_mqtt_utf8("sport/tennis/player1"));
    CHECK(valid_mqtt_utf8("a long ascii string that crosses several eight byte words"));
    CHECK(valid_mqtt_utf8(bytes({0xC2, 0xA9})));              // U+00A9
    CHECK(valid_mqtt_utf8(bytes({0xDF, 0xBF})));              // U+07FF
    CHECK(valid_mqtt_utf8(bytes({0xE0, 0xA0, 0x80})));        // U+0800
    CHECK(valid_mqtt_utf8(bytes({0xED, 0x9F, 0xBF})));        // U+D7FF, just below the surrogates
    CHECK(valid_mqtt_utf8(bytes({0xEE, 0x80, 0x80})));        // U+E000, just above them
    CHECK(valid_mqtt_utf8(bytes({0xEF, 0xBB, 0xBF})));        // U+FEFF, kept as is [MQTT-1.5.4-3]
    CHECK(valid_mqtt_utf8(bytes({0xF0, 0x90, 0x80, 0x80})));  // U+10000
    CHECK(valid_mqtt_utf8(bytes({0xF0, 0xAA, 0x9B, 0x94})));  // U+2A6D4, the spec's example
    CHECK(valid_mqtt_utf8(bytes({0xF4, 0x8F, 0xBF, 0xBF})));  // U+10FFFF
    CHECK(valid_mqtt_utf8("abcdefg" + bytes({0xE2, 0x82, 0xAC}) + "hijklmnop"));
}

TEST_CASE("utf8: U+0000 is not allowed [MQTT-1.5.4-2]") {
    CHECK_FALSE(valid_mqtt_utf8(std::string(1, '\0')));
    CHECK_FALSE(valid_mqtt_utf8(std::string("abcdefgh\0ijklmnop", 17)));
    CHECK_FALSE(valid_mqtt_utf8(std::string("abc\0", 4)));
    CHECK_FALSE(valid_mqtt_utf8(bytes({0xC0, 0x80})));  // overlong U+0000
}

TEST_CASE("utf8: overlong forms are ill-formed") {
    CHECK_FALSE(valid_mqtt_utf8(bytes({0xC0, 0xAF})));
    CHECK_FALSE(valid_mqtt_utf8(bytes({0xC1, 0xBF})));
    CHECK_FALSE(valid_mqtt_utf8(bytes({0xE0, 0x80, 0xAF})));
    CHECK_FALSE(valid_mqtt_utf8(bytes({0xE0, 0x9F, 0xBF})));
    CHECK_FALSE(valid_mqtt_utf8(bytes({0xF0, 0x80, 0x80, 0xAF})));
    CHECK_FALSE(valid_mqtt_utf8(bytes({0xF0, 0x8F, 0xBF, 0xBF})));
}

TEST_CASE("utf8: surrogates are ill-formed [MQTT-1.5.4-1]") {
    CHECK_FALSE(valid_mqtt_utf8(bytes({0xED, 0xA0, 0x80})));  // U+D800
    CHECK_FALSE(valid_mqtt_utf8(bytes({0xED, 0xBF, 0xBF})));  // U+DFFF
    CHECK_FALSE(valid_mqtt_utf8(bytes({0xED, 0xA0, 0xBD, 0xED, 0xB2, 0xA9})));  // CESU-8 pair
}

TEST_CASE("utf8: beyond U+10FFFF and stray bytes are ill-formed") {
    CHECK_FALSE(valid_mqtt_utf8(bytes({0xF4, 0x90, 0x80, 0x80})));
    CHECK_FALSE(valid_mqtt_utf8(bytes({0xF5, 0x80, 0x80, 0x80})));
    CHECK_FALSE(valid_mqtt_utf8(bytes({0xF8, 0x88, 0x80, 0x80, 0x80})));
    CHECK_FALSE(valid_mqtt_utf8(bytes({0xFF})));
    CHECK_FALSE(valid_mqtt_utf8(bytes({0x80})));         // lone continuation byte
    CHECK_FALSE(valid_mqtt_utf8(bytes({0xC2, 0x41})));   // lead without continuation
    CHECK_FALSE(valid_mqtt_utf8(bytes({0xE2, 0x28, 0xA1})));
}

TEST_CASE("utf8: truncated sequences are ill-formed") {
    CHECK_FALSE(valid_mqtt_utf8(bytes({0xC2})));
    CHECK_FALSE(valid_mqtt_utf8(bytes({0xE2, 0x82})));
    CHECK_FALSE(valid_mqtt_utf8(bytes({0xF0, 0x9F, 0x98})));
    CHECK_FALSE(valid_mqtt_utf8("abcdefgh" + bytes({0xF0, 0x9F})));
}

TEST_CASE("utf8: a payload may hold U+0000 but nothing ill-formed (Payload Format Indicator 1)") {
    CHECK(valid_utf8(std::string("abcdefgh\0ijklmnop", 17)));
    CHECK(valid_utf8("caf" + bytes({0xC3, 0xA9})));
    CHECK_FALSE(valid_utf8(bytes({0xC0, 0x80})));        // overlong U+0000 stays ill-formed
    CHECK_FALSE(valid_utf8(bytes({0xED, 0xA0, 0x80})));  // a surrogate
    CHECK_FALSE(valid_utf8("abc" + bytes({0xFF})));
}
