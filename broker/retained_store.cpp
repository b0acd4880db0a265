#include "broker/retained_store.hpp"

#include <mutex>
#include <string>
#include <utility>

#include "broker/topic_tree.hpp"  // detail::next_level, detail::string_map

namespace mqttd {

struct retained_store::node {
    detail::string_map<std::unique_ptr<node>> children;
    message_ptr msg;
    expiry_index::iterator expiry;  // valid while msg has an expiry
};

namespace {

std::size_t weight(const message& m) noexcept { return m.topic.size() + m.payload.size(); }

}  // namespace

retained_store::retained_store(std::size_t max_messages)
    : root_(std::make_unique<node>()), max_messages_(max_messages) {}

retained_store::~retained_store() {
    // Iterative teardown: a client-controlled depth must not become recursion depth.
    std::vector<std::unique_ptr<node>> doomed;
    doomed.push_back(std::move(root_));
    while (!doomed.empty()) {
        auto n = std::move(doomed.back());
        doomed.pop_back();
        for (auto& child : n->children) doomed.push_back(std::move(child.second));
    }
}

bool retained_store::set(const message_ptr& msg) {
    if (msg->payload.empty()) {
        erase(msg->topic);
        return true;
    }
    const auto now = clock::now();
    std::unique_lock lock(mutex_);
    drop_expired_locked(now);  // before the bound check, so expired messages hold no room

    node* n = root_.get();
    for (std::size_t pos = 0; n && pos != std::string_view::npos;) {
        const auto it = n->children.find(detail::next_level(msg->topic, pos));
        n = it == n->children.end() ? nullptr : it->second.get();
    }
    if (n && n->msg) {
        bytes_ -= weight(*n->msg);
        if (n->msg->expires_at) expiring_.erase(n->expiry);
    } else {
        if (max_messages_ != 0 && size_ >= max_messages_) return false;
        n = root_.get();
        for (std::size_t pos = 0; pos != std::string_view::npos;) {
            const auto level = detail::next_level(msg->topic, pos);
            auto& slot = n->children[std::string(level)];
            if (!slot) {
                slot = std::make_unique<node>();
                ++nodes_;
            }
            n = slot.get();
        }
        ++size_;
    }
    n->msg = msg;
    bytes_ += weight(*msg);
    if (msg->expires_at) n->expiry = expiring_.emplace(*msg->expires_at, msg.get());
    return true;
}

void retained_store::erase(std::string_view topic) {
    const auto now = clock::now();
    std::unique_lock lock(mutex_);
    drop_expired_locked(now);
    erase_locked(topic);
}

std::vector<message_ptr> retained_store::match(std::string_view filter) const {
    struct step {
        const node* n;
        std::size_t pos;  // next filter level; npos: filter consumed
        bool subtree;     // under '#': n and everything beneath it match
    };
    constexpr auto end = std::string_view::npos;
    // Explicit stack: recursion would follow the stored topics' depth, which clients choose.
    thread_local std::vector<step> stack;
    stack.clear();
    std::vector<message_ptr> out;
    const auto now = clock::now();
    const auto emit = [&](const node& n) {
        if (n.msg && !(n.msg->expires_at && *n.msg->expires_at <= now)) out.push_back(n.msg);
    };

    std::shared_lock lock(mutex_);
    stack.push_back({root_.get(), 0, false});  // pos 0 is only ever the root
    while (!stack.empty()) {
        const auto [n, pos, subtree] = stack.back();
        stack.pop_back();
        if (subtree || pos == end) {
            emit(*n);
            if (subtree)
                for (const auto& child : n->children) stack.push_back({child.second.get(), end, true});
            continue;
        }
        const bool root = pos == 0;
        auto next = pos;
        const auto level = detail::next_level(filter, next);
        if (level == "#" || level == "+") {
            for (const auto& [key, child] : n->children) {
                // Wildcards in the first level do not match '$' topics [MQTT-4.7.2-1].
                if (root && key.starts_with('$')) continue;
                stack.push_back({child.get(), next, level == "#"});
            }
            // "a/#" matches "a" itself; the root holds no message, so skip it there.
            if (level == "#" && !root) emit(*n);
        } else if (const auto it = n->children.find(level); it != n->children.end()) {
            stack.push_back({it->second.get(), next, false});
        }
    }
    return out;
}

std::size_t retained_store::size() const {
    std::shared_lock lock(mutex_);
    return size_;
}

std::size_t retained_store::bytes() const {
    std::shared_lock lock(mutex_);
    return bytes_;
}

std::size_t retained_store::node_count() const {
    std::shared_lock lock(mutex_);
    return nodes_;
}

void retained_store::erase_locked(std::string_view topic) {
    std::vector<std::pair<node*, std::string_view>> path;  // (parent, level of child)
    node* n = root_.get();
    for (std::size_t pos = 0; n && pos != std::string_view::npos;) {
        const auto level = detail::next_level(topic, pos);
        path.emplace_back(n, level);
        const auto it = n->children.find(level);
        n = it == n->children.end() ? nullptr : it->second.get();
    }
    if (!n || !n->msg) return;
    // Kept alive to the end: topic may view this very message's topic.
    const message_ptr gone = std::move(n->msg);
    if (gone->expires_at) expiring_.erase(n->expiry);
    bytes_ -= weight(*gone);
    --size_;
    for (auto it = path.rbegin(); it != path.rend(); ++it) {
        auto child = it->first->children.find(it->second);
        if (child->second->msg || !child->second->children.empty()) break;
        it->first->children.erase(child);
        --nodes_;
    }
}

void retained_store::drop_expired_locked(clock::time_point now) {
    while (!expiring_.empty() && expiring_.begin()->first <= now)
        erase_locked(expiring_.begin()->second->topic);
}

}  // namespace mqttd
