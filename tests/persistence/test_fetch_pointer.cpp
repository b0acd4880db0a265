// The ack pointer of an offline fetch: it passes only rows delivered and acknowledged.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "persistence/fetch_pointer.hpp"

using mqttd::persistence::fetch_pointer;

namespace {

// Rows m<id> with ids first, first + 1, ...
std::vector<fetch_pointer::row> rows(std::int64_t first, int n) {
    std::vector<fetch_pointer::row> out;
    for (int i = 0; i < n; ++i) out.push_back({first + i, "m" + std::to_string(first + i), true});
    return out;
}

std::string m(std::int64_t id) { return "m" + std::to_string(id); }

}  // namespace

TEST_CASE("fetch pointer: it moves over the acknowledged prefix only; a full page acknowledged fetches the next") {
    fetch_pointer p(true);
    CHECK(p.draining());
    std::vector<std::size_t> send;
    auto s = p.page(rows(10, 3), true, send);
    CHECK(send == std::vector<std::size_t>{0, 1, 2});
    CHECK_FALSE(s.move_to);
    CHECK_FALSE(s.fetch);
    p.handed_over(send.size(), send);

    s = p.ack(m(11));  // out of order: the pointer waits for 10
    CHECK_FALSE(s.move_to);
    CHECK(s.move_to_msgid.empty());
    s = p.ack(m(10));
    CHECK(s.move_to == 11);
    CHECK_FALSE(s.fetch);
    s = p.ack(m(11));  // again: nothing
    CHECK_FALSE(s.move_to);
    s = p.ack(m(12));
    CHECK(s.move_to == 12);
    CHECK(s.fetch);  // the page was full: there may be more
    CHECK(p.draining());

    // The last page (not full): once acknowledged, the backlog is drained.
    s = p.page(rows(13, 2), false, send);
    CHECK(send.size() == 2);
    p.handed_over(send.size(), send);
    CHECK_FALSE(p.ack(m(13)).fetch);
    s = p.ack(m(14));
    CHECK(s.move_to == 14);
    CHECK_FALSE(s.fetch);
    CHECK_FALSE(p.draining());
    CHECK(p.page_size() == 0);

    // Drained: any acknowledged message of the subscription moves the pointer.
    s = p.ack("live");
    CHECK(s.move_to_msgid == "live");
    CHECK_FALSE(s.move_to);
}

TEST_CASE("fetch pointer: while draining, a live ack does not move the pointer; the last one counts once drained") {
    fetch_pointer p(true);
    auto s = p.ack("live1");  // before the first page even arrived
    CHECK(s.move_to_msgid.empty());
    CHECK_FALSE(s.fetch);
    std::vector<std::size_t> send;
    s = p.page(rows(1, 3), true, send);
    p.handed_over(send.size(), send);
    s = p.ack(m(1));
    CHECK(s.move_to == 1);
    s = p.ack("live2");  // the pointer waits for the backlog
    CHECK(s.move_to_msgid.empty());
    CHECK_FALSE(s.fetch);
    p.ack(m(2));
    s = p.ack(m(3));
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

TEST_CASE("fetch pointer: a page the session queue took part of ends there; the rest follows, in stored order") {
    fetch_pointer p(true);
    std::vector<std::size_t> send;
    p.page(rows(1, 5), false, send);
    auto s = p.handed_over(2, send);  // room for 1 and 2 only
    CHECK_FALSE(s.fetch);
    CHECK(p.page_size() == 2);
    CHECK(p.ack(m(1)).move_to == 1);
    s = p.ack(m(2));
    CHECK(s.move_to == 2);
    CHECK(s.fetch);  // the rest, from the pointer
    CHECK(p.draining());
    s = p.page(rows(3, 3), false, send);
    CHECK(send.size() == 3);
    CHECK_FALSE(p.handed_over(3, send).fetch);
    p.ack(m(3));
    p.ack(m(4));
    CHECK(p.ack(m(5)).move_to == 5);
    CHECK_FALSE(p.draining());
}

TEST_CASE("fetch pointer: a page the queue took none of is fetched again at the client's next ack") {
    fetch_pointer p(true);
    auto r = rows(1, 3);
    r[0].needs_ack = false;  // delivered at QoS 0: not waited for
    std::vector<std::size_t> send;
    auto s = p.page(r, true, send);
    CHECK(send == std::vector<std::size_t>{1, 2});
    CHECK(s.move_to == 1);
    s = p.handed_over(0, send);
    CHECK_FALSE(s.fetch);  // nothing of it is queued: reading it again now would find no room either
    CHECK_FALSE(s.move_to);
    s = p.saw_ack();  // another subscription's message acknowledged: room
    CHECK(s.fetch);
    CHECK_FALSE(p.saw_ack().fetch);  // one fetch at a time
    s = p.page(rows(2, 2), false, send);
    CHECK(send.size() == 2);
    p.handed_over(2, send);
    CHECK_FALSE(p.ack("live").fetch);  // a live ack while draining: remembered
    p.ack(m(2));
    s = p.ack(m(3));
    CHECK(s.move_to == 3);
    CHECK(s.move_to_msgid == "live");
    CHECK_FALSE(p.draining());
}

TEST_CASE("fetch pointer: a row acknowledged before its page is read again is not resent") {
    fetch_pointer p(true);
    std::vector<std::size_t> send;
    p.page(rows(1, 3), true, send);
    p.handed_over(3, send);
    p.ack(m(2));  // out of order: the pointer stays before 1
    // Read again from a pointer that stayed behind (as when the stream refused its move
    // under load): 2 is not sent twice.
    auto s = p.page(rows(1, 3), true, send);
    CHECK(send == std::vector<std::size_t>{0, 2});
    CHECK_FALSE(s.move_to);
}
