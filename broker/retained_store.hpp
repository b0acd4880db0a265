#pragma once
// Retained messages (spec 3.3.1.3) in a trie of topic levels: a filter walks only the
// branches it can match, so a lookup with a literal prefix never scans the whole store.
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string_view>
#include <vector>

#include "broker/message.hpp"

namespace mqttd {

class retained_store {
public:
    // max_messages: how many topics may hold a retained message; 0 = unlimited.
    explicit retained_store(std::size_t max_messages = 0);
    ~retained_store();
    retained_store(const retained_store&) = delete;
    retained_store& operator=(const retained_store&) = delete;

    // Makes msg its topic's retained message; an empty payload deletes it instead.
    // False, and nothing stored, if the topic is new and the store is full.
    bool set(const message_ptr& msg);
    void erase(std::string_view topic);
    // Retained messages whose topic matches filter, '$' rule included, expired ones left out.
    std::vector<message_ptr> match(std::string_view filter) const;

    // Expired messages still count until the next set or erase drops them.
    std::size_t size() const;
    std::size_t bytes() const;  // topic + payload bytes
    std::size_t node_count() const;  // trie nodes including the root

private:
    struct node;
    using clock = std::chrono::steady_clock;
    // Messages that expire, soonest first, so dropping them never scans the store.
    using expiry_index = std::multimap<clock::time_point, const message*>;

    void erase_locked(std::string_view topic);
    void drop_expired_locked(clock::time_point now);

    mutable std::shared_mutex mutex_;
    std::unique_ptr<node> root_;
    expiry_index expiring_;
    std::size_t max_messages_;
    std::size_t size_ = 0;
    std::size_t bytes_ = 0;
    std::size_t nodes_ = 1;
};

}  // namespace mqttd
