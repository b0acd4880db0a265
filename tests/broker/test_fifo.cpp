// The vector-backed queue under sessions' message queues and connections' pending acks.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "broker/fifo.hpp"

using mqttd::fifo;

namespace {
template <class T>
std::vector<T> contents(const fifo<T>& q) {
    return {q.begin(), q.end()};
}
}  // namespace

TEST_CASE("fifo: first in, first out, across compactions") {
    fifo<int> q;
    CHECK(q.empty());
    int next_in = 0, next_out = 0;
    // Interleave pushes and pops so that popped slots pile up and get reclaimed.
    for (int round = 0; round < 50; ++round) {
        for (int i = 0; i < 7; ++i) q.push_back(next_in++);
        for (int i = 0; i < 5; ++i) {
            REQUIRE(!q.empty());
            CHECK(q.front() == next_out++);
            q.pop_front();
        }
        CHECK(q.size() == static_cast<std::size_t>(next_in - next_out));
    }
    while (!q.empty()) {
        CHECK(q.front() == next_out++);
        q.pop_front();
    }
    CHECK(next_out == next_in);
}

TEST_CASE("fifo: a popped item releases what it holds at once") {
    fifo<std::shared_ptr<int>> q;
    auto p = std::make_shared<int>(1);
    q.push_back(p);
    q.push_back(std::make_shared<int>(2));
    CHECK(p.use_count() == 2);
    q.pop_front();
    CHECK(p.use_count() == 1);
    CHECK(*q.front() == 2);
}

TEST_CASE("fifo: extract_if keeps the order of the rest and hands each item over once") {
    fifo<std::string> q;
    for (int i = 0; i < 10; ++i) q.push_back("m" + std::to_string(i));
    q.pop_front();  // m0 gone: extract_if must not see it
    std::vector<std::string> taken;
    q.extract_if([](const std::string& s) { return (s.back() - '0') % 3 == 0; },
                 [&](std::string&& s) { taken.push_back(std::move(s)); });
    CHECK(taken == std::vector<std::string>{"m3", "m6", "m9"});
    CHECK(contents(q) == std::vector<std::string>{"m1", "m2", "m4", "m5", "m7", "m8"});
    q.extract_if([](const std::string&) { return true; }, [](std::string&&) {});
    CHECK(q.empty());
    q.push_back("again");
    CHECK(q.front() == "again");
}

TEST_CASE("fifo: insert and erase within the queue keep the order of the rest") {
    fifo<int> q;
    for (int i = 0; i < 40; ++i) q.push_back(i);
    for (int i = 0; i < 35; ++i) q.pop_front();  // compacted: 35..39 left
    q.insert(q.begin() + 1, 100);
    CHECK(contents(q) == std::vector<int>{35, 100, 36, 37, 38, 39});
    q.erase(q.begin() + 2);
    q.erase(q.begin());
    CHECK(contents(q) == std::vector<int>{100, 37, 38, 39});
    CHECK(q.front() == 100);
}
