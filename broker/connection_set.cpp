#include "broker/connection_set.hpp"

#include <boost/asio/post.hpp>

#include "broker/connection.hpp"

namespace mqttd {

namespace asio = boost::asio;

connection_set::connection_set(asio::io_context& ctx) : ctx_(ctx), timer_(ctx) {}

void connection_set::add(std::shared_ptr<connection> c) {
    c->set_index_ = members_.size();
    members_.push_back(std::move(c));
    count_.store(members_.size(), std::memory_order_relaxed);
}

void connection_set::remove(connection& c) {
    const auto i = c.set_index_;
    if (i >= members_.size() || members_[i].get() != &c) return;
    auto gone = std::move(members_[i]);  // destroyed last, after the set is consistent
    if (i + 1 != members_.size()) {
        members_[i] = std::move(members_.back());
        members_[i]->set_index_ = i;
    }
    members_.pop_back();
    count_.store(members_.size(), std::memory_order_relaxed);
}

void connection_set::start() {
    asio::post(ctx_, [this] { arm(); });
}

void connection_set::stop() {
    asio::post(ctx_, [this] {
        stopped_ = true;
        timer_.cancel();
    });
}

void connection_set::shutdown_all() {
    asio::post(ctx_, [this] {
        auto all = members_;
        for (auto& c : all) c->shutdown_now();
    });
}

void connection_set::arm() {
    if (stopped_) return;
    timer_.expires_after(sweep_interval);
    timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        sweep();
        arm();
    });
}

void connection_set::sweep() {
    const auto now = std::chrono::steady_clock::now();
    // Acting on a connection may remove it from the set: collect first.
    std::vector<std::shared_ptr<connection>> due;
    for (auto& c : members_)
        if (now >= c->deadline()) due.push_back(c);
    for (auto& c : due) c->on_deadline(now);
}

}  // namespace mqttd
