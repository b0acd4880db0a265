#pragma once
// For the backend's tests: an io_context run by a thread of its own (as the backend
// runs it), and waiting for conditions with a limit.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <chrono>
#include <future>
#include <optional>
#include <thread>

#include "pg_test_env.hpp"

namespace betest {

using namespace std::chrono_literals;
namespace asio = boost::asio;

struct io_thread {
    asio::io_context io{1};
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{io.get_executor()};
    std::thread t{[this] { io.run(); }};

    ~io_thread() { stop(); }
    void stop() {
        work.reset();
        if (t.joinable()) {
            // Give the coroutines a moment to end, then stop whatever is left.
            auto until = std::chrono::steady_clock::now() + 2s;
            while (!io.stopped() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(10ms);
            io.stop();
            t.join();
        }
    }
    // Runs `f` on the io thread and waits for it.
    template <class F>
    void sync(F f) {
        std::promise<void> p;
        asio::post(io, [&] {
            f();
            p.set_value();
        });
        p.get_future().wait();
    }
};

template <class Pred>
bool wait_until(Pred pred, std::chrono::steady_clock::duration limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

}  // namespace betest
