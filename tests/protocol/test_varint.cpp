#include <doctest/doctest.h>

#include <string>

#include "protocol/varint.hpp"

using namespace mqtt;

namespace {

std::string bytes(std::initializer_list<unsigned char> b) { return {b.begin(), b.end()}; }

}  // namespace

TEST_CASE("varint: edge values encode as spec table 1.5.5 and decode back") {
    struct row {
        std::uint32_t value;
        std::string wire;
    };
    const row rows[] = {
        {0, bytes({0x00})},
        {127, bytes({0x7F})},
        {128, bytes({0x80, 0x01})},
        {16'383, bytes({0xFF, 0x7F})},
        {16'384, bytes({0x80, 0x80, 0x01})},
        {2'097'151, bytes({0xFF, 0xFF, 0x7F})},
        {2'097'152, bytes({0x80, 0x80, 0x80, 0x01})},
        {268'435'455, bytes({0xFF, 0xFF, 0xFF, 0x7F})},
    };
    for (const auto& r : rows) {
        CAPTURE(r.value);
        std::string out;
        put_varint(r.value, out);
        CHECK(out == r.wire);
        CHECK(varint_size(r.value) == r.wire.size());
        const auto got = get_varint(r.wire + "tail");
        CHECK(got.status == varint_status::ok);
        CHECK(got.value == r.value);
        CHECK(got.length == r.wire.size());
    }
}

TEST_CASE("varint: a fifth byte is malformed") {
    CHECK(get_varint(bytes({0xFF, 0xFF, 0xFF, 0xFF, 0x7F})).status == varint_status::malformed);
    CHECK(get_varint(bytes({0x80, 0x80, 0x80, 0x80, 0x01})).status == varint_status::malformed);
    CHECK(get_varint(bytes({0x80, 0x80, 0x80, 0x80})).status == varint_status::malformed);
}

TEST_CASE("varint: non-minimal encodings are malformed [MQTT-1.5.5-1]") {
    CHECK(get_varint(bytes({0x80, 0x00})).status == varint_status::malformed);
    CHECK(get_varint(bytes({0xFF, 0x00})).status == varint_status::malformed);
    CHECK(get_varint(bytes({0x80, 0x80, 0x00})).status == varint_status::malformed);
    CHECK(get_varint(bytes({0x81, 0x80, 0x80, 0x00})).status == varint_status::malformed);
}

TEST_CASE("varint: truncated input asks for more") {
    CHECK(get_varint("").status == varint_status::incomplete);
    CHECK(get_varint(bytes({0x80})).status == varint_status::incomplete);
    CHECK(get_varint(bytes({0xFF, 0xFF, 0xFF})).status == varint_status::incomplete);
}
