// The ack pointer of an offline fetch: it passes only rows delivered and acknowledged.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "persistence/fetch_pointer.hpp"

using mqttd::persistence::fetch_pointer;
using namespace std::chrono_literals;

namespace {

// Rows m<id> with ids first, first + 1, ...
std::vector<fetch_pointer::row> rows(std::int64_t first, int n) {
    std::vector<fetch_pointer::row> out;
    for (int i = 0; i < n; ++i) out.push_back({first + i, "m" + std::to_string(first + i), true});
    return out;
}

std::string m(std::int64_t id) { return "m" + std::to_string(id); }

const fetch_pointer::time_point t0 = std::chrono::system_clock::now();

}  // namespace

TEST_CASE("fetch pointer: it moves over the acknowledged prefix only; a full page acknowledged fetches the next") {
    fetch_pointer p(true);
    CHECK(p.draining());
    std::vector<std::size_t> send;
    auto s = p.page(rows(10, 3), true, send);
    CHECK(send == std::vector<std::size_t>{0, 1, 2});
    CHECK_FALSE(s.move_to);
    CHECK_FALSE(s.fetch);
    p.handed_over(t0);

    s = p.ack(m(11), t0 - 1s);  // out of order: the pointer waits for 10
    CHECK_FALSE(s.move_to);
    CHECK(s.move_to_msgid.empty());
    s = p.ack(m(10), t0 - 1s);
    CHECK(s.move_to == 11);
    CHECK_FALSE(s.fetch);
    s = p.ack(m(11), t0 - 1s);  // again: nothing
    CHECK_FALSE(s.move_to);
    s = p.ack(m(12), t0 - 1s);
    CHECK(s.move_to == 12);
    CHECK(s.fetch);  // the page was full: there may be more
    CHECK(p.draining());

    // The last page (not full): once acknowledged, the backlog is drained.
    s = p.page(rows(13, 2), false, send);
    CHECK(send.size() == 2);
    p.handed_over(t0);
    CHECK_FALSE(p.ack(m(13), t0).fetch);
    s = p.ack(m(14), t0);
    CHECK(s.move_to == 14);
    CHECK_FALSE(s.fetch);
    CHECK_FALSE(p.draining());
    CHECK(p.page_size() == 0);

    // Drained: any acknowledged message of the subscription moves the pointer.
    s = p.ack("live", t0 + 1s);
    CHECK(s.move_to_msgid == "live");
    CHECK_FALSE(s.move_to);
}

TEST_CASE("fetch pointer: while draining, a live ack does not move the pointer; the last one counts once drained") {
    fetch_pointer p(true);
    auto s = p.ack("live1", t0);  // before the first page even arrived
    CHECK(s.move_to_msgid.empty());
    CHECK_FALSE(s.fetch);
    std::vector<std::size_t> send;
    s = p.page(rows(1, 3), true, send);
    p.handed_over(t0 + 1s);
    s = p.ack(m(1), t0);
    CHECK(s.move_to == 1);
    s = p.ack("live2", t0);  // published before the page was handed over: proves nothing
    CHECK(s.move_to_msgid.empty());
    CHECK_FALSE(s.fetch);
    p.ack(m(2), t0);
    s = p.ack(m(3), t0);
    CHECK(s.move_to == 3);
    CHECK(s.fetch);
    CHECK(s.move_to_msgid.empty());  // more backlog may follow: the live ack still waits
    s = p.page({}, false, send);      // nothing more
    CHECK(send.empty());
    CHECK_FALSE(s.fetch);
    CHECK_FALSE(s.move_to);
    CHECK(s.move_to_msgid == "live2");
    CHECK_FALSE(p.draining());
}

TEST_CASE("fetch pointer: a first subscription (an empty page) drains at once") {
    fetch_pointer p(true);
    std::vector<std::size_t> send{7};
    auto s = p.page({}, false, send);
    CHECK(send.empty());
    CHECK_FALSE(s.fetch);
    CHECK_FALSE(s.move_to);
    CHECK(s.move_to_msgid.empty());
    CHECK_FALSE(p.draining());
    CHECK_FALSE(fetch_pointer(false).draining());
}

TEST_CASE("fetch pointer: rows dropped from the session queue are fetched again, without those acknowledged") {
    fetch_pointer p(true);
    std::vector<std::size_t> send;
    p.page(rows(1, 5), true, send);
    p.handed_over(t0);
    // The queue dropped 1 and 2 (its oldest); 3 and 4 were acknowledged.
    CHECK_FALSE(p.ack(m(3), t0 - 1s).move_to);
    CHECK_FALSE(p.ack(m(4), t0 - 1s).move_to);
    // A message queued after the page is acknowledged: 1, 2 and 5 are not coming.
    auto s = p.ack("live", t0 + 1ms);
    CHECK(s.fetch);
    CHECK_FALSE(s.move_to);
    CHECK(s.move_to_msgid.empty());
    CHECK_FALSE(p.ack("live again", t0 + 2ms).fetch);  // one fetch at a time
    // Fetched again from the pointer: 3 and 4 are not sent twice.
    s = p.page(rows(1, 5), true, send);
    CHECK(send == std::vector<std::size_t>{0, 1, 4});
    CHECK_FALSE(s.move_to);
    p.handed_over(t0 + 3ms);
    CHECK(p.ack(m(1), t0).move_to == 1);
    CHECK(p.ack(m(2), t0).move_to == 4);
    s = p.ack(m(5), t0);
    CHECK(s.move_to == 5);
    CHECK(s.fetch);
}

TEST_CASE("fetch pointer: an ack of another subscription's later message also proves rows lost") {
    fetch_pointer p(true);
    std::vector<std::size_t> send;
    p.page(rows(1, 2), false, send);
    CHECK_FALSE(p.saw_ack(t0 + 1s).fetch);  // not handed over yet: nothing is known
    p.handed_over(t0);
    CHECK_FALSE(p.saw_ack(t0 - 1s).fetch);
    CHECK(p.saw_ack(t0 + 1s).fetch);
}

TEST_CASE("fetch pointer: rows delivered at QoS 0 are not waited for; a row acked during a refetch is not resent") {
    fetch_pointer p(true);
    auto r = rows(1, 3);
    r[0].needs_ack = false;
    r[2].needs_ack = false;
    std::vector<std::size_t> send;
    auto s = p.page(r, true, send);
    CHECK(send == std::vector<std::size_t>{1});
    CHECK(s.move_to == 1);
    p.handed_over(t0);
    CHECK(p.saw_ack(t0 + 1s).fetch);  // 2 looks lost...
    s = p.ack(m(2), t0);               // ...but its ack comes while the page is fetched again
    CHECK(s.move_to == 3);
    CHECK_FALSE(s.fetch);  // the fetch under way brings the next rows
    // The fetch read from the pointer before that move: 2 and 3 again, then 4.
    s = p.page(rows(2, 3), false, send);
    CHECK(send == std::vector<std::size_t>{2});
    CHECK(s.move_to == 3);
}
