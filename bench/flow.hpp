#pragma once
// End-to-end flow control inside the generator. A publisher with a window may have at
// most that many messages on their way to its subscribers, i.e. not yet received by all
// of them. The subscribers are clients of this same process, so they tell the publisher
// directly (each payload names its publisher). Unlike the PUBACK window, which a broker
// opens as soon as it has queued a message, this also bounds the broker's queues: a
// publisher going as fast as it can then measures what the broker delivers, without
// piling messages up in it until latency is seconds and queues overflow.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>

namespace bench {

class flow_table {
public:
    // All publishers are added before any publishes; afterwards only the counters change.
    // `wake` runs on `ex`, the publisher's executor.
    std::uint32_t add(boost::asio::any_io_executor ex, std::function<void()> wake) {
        flows_.emplace_back(std::move(ex), std::move(wake));
        return static_cast<std::uint32_t>(flows_.size() - 1);
    }

    bool contains(std::uint32_t publisher) const noexcept { return publisher < flows_.size(); }

    // A subscriber received one of the publisher's messages.
    void delivered(std::uint32_t publisher) {
        auto& f = flows_[publisher];
        f.received.fetch_add(1);
        if (f.waiting.load() && f.waiting.exchange(false)) boost::asio::dispatch(f.ex, f.wake);
    }

    // Deliveries of the publisher's messages, summed over its subscribers.
    std::uint64_t received(std::uint32_t publisher) const { return flows_[publisher].received.load(); }

    // A publisher whose window is full asks to be woken by the next delivery, then checks
    // its window again before it waits (both sides sequentially consistent, so either it
    // sees the delivery or the delivery sees it waiting).
    void want_wake(std::uint32_t publisher) { flows_[publisher].waiting.store(true); }

private:
    struct flow {
        flow(boost::asio::any_io_executor e, std::function<void()> w) : ex(std::move(e)), wake(std::move(w)) {}
        boost::asio::any_io_executor ex;
        std::function<void()> wake;
        std::atomic<std::uint64_t> received{0};
        std::atomic<bool> waiting{false};
    };
    std::deque<flow> flows_;  // a deque: atomics can be neither moved nor copied
};

}  // namespace bench
