// The session registry's handling of wills: published at once, after their Will Delay
// Interval, at session end, or never, depending on what becomes of the session.
#include <doctest/doctest.h>

#include <chrono>
#include <vector>

#include "broker/session_registry.hpp"

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

struct owner : mqttd::session_owner {
    void wake() override {}
    void taken_over() override {}
};

struct fixture {
    std::vector<std::string> published;  // will payloads
    std::vector<std::string> ended;      // client ids
    mqttd::session_registry reg{[this](const mqttd::session_ptr& s) { ended.push_back(s->clientid()); },
                                [this](const mqttd::message_ptr& w) { published.emplace_back(w->payload.view()); }};
    std::shared_ptr<owner> o = std::make_shared<owner>();
    mqttd::session_limits limits;

    mqttd::session_registry::opened open(const std::string& id, bool clean, std::uint32_t expiry) {
        return reg.open(id, clean, expiry, limits, o);
    }
};

mqttd::message_ptr will(const std::string& payload) {
    auto m = std::make_shared<mqttd::message>();
    m->topic = "will";
    m->payload = mqtt::shared_payload(payload);
    return m;
}

}  // namespace

TEST_CASE("registry: a will without delay is published when its connection goes") {
    fixture f;
    auto a = f.open("a", true, 60);
    f.reg.release(a.s, a.generation, will("now"), 0);
    CHECK(f.published == std::vector<std::string>{"now"});
    CHECK(f.ended.empty());  // the session lives on
}

TEST_CASE("registry: a delayed will waits for its delay") {
    fixture f;
    auto a = f.open("a", true, 60);
    const auto t0 = clock_type::now();
    f.reg.release(a.s, a.generation, will("later"), 5);
    CHECK(f.published.empty());
    f.reg.sweep(t0 + 4s);
    CHECK(f.published.empty());
    f.reg.sweep(t0 + 6s);
    CHECK(f.published == std::vector<std::string>{"later"});
    f.reg.sweep(t0 + 30s);
    CHECK(f.published.size() == 1);
}

TEST_CASE("registry: a session that ends before the delay takes its will along") {
    fixture f;
    auto a = f.open("a", true, 2);
    const auto t0 = clock_type::now();
    f.reg.release(a.s, a.generation, will("session over"), 30);
    CHECK(f.published.empty());
    CHECK(f.reg.sweep(t0 + 3s) == 1);
    CHECK(f.published == std::vector<std::string>{"session over"});
    CHECK(f.ended == std::vector<std::string>{"a"});
}

TEST_CASE("registry: with Session Expiry 0 the will goes with the session, delay or not") {
    fixture f;
    auto a = f.open("a", true, 0);
    f.reg.release(a.s, a.generation, will("gone"), 30);
    CHECK(f.published == std::vector<std::string>{"gone"});
    CHECK(f.ended == std::vector<std::string>{"a"});
}

TEST_CASE("registry: resuming the session within the delay cancels the will") {
    fixture f;
    auto a = f.open("a", true, 60);
    const auto t0 = clock_type::now();
    f.reg.release(a.s, a.generation, will("cancelled"), 5);
    auto b = f.open("a", false, 60);
    CHECK(b.present);
    f.reg.sweep(t0 + 10s);
    CHECK(f.published.empty());
    f.reg.release(b.s, b.generation);  // and the resumed connection had no will
    f.reg.sweep(t0 + 20s);
    CHECK(f.published.empty());
}

TEST_CASE("registry: a Clean Start connection ends the old session and publishes its will") {
    fixture f;
    auto a = f.open("a", true, 60);
    f.reg.release(a.s, a.generation, will("replaced"), 30);
    auto b = f.open("a", true, 60);
    CHECK_FALSE(b.present);
    CHECK(f.published == std::vector<std::string>{"replaced"});
    CHECK(f.ended == std::vector<std::string>{"a"});
}

TEST_CASE("registry: a taken-over connection's will waits only on a session that continues") {
    fixture f;
    auto a = f.open("a", true, 60);
    auto b = f.open("a", false, 60);  // takes the session over, continuing it
    f.reg.release(a.s, a.generation, will("kept back"), 5);
    CHECK(f.published.empty());
    f.reg.release(a.s, a.generation, will("no delay"), 0);
    CHECK(f.published == std::vector<std::string>{"no delay"});

    auto c = f.open("a", true, 60);  // Clean Start: b's session ends
    f.reg.release(b.s, b.generation, will("session replaced"), 5);
    CHECK(f.published == std::vector<std::string>{"no delay", "session replaced"});
    f.reg.release(c.s, c.generation);
}
