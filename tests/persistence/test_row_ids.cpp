// The row ids the backend remembers: found while recent, forgotten two generations on.
#include <doctest/doctest.h>

#include <string>

#include "persistence/row_ids.hpp"

using mqttd::persistence::row_ids;

TEST_CASE("row ids: found while recent, the oldest generation forgotten, the latest id of a msgid kept") {
    row_ids ids(3);
    CHECK_FALSE(ids.find("a"));
    for (int i = 0; i < 3; ++i) ids.add("m" + std::to_string(i), 100 + i);
    CHECK(ids.find("m0") == 100);
    CHECK(ids.find("m2") == 102);
    ids.add("m3", 103);  // a second generation begins; the first is still there
    CHECK(ids.find("m0") == 100);
    CHECK(ids.find("m3") == 103);
    for (int i = 4; i < 7; ++i) ids.add("m" + std::to_string(i), 100 + i);  // a third: the first goes
    CHECK_FALSE(ids.find("m0"));
    CHECK_FALSE(ids.find("m2"));
    CHECK(ids.find("m3") == 103);
    CHECK(ids.find("m6") == 106);
    CHECK(ids.size() <= 6);
    ids.add("m6", 200);  // written again (another row): the newer id
    CHECK(ids.find("m6") == 200);
}
