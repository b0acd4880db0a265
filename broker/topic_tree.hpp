#pragma once
// The subscription index: a trie of filter levels walked level by level against a topic,
// so a match costs the topic's depth plus the subscriptions it finds, however many exist.
// A shared subscription ($share/{group}/{filter}) lives at its filter's node as one
// group per (group, filter), whose members take its messages in turn, skipping those
// with no room (see choose).
//
// Filters are taken as already validated (mqtt::valid_topic_filter); Subscriber is a
// copyable handle, hashable with std::hash and equality-comparable.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "protocol/packet.hpp"

namespace mqttd {

template <class Subscriber>
struct match_result {
    Subscriber subscriber;
    mqtt::subscribe_options options;
    std::uint32_t subscription_id = 0;  // 0: none
    std::string filter;                 // as subscribed, "$share/{group}/" included
    std::string share_group;            // "" unless shared
};

namespace detail {

// Transparent hashing: string_view lookups need no temporary std::string.
struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <class V>
using string_map = std::unordered_map<std::string, V, string_hash, std::equal_to<>>;
using string_set = std::unordered_set<std::string, string_hash, std::equal_to<>>;

// The level starting at pos; pos moves past it, to npos after the last level.
// Empty levels are levels: "/a" gives "" then "a".
inline std::string_view next_level(std::string_view s, std::size_t& pos) noexcept {
    const auto slash = s.find('/', pos);
    const auto level = s.substr(pos, slash == std::string_view::npos ? slash : slash - pos);
    pos = slash == std::string_view::npos ? slash : slash + 1;
    return level;
}

// {group, filter} of "$share/{group}/{filter}"; group is "" for an ordinary filter.
inline std::pair<std::string_view, std::string_view> split_shared(std::string_view filter) noexcept {
    constexpr std::string_view prefix = "$share/";
    if (!filter.starts_with(prefix)) return {{}, filter};
    const auto rest = filter.substr(prefix.size());
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos) return {{}, filter};
    return {rest.substr(0, slash), rest.substr(slash + 1)};
}

}  // namespace detail

template <class Subscriber>
class topic_tree {
public:
    topic_tree() = default;
    topic_tree(const topic_tree&) = delete;
    topic_tree& operator=(const topic_tree&) = delete;

    ~topic_tree() {
        // Iterative teardown: a client-controlled depth must not become recursion depth.
        std::vector<std::unique_ptr<node>> doomed;
        adopt_children(root_, doomed);
        while (!doomed.empty()) {
            auto n = std::move(doomed.back());
            doomed.pop_back();
            adopt_children(*n, doomed);
        }
    }

    // True if it replaced this subscriber's subscription to the same filter.
    bool subscribe(const Subscriber& s, std::string_view filter, mqtt::subscribe_options options,
                   std::uint32_t subscription_id) {
        const auto [group_name, inner] = detail::split_shared(filter);
        const entry e{options, subscription_id};
        std::unique_lock lock(mutex_);
        node* n = &root_;
        for (std::size_t pos = 0; pos != std::string_view::npos;) {
            auto& slot = child_slot(*n, detail::next_level(inner, pos));
            if (!slot) {
                slot = std::make_unique<node>();
                ++nodes_;
            }
            n = slot.get();
        }
        bool replaced;
        if (group_name.empty()) {
            if (n->filter.empty()) n->filter = filter;
            replaced = !n->subscribers.insert_or_assign(s, e).second;
        } else {
            auto [git, created] = n->groups.try_emplace(std::string(group_name));
            group& g = git->second;
            if (created) g.filter = filter;
            auto [iit, inserted] = g.index.try_emplace(s, g.members.size());
            if (inserted) g.members.push_back({s, e});
            else g.members[iit->second].e = e;
            replaced = !inserted;
        }
        if (!replaced) {
            by_subscriber_[s].emplace(filter);
            ++size_;
        }
        return replaced;
    }

    // True if the subscription existed.
    bool unsubscribe(const Subscriber& s, std::string_view filter) {
        std::unique_lock lock(mutex_);
        auto sit = by_subscriber_.find(s);
        if (sit == by_subscriber_.end()) return false;
        auto fit = sit->second.find(filter);
        if (fit == sit->second.end()) return false;
        remove_locked(s, filter);
        sit->second.erase(fit);
        if (sit->second.empty()) by_subscriber_.erase(sit);
        return true;
    }

    // Costs this subscriber's subscriptions times their depth, not the tree's size.
    void unsubscribe_all(const Subscriber& s) {
        std::unique_lock lock(mutex_);
        auto sit = by_subscriber_.find(s);
        if (sit == by_subscriber_.end()) return;
        for (const auto& filter : sit->second) remove_locked(s, filter);
        by_subscriber_.erase(sit);
    }

    // Appends one entry per matching ordinary subscription and one member per matching
    // shared group, chosen by `room` (see choose). Overlaps are not merged here (see
    // aggregate).
    template <class Room>
    void match(std::string_view topic, std::vector<match_result<Subscriber>>& out, Room&& room) const {
        constexpr auto end = std::string_view::npos;
        const bool dollar = topic.starts_with('$');
        // Explicit stack: recursion would follow the topic's depth, which clients choose.
        thread_local std::vector<std::pair<const node*, std::size_t>> stack;
        stack.clear();
        std::shared_lock lock(mutex_);
        stack.emplace_back(&root_, 0);  // pos 0 is only ever the root
        while (!stack.empty()) {
            auto [n, pos] = stack.back();
            stack.pop_back();
            // Wildcards in the first level do not match '$' topics [MQTT-4.7.2-1].
            const bool wildcards = pos != 0 || !dollar;
            if (n->hash && wildcards) collect(*n->hash, out, room);  // '#' matches the parent too
            if (pos == end) {
                collect(*n, out, room);
                continue;
            }
            const auto level = detail::next_level(topic, pos);
            if (n->plus && wildcards) stack.emplace_back(n->plus.get(), pos);
            if (auto it = n->children.find(level); it != n->children.end())
                stack.emplace_back(it->second.get(), pos);
        }
    }

    // Shared groups in plain round robin.
    void match(std::string_view topic, std::vector<match_result<Subscriber>>& out) const {
        match(topic, out, every_member_has_room);
    }

    // Members of the shared subscription (group, filter); filter without "$share/{group}/".
    std::vector<Subscriber> shared_members(std::string_view group_name, std::string_view filter) const {
        std::shared_lock lock(mutex_);
        std::vector<Subscriber> out;
        if (const group* g = find_group(group_name, filter)) {
            out.reserve(g->members.size());
            for (const auto& m : g->members) out.push_back(m.subscriber);
        }
        return out;
    }

    // The member of the shared subscription (group, filter) that `accept` takes, chosen by
    // `room` among those (see choose); nullopt if there is none.
    template <class Accept, class Room>
    std::optional<match_result<Subscriber>> pick_shared(std::string_view group_name, std::string_view filter,
                                                        Accept&& accept, Room&& room) const {
        std::shared_lock lock(mutex_);
        const group* g = find_group(group_name, filter);
        if (!g) return std::nullopt;
        const member* m = choose(*g, accept, room);
        if (!m) return std::nullopt;
        return match_result<Subscriber>{m->subscriber, m->e.options, m->e.id, g->filter, std::string(group_name)};
    }

    // The next member in round-robin order that `accept` takes.
    template <class Accept>
    std::optional<match_result<Subscriber>> pick_shared(std::string_view group_name, std::string_view filter,
                                                        Accept&& accept) const {
        return pick_shared(group_name, filter, accept, every_member_has_room);
    }

    // Number of (subscriber, filter) subscriptions.
    std::size_t size() const {
        std::shared_lock lock(mutex_);
        return size_;
    }

    // Trie nodes including the root: returns to its old value once churn is undone.
    std::size_t node_count() const {
        std::shared_lock lock(mutex_);
        return nodes_;
    }

private:
    struct entry {
        mqtt::subscribe_options options;
        std::uint32_t id;
    };
    struct member {
        Subscriber subscriber;
        entry e;
    };
    struct group {
        std::string filter;  // "$share/{group}/{filter}"
        std::vector<member> members;
        std::unordered_map<Subscriber, std::size_t> index;  // position in members
        mutable std::atomic<std::size_t> next{0};            // advanced under the shared lock
    };
    struct node {
        detail::string_map<std::unique_ptr<node>> children;
        std::unique_ptr<node> plus, hash;
        std::string filter;  // the ordinary filter ending here, once subscribed to
        std::unordered_map<Subscriber, entry> subscribers;
        detail::string_map<group> groups;

        bool empty() const noexcept {
            return subscribers.empty() && groups.empty() && children.empty() && !plus && !hash;
        }
    };

    static constexpr auto every_member_has_room = [](const Subscriber&) { return std::int64_t{1}; };

    // Round robin that passes over a member without room: from the group's cursor, the
    // first member `accept` takes whose room (how many more messages it could be sent
    // now) is positive; when none has any, the one with the most (the shortest backlog),
    // the earliest in that order among equals. A member that falls behind thus stops
    // getting its share until it catches up, instead of holding the messages queued
    // behind it while the others wait idle. Null if `accept` takes none.
    template <class Accept, class Room>
    static const member* choose(const group& g, Accept&& accept, Room&& room) {
        const auto n = g.members.size();
        const auto start = g.next.fetch_add(1, std::memory_order_relaxed);
        const member* best = nullptr;
        std::int64_t best_room = 0;
        for (std::size_t k = 0; k < n; ++k) {
            const member& m = g.members[(start + k) % n];
            if (!accept(m.subscriber)) continue;
            const std::int64_t r = room(m.subscriber);
            if (r > 0) return &m;
            if (!best || r > best_room) {
                best = &m;
                best_room = r;
            }
        }
        return best;
    }

    template <class Room>
    static void collect(const node& n, std::vector<match_result<Subscriber>>& out, Room& room) {
        for (const auto& [s, e] : n.subscribers) out.push_back({s, e.options, e.id, n.filter, {}});
        for (const auto& [name, g] : n.groups) {
            const member* m = choose(g, [](const Subscriber&) { return true; }, room);
            out.push_back({m->subscriber, m->e.options, m->e.id, g.filter, name});
        }
    }

    static std::unique_ptr<node>& child_slot(node& n, std::string_view level) {
        if (level == "+") return n.plus;
        if (level == "#") return n.hash;
        auto it = n.children.find(level);
        if (it == n.children.end()) it = n.children.emplace(std::string(level), nullptr).first;
        return it->second;
    }

    static node* find_child(const node& n, std::string_view level) {
        if (level == "+") return n.plus.get();
        if (level == "#") return n.hash.get();
        const auto it = n.children.find(level);
        return it == n.children.end() ? nullptr : it->second.get();
    }

    void erase_child(node& n, std::string_view level) {
        if (level == "+") n.plus.reset();
        else if (level == "#") n.hash.reset();
        else n.children.erase(n.children.find(level));
        --nodes_;
    }

    const group* find_group(std::string_view group_name, std::string_view filter) const {
        const node* n = &root_;
        for (std::size_t pos = 0; n && pos != std::string_view::npos;)
            n = find_child(*n, detail::next_level(filter, pos));
        if (!n) return nullptr;
        const auto it = n->groups.find(group_name);
        return it == n->groups.end() ? nullptr : &it->second;
    }

    static bool remove_member(node& n, std::string_view group_name, const Subscriber& s) {
        const auto git = n.groups.find(group_name);
        if (git == n.groups.end()) return false;
        group& g = git->second;
        const auto it = g.index.find(s);
        if (it == g.index.end()) return false;
        const auto i = it->second;
        g.index.erase(it);
        if (i + 1 != g.members.size()) {  // swap-remove keeps members dense for round robin
            g.members[i] = std::move(g.members.back());
            g.index[g.members[i].subscriber] = i;
        }
        g.members.pop_back();
        if (g.members.empty()) n.groups.erase(git);
        return true;
    }

    // Removes one subscription known to the reverse index, then prunes emptied nodes.
    void remove_locked(const Subscriber& s, std::string_view filter) {
        const auto [group_name, inner] = detail::split_shared(filter);
        std::vector<std::pair<node*, std::string_view>> path;  // (parent, level of child)
        node* n = &root_;
        for (std::size_t pos = 0; n && pos != std::string_view::npos;) {
            const auto level = detail::next_level(inner, pos);
            path.emplace_back(n, level);
            n = find_child(*n, level);
        }
        if (!n) return;
        const bool removed = group_name.empty() ? n->subscribers.erase(s) > 0 : remove_member(*n, group_name, s);
        if (!removed) return;
        --size_;
        for (auto it = path.rbegin(); it != path.rend(); ++it) {
            if (!find_child(*it->first, it->second)->empty()) break;
            erase_child(*it->first, it->second);
        }
    }

    static void adopt_children(node& n, std::vector<std::unique_ptr<node>>& into) {
        for (auto& child : n.children) into.push_back(std::move(child.second));
        if (n.plus) into.push_back(std::move(n.plus));
        if (n.hash) into.push_back(std::move(n.hash));
    }

    mutable std::shared_mutex mutex_;
    node root_;
    std::unordered_map<Subscriber, detail::string_set> by_subscriber_;  // reverse index
    std::size_t size_ = 0;
    std::size_t nodes_ = 1;
};

// One subscriber's overlapping ordinary subscriptions, merged for a single delivery
// (MQTT 5 3.3.4), or one shared-group pick left as it is.
template <class Subscriber>
struct delivery {
    Subscriber subscriber;
    mqtt::subscribe_options options;
    std::vector<std::uint32_t> subscription_ids;  // every non-zero identifier, match order
    std::string share_group;                      // "" for merged ordinary subscriptions
    std::string filter;                           // shared: as subscribed; merged: ""
};

// Merges ordinary matches per subscriber: max_qos is the highest; subscription ids are
// all of them; no_local holds only if every matching subscription set it, and
// retain_as_published if any did, so no subscription loses a message or the retain flag
// it asked for. The router should drop no_local matches for the publisher's own session
// before merging, which makes the combined no_local exact. retain_handling only matters
// when subscribing and is the first match's. Shared-group picks stay separate entries.
template <class Subscriber>
std::vector<delivery<Subscriber>> aggregate(std::vector<match_result<Subscriber>> matches) {
    std::vector<delivery<Subscriber>> out;
    out.reserve(matches.size());
    std::unordered_map<Subscriber, std::size_t> merged;  // subscriber -> its entry in out
    for (auto& m : matches) {
        std::vector<std::uint32_t> ids;
        if (m.subscription_id != 0) ids.push_back(m.subscription_id);
        if (!m.share_group.empty()) {
            out.push_back({std::move(m.subscriber), m.options, std::move(ids), std::move(m.share_group),
                           std::move(m.filter)});
            continue;
        }
        const auto [it, fresh] = merged.try_emplace(m.subscriber, out.size());
        if (fresh) {
            out.push_back({std::move(m.subscriber), m.options, std::move(ids), {}, {}});
            continue;
        }
        auto& d = out[it->second];
        d.options.max_qos = std::max(d.options.max_qos, m.options.max_qos);
        d.options.no_local = d.options.no_local && m.options.no_local;
        d.options.retain_as_published = d.options.retain_as_published || m.options.retain_as_published;
        if (m.subscription_id != 0) d.subscription_ids.push_back(m.subscription_id);
    }
    return out;
}

}  // namespace mqttd
