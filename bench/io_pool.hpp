#pragma once
// The generator's threads: one io_context each, run by one thread, with the metrics of
// the clients placed on it. A client stays on the io_context it was given.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "bench/metrics.hpp"

namespace bench {

class io_pool {
public:
    struct worker {
        boost::asio::io_context io{1};
        shard metrics;
    };

    explicit io_pool(unsigned threads) {
        for (unsigned i = 0; i < threads; ++i) workers_.push_back(std::make_unique<worker>());
        for (auto& w : workers_) {
            guards_.emplace_back(w->io.get_executor());
            threads_.emplace_back([&io = w->io] { io.run(); });
        }
    }
    ~io_pool() { stop(); }
    io_pool(const io_pool&) = delete;
    io_pool& operator=(const io_pool&) = delete;

    // Round robin, so clients spread evenly over the threads.
    worker& next() { return *workers_[next_++ % workers_.size()]; }
    const std::vector<std::unique_ptr<worker>>& workers() const noexcept { return workers_; }

    // Lets each thread finish what is queued, gives it `grace`, then stops it hard.
    void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(500)) {
        if (threads_.empty()) return;
        guards_.clear();
        auto deadline = clock::now() + grace;
        for (auto& w : workers_)
            while (!w->io.stopped() && clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        for (auto& w : workers_) w->io.stop();
        for (auto& t : threads_) t.join();
        threads_.clear();
    }

private:
    std::vector<std::unique_ptr<worker>> workers_;
    std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards_;
    std::vector<std::thread> threads_;
    std::size_t next_ = 0;
};

}  // namespace bench
