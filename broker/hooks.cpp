#include "broker/hooks.hpp"

#include <algorithm>

namespace mqttd {

template <class H>
hook_bus::handle hook_bus::attach(hookpoint p, H h) {
    std::lock_guard lock(mutex_);
    auto next = table_ ? std::make_shared<table>(*table_) : std::make_shared<table>();
    handle id = next_++;
    next->push_back({id, p, any_handler(std::move(h))});
    table_ = std::move(next);
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
}

bool hook_bus::has(hookpoint p) const {
    auto snapshot = load();
    return snapshot && std::any_of(snapshot->begin(), snapshot->end(), [p](const entry& e) { return e.point == p; });
}

}  // namespace mqttd
