#include <doctest/doctest.h>

#include "conf/units.hpp"

using namespace std::chrono_literals;
using conf::parse_duration;
using conf::parse_size;
using conf::parse_uint;

TEST_CASE("unsigned integers: digits only, no overflow") {
    CHECK(parse_uint("0") == 0u);
    CHECK(parse_uint("18446744073709551615") == UINT64_MAX);
    for (const char* bad : {"", "18446744073709551616", "-1", "+1", "1a", " 1", "1 ", "0x10", "1.0"})
        CHECK_MESSAGE(!parse_uint(bad), bad);
}

TEST_CASE("durations as EMQX writes them") {
    CHECK(parse_duration("2h") == 2h);
    CHECK(parse_duration("30s") == 30s);
    CHECK(parse_duration("15m") == 15min);
    CHECK(parse_duration("1d") == 24h);
    CHECK(parse_duration("500ms") == 500ms);
    CHECK(parse_duration("60") == 60s);
    CHECK(parse_duration("0") == 0ms);
    CHECK(parse_duration("2ms") == 2ms);
}

TEST_CASE("durations: negatives, overflow and junk are rejected") {
    for (const char* bad : {"", "-1s", "-1", "h", "1x", "1H", "1.5h", "1 h", " 1h", "1h30m", "infinity", "1sms",
                            "106751991168d", "18446744073709551615", "99999999999999999999ms"})
        CHECK_MESSAGE(!parse_duration(bad), bad);
    CHECK(parse_duration("106751991167d") == std::chrono::milliseconds(106751991167LL * 86'400'000));
}

TEST_CASE("byte sizes are binary, units case-insensitive") {
    CHECK(parse_size("1MB") == 1u << 20);
    CHECK(parse_size("64KB") == 64u << 10);
    CHECK(parse_size("256") == 256u);
    CHECK(parse_size("1GB") == 1u << 30);
    CHECK(parse_size("256mb") == 256u << 20);
    CHECK(parse_size("10B") == 10u);
    CHECK(parse_size("0") == 0u);
}

TEST_CASE("byte sizes: negatives, overflow and junk are rejected") {
    for (const char* bad : {"", "-1", "-1MB", "MB", "1TB", "1.5MB", "1 MB", "1M", "17179869184GB",
                            "18446744073709551616", "1MBB"})
        CHECK_MESSAGE(!parse_size(bad), bad);
    CHECK(parse_size("17179869183GB") == 17179869183ull << 30);
}
