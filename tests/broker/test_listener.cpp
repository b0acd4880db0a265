// The listener against the real broker (in this process, on loopback ports): one
// acceptor per I/O thread, all on one port, each serving what it accepts on its own
// thread.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "broker/broker.hpp"
#include "paho_client.hpp"

using namespace std::chrono_literals;

namespace {

mqttd::broker_options options(unsigned threads, std::uint16_t port = 0, std::chrono::seconds connect_timeout = 10s) {
    mqttd::broker_options o;
    o.connect_timeout = connect_timeout;
    o.listeners = {{mqttd::listener_options::kind::tcp, "127.0.0.1", port}};
    o.threads = threads;
    o.sys_interval = 0s;
    return o;
}

struct running_broker {
    mqttd::broker b;
    explicit running_broker(unsigned threads, std::uint16_t port = 0, std::chrono::seconds connect_timeout = 10s)
        : b(options(threads, port, connect_timeout)) {
        b.start();
    }
    ~running_broker() {
        b.stop();
        b.wait();
    }
    std::uint16_t port() const { return b.ports().front(); }
};

// A TCP connection that has sent an MQTT 3.1.1 CONNECT (unless `id` is empty) and may be
// waiting for its CONNACK.
class raw_client {
public:
    raw_client(std::uint16_t port, const std::string& id) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
        if (fd_ < 0) throw std::runtime_error("socket failed");
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect failed");
        if (id.empty()) return;
        std::string p = {0x10, static_cast<char>(12 + id.size()), 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0,
                         static_cast<char>(id.size())};
        p += id;
        if (::send(fd_, p.data(), p.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(p.size()))
            throw std::runtime_error("send failed");
    }
    ~raw_client() { ::close(fd_); }
    raw_client(const raw_client&) = delete;
    raw_client& operator=(const raw_client&) = delete;

    // The CONNACK (accepted) arrived within `timeout`.
    bool connack(std::chrono::milliseconds timeout) {
        if (acked_) return true;
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
        unsigned char b[4];
        acked_ = ::recv(fd_, b, sizeof b, MSG_WAITALL) == 4 && b[0] == 0x20 && b[1] == 2 && b[3] == 0;
        return acked_;
    }

    // The broker closed the connection within `timeout` without sending anything.
    bool closed_by_broker(std::chrono::milliseconds timeout) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
        char b;
        return ::recv(fd_, &b, 1, 0) <= 0;
    }

private:
    int fd_;
    bool acked_ = false;
};

}  // namespace

TEST_CASE("listener: with several I/O threads and port 0, every connection reaches the one port") {
    running_broker rb(4);
    REQUIRE(rb.b.ports().size() == 1);
    REQUIRE(rb.port() != 0);
    // Enough that every acceptor almost surely gets some (one is missed once in 25,000 runs).
    std::vector<std::unique_ptr<raw_client>> clients;
    for (int i = 0; i < 40; ++i) clients.push_back(std::make_unique<raw_client>(rb.port(), "port0-" + std::to_string(i)));
    for (auto& c : clients) CHECK(c->connack(10s));
}

TEST_CASE("listener: a port another broker listens on is a start-up error, whatever the threads") {
    running_broker first(2);
    mqttd::broker second(options(2, first.port()));
    CHECK_THROWS(second.start());
    // The first still has its port to itself.
    test::paho_client c(first.port(), "still-first");
    CHECK(c.connect() == MQTTCLIENT_SUCCESS);
}

TEST_CASE("listener: connections are accepted and served on every I/O thread") {
    // The client.connected handler runs on the thread that serves the connection.
    std::mutex m;
    std::set<std::thread::id> threads;
    running_broker rb(2);
    rb.b.hooks().on_client_connected([&](const mqttd::client_info&) {
        std::lock_guard lock(m);
        threads.insert(std::this_thread::get_id());
    });
    // Each connection goes to either thread; 32 on one alone would be one chance in 2^31.
    std::vector<std::unique_ptr<raw_client>> clients;
    for (int i = 0; i < 32; ++i) clients.push_back(std::make_unique<raw_client>(rb.port(), "threads-" + std::to_string(i)));
    // The CONNACK is written after the handler has run.
    for (auto& c : clients) REQUIRE(c->connack(10s));
    std::lock_guard lock(m);
    CHECK(threads.size() == 2);
}

TEST_CASE("listener: while one I/O thread is busy, the others still accept and serve connections") {
    // A client.connected handler holds the first connection's thread until released, as
    // a long handler would. A single acceptor on one thread would wait for it too.
    std::promise<void> release;
    auto released = release.get_future().share();
    std::promise<void> entered;
    std::atomic<bool> first{true};
    running_broker rb(2);
    rb.b.hooks().on_client_connected([&, released](const mqttd::client_info&) {
        if (!first.exchange(false)) return;
        entered.set_value();
        released.wait();
    });
    struct release_at_exit {
        std::promise<void>& p;
        ~release_at_exit() { p.set_value(); }
    } guard{release};

    raw_client holder(rb.port(), "holder");
    REQUIRE(entered.get_future().wait_for(10s) == std::future_status::ready);
    // About half go to the held thread; all 32 there would be one chance in 2^32.
    std::vector<std::unique_ptr<raw_client>> others;
    for (int i = 0; i < 32; ++i) others.push_back(std::make_unique<raw_client>(rb.port(), "other-" + std::to_string(i)));
    auto any_served = [&] {
        for (auto& c : others)
            if (c->connack(10ms)) return true;
        return false;
    };
    bool served = false;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!served && std::chrono::steady_clock::now() < deadline) served = any_served();
    CHECK(served);
}

TEST_CASE("listener: a connection that never sends CONNECT is still closed by the connect timeout") {
    running_broker rb(2, 0, 1s);
    raw_client silent(rb.port(), "");
    CHECK(silent.closed_by_broker(15s));
    // It was accepted, not dropped: the broker still serves others.
    raw_client c(rb.port(), "after-silent");
    CHECK(c.connack(10s));
}
