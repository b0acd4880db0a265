#include "broker/hooks.hpp"

namespace mqttd {

template <class H>
hook_bus::handle hook_bus::attach(hookpoint p, H h) {
    std::lock_guard lock(mutex_);
    auto next = table_ ? std::make_shared<table>(*table_) : std::make_shared<table>();
    handle id = next_++;
    next->push_back({id, p, any_handler(std::move(h))});
    table_ = std::move(next);
    update_attached();
    return id;
}

template hook_bus::handle hook_bus::attach(hookpoint, client_handler);
template hook_bus::handle hook_bus::attach(hookpoint, subscription_handler);
template hook_bus::handle hook_bus::attach(hookpoint, publish_handler);
template hook_bus::handle hook_bus::attach(hookpoint, delivery_handler);
template hook_bus::handle hook_bus::attach(hookpoint, session_handler);

void hook_bus::detach(handle h) {
    std::lock_guard lock(mutex_);
    if (!table_) return;
    auto next = std::make_shared<table>(*table_);
    std::erase_if(*next, [h](const entry& e) { return e.id == h; });
    table_ = std::move(next);
    update_attached();
}

void hook_bus::update_attached() {
    std::uint32_t bits = 0;
    for (const auto& e : *table_) bits |= bit(e.point);
    attached_.store(bits, std::memory_order_release);
}

}  // namespace mqttd
