#include "broker/session.hpp"

#include <utility>

namespace mqttd {

namespace {

std::size_t cost(const outgoing& o) { return o.msg->payload.size() + o.msg->topic.size(); }

bool expired(const outgoing& o, std::chrono::steady_clock::time_point now) {
    return o.msg->expires_at && *o.msg->expires_at <= now;
}

// Below any attached session's room, however long its queue.
constexpr std::int64_t detached_room = -(std::int64_t{1} << 40);

}  // namespace

session::session(std::string clientid, session_limits limits)
    : clientid_(std::move(clientid)), limits_(limits), window_(limits.max_inflight), room_(detached_room) {}

void session::update_room() {
    const auto backlog = static_cast<std::int64_t>(inflight_.size() + queue_.size());
    room_.store((attached_ ? std::int64_t{window_} : detached_room) - backlog, std::memory_order_relaxed);
}

std::uint64_t session::attach(std::weak_ptr<session_owner> owner) {
    std::lock_guard lock(mutex_);
    owner_ = std::move(owner);
    attached_ = true;
    update_room();
    return ++generation_;
}

bool session::detach(std::uint64_t generation) {
    std::lock_guard lock(mutex_);
    if (generation != generation_ || !attached_) return false;
    attached_ = false;
    owner_.reset();
    update_room();
    return true;
}

void session::mark_ended() {
    std::lock_guard lock(mutex_);
    ended_ = true;
}

bool session::ended() const {
    std::lock_guard lock(mutex_);
    return ended_;
}

bool session::attached() const {
    std::lock_guard lock(mutex_);
    return attached_;
}

std::weak_ptr<session_owner> session::owner() const {
    std::lock_guard lock(mutex_);
    return owner_;
}

std::uint64_t session::generation() const {
    std::lock_guard lock(mutex_);
    return generation_;
}

void session::set_expiry(std::uint32_t seconds) {
    std::lock_guard lock(mutex_);
    expiry_ = seconds;
}

std::uint32_t session::expiry() const {
    std::lock_guard lock(mutex_);
    return expiry_;
}

void session::set_will(message_ptr will) {
    std::lock_guard lock(mutex_);
    will_ = std::move(will);
}

message_ptr session::take_will() {
    std::lock_guard lock(mutex_);
    return std::exchange(will_, nullptr);
}

void session::wake_owner(std::unique_lock<std::mutex>& lock) {
    auto owner = owner_;
    lock.unlock();
    if (auto o = owner.lock()) o->wake();
}

bool session::make_room(std::size_t bytes) {
    while (queue_.size() >= limits_.max_queue_len || queue_bytes_ + bytes > limits_.max_queue_bytes) {
        if (queue_.size() == stored_) return false;
        const auto oldest_live = queue_.begin() + static_cast<std::ptrdiff_t>(stored_);
        queue_bytes_ -= cost(*oldest_live);
        queue_.erase(oldest_live);
        ++drops_.queue_overflow;
    }
    return true;
}

void session::pop_front() {
    queue_.pop_front();
    if (stored_ > 0) --stored_;
}

void session::enqueue(outgoing o) {
    std::unique_lock lock(mutex_);
    if (!attached_ && o.qos == mqtt::qos::at_most_once && !limits_.queue_qos0) {
        ++drops_.qos0_dropped;
        return;
    }
    const auto bytes = cost(o);
    if (limits_.max_queue_len == 0 || bytes > limits_.max_queue_bytes) {  // can never fit
        ++(o.qos == mqtt::qos::at_most_once ? drops_.qos0_dropped : drops_.queue_overflow);
        return;
    }
    if (o.qos == mqtt::qos::at_most_once &&
        (queue_.size() >= limits_.max_queue_len || queue_bytes_ + bytes > limits_.max_queue_bytes)) {
        ++drops_.qos0_dropped;
        return;
    }
    // Stored messages queued are older than this one and go first [MQTT-4.6.0-5, -6]: a
    // queue holding only those drops it, as if it had come a little later.
    if (!make_room(bytes)) {
        ++drops_.queue_overflow;
        return;
    }
    queue_bytes_ += bytes;
    queue_.push_back(std::move(o));
    update_room();
    // With the window full the owner could take nothing now; the acknowledgement that
    // frees a slot makes it take again. Waking it would only cost a cross-thread post.
    if (queue_.front().qos != mqtt::qos::at_most_once && inflight_.size() >= window_) return;
    wake_owner(lock);
}

std::size_t session::enqueue_stored(std::vector<outgoing> page) {
    std::unique_lock lock(mutex_);
    std::size_t taken = 0;
    for (auto& o : page) {
        const auto bytes = cost(o);
        if (!attached_ && o.qos == mqtt::qos::at_most_once && !limits_.queue_qos0) {
            ++drops_.qos0_dropped;
        } else if (limits_.max_queue_len == 0 || bytes > limits_.max_queue_bytes) {  // can never fit
            ++(o.qos == mqtt::qos::at_most_once ? drops_.qos0_dropped : drops_.queue_overflow);
        } else if (!make_room(bytes)) {
            // Dropping a stored message queued would send it after this one, once fetched
            // again; the rest of the page comes once those are acknowledged.
            break;
        } else {
            // Behind the stored messages queued (earlier pages, or other filters') and
            // ahead of every live one, which was published after them: per topic, the
            // order in which they were received [MQTT-4.6.0-5, -6].
            queue_bytes_ += bytes;
            queue_.insert(queue_.begin() + static_cast<std::ptrdiff_t>(stored_), std::move(o));
            ++stored_;
        }
        ++taken;
    }
    update_room();
    if (queue_.empty() || (queue_.front().qos != mqtt::qos::at_most_once && inflight_.size() >= window_))
        return taken;
    wake_owner(lock);
    return taken;
}

std::uint16_t session::next_packet_id() {
    for (;;) {
        last_packet_id_ = static_cast<std::uint16_t>(last_packet_id_ == 65535 ? 1 : last_packet_id_ + 1);
        if (!inflight_by_id_ || !inflight_by_id_->contains(last_packet_id_)) return last_packet_id_;
    }
}

void session::take(std::uint64_t generation, std::uint16_t window, std::size_t max_count,
                   std::vector<publish_out>& out) {
    std::lock_guard lock(mutex_);
    if (generation != generation_ || !attached_) return;
    window_ = window;
    const auto now = std::chrono::steady_clock::now();
    std::size_t taken = 0;
    while (!queue_.empty() && taken < max_count) {
        auto& front = queue_.front();
        if (expired(front, now)) {
            queue_bytes_ -= cost(front);
            pop_front();
            ++drops_.expired;
            continue;
        }
        if (front.qos != mqtt::qos::at_most_once &&
            (inflight_.size() >= window || inflight_.size() >= 65535))
            break;
        outgoing o = std::move(front);
        queue_bytes_ -= cost(o);
        pop_front();
        std::uint16_t id = 0;
        if (o.qos != mqtt::qos::at_most_once) {
            id = next_packet_id();
            auto state = o.qos == mqtt::qos::at_least_once ? await_state::puback : await_state::pubrec;
            inflight_.push_back({id, state, o});
            if (!inflight_by_id_) inflight_by_id_ = std::make_unique<inflight_index>();
            (*inflight_by_id_)[id] = std::prev(inflight_.end());
        }
        out.push_back({std::move(o), id, false});
        ++taken;
    }
    update_room();
}

void session::in_flight(std::vector<publish_out>& publishes, std::vector<std::uint16_t>& pubrels) const {
    std::lock_guard lock(mutex_);
    for (const auto& e : inflight_) {
        if (e.state == await_state::pubcomp)
            pubrels.push_back(e.packet_id);
        else
            publishes.push_back({e.out, e.packet_id, true});
    }
}

message_ptr session::puback(std::uint16_t id) {
    std::lock_guard lock(mutex_);
    if (!inflight_by_id_) return {};
    auto it = inflight_by_id_->find(id);
    if (it == inflight_by_id_->end() || it->second->state != await_state::puback) return nullptr;
    auto msg = it->second->out.msg;
    inflight_.erase(it->second);
    inflight_by_id_->erase(it);
    update_room();
    return msg;
}

message_ptr session::pubrec(std::uint16_t id) {
    std::lock_guard lock(mutex_);
    if (!inflight_by_id_) return {};
    auto it = inflight_by_id_->find(id);
    if (it == inflight_by_id_->end() || it->second->state != await_state::pubrec) return nullptr;
    it->second->state = await_state::pubcomp;
    return it->second->out.msg;
}

std::optional<session::await_state> session::awaiting(std::uint16_t id) const {
    std::lock_guard lock(mutex_);
    if (!inflight_by_id_) return std::nullopt;
    auto it = inflight_by_id_->find(id);
    if (it == inflight_by_id_->end()) return std::nullopt;
    return it->second->state;
}

message_ptr session::pubcomp(std::uint16_t id) {
    std::lock_guard lock(mutex_);
    if (!inflight_by_id_) return nullptr;
    auto it = inflight_by_id_->find(id);
    if (it == inflight_by_id_->end() || it->second->state != await_state::pubcomp) return nullptr;
    auto msg = std::move(it->second->out.msg);
    inflight_.erase(it->second);
    inflight_by_id_->erase(it);
    update_room();
    return msg;
}

std::vector<outgoing> session::take_shared_unacked(const std::function<bool(const std::string&)>& movable) {
    std::vector<outgoing> out;
    std::lock_guard lock(mutex_);
    auto take = [&](const outgoing& o) {
        return o.qos != mqtt::qos::at_most_once && !o.share_filter.empty() && movable(o.share_filter);
    };
    for (auto it = inflight_.begin(); it != inflight_.end();) {
        // A QoS 2 message once sent is completed with this client [MQTT-4.3.3, 4.8.2]:
        // it may have received it. A QoS 1 message may come twice.
        if (it->state != await_state::puback || !take(it->out)) {
            ++it;
            continue;
        }
        out.push_back(std::move(it->out));
        inflight_by_id_->erase(it->packet_id);
        it = inflight_.erase(it);
    }
    // Stored messages have no share filter (no offline fetch for shared subscriptions):
    // the queue's first stored_ stay.
    queue_.extract_if(take, [&](outgoing&& o) {
        queue_bytes_ -= cost(o);
        out.push_back(std::move(o));
    });
    update_room();
    return out;
}

session::incoming_qos2 session::begin_incoming_qos2(std::uint16_t id, std::size_t max_awaiting,
                                                    std::chrono::milliseconds timeout, ack_gate_ptr& gate) {
    std::lock_guard lock(mutex_);
    if (!incoming_qos2_) incoming_qos2_ = std::make_unique<incoming_qos2_table>();
    if (auto it = incoming_qos2_->find(id); it != incoming_qos2_->end()) {
        gate = it->second.gate;
        return incoming_qos2::duplicate;
    }
    const auto now = std::chrono::steady_clock::now();
    if (max_awaiting != 0 && incoming_qos2_->size() >= max_awaiting)
        std::erase_if(*incoming_qos2_, [&](const auto& e) {
            // One not yet answered may still be stored, and its resend must wait for that.
            return now - e.second.arrival >= timeout && e.second.gate->is_open();
        });
    if (max_awaiting != 0 && incoming_qos2_->size() >= max_awaiting) return incoming_qos2::too_many;
    incoming_qos2_->emplace(id, incoming_entry{now, gate});
    return incoming_qos2::fresh;
}

bool session::release_incoming_qos2(std::uint16_t id) {
    std::lock_guard lock(mutex_);
    return incoming_qos2_ && incoming_qos2_->erase(id) > 0;
}

std::size_t session::incoming_qos2_count() const {
    std::lock_guard lock(mutex_);
    return incoming_qos2_ ? incoming_qos2_->size() : 0;
}

void session::remember_subscription(const std::string& filter, const mqtt::subscribe_options& o, std::uint32_t sub_id) {
    std::lock_guard lock(mutex_);
    subscriptions_[filter] = {o, sub_id};
}

bool session::forget_subscription(const std::string& filter) {
    std::lock_guard lock(mutex_);
    return subscriptions_.erase(filter) > 0;
}

std::map<std::string, session::stored_subscription> session::subscriptions() const {
    std::lock_guard lock(mutex_);
    return subscriptions_;
}

std::size_t session::queued() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
}

std::size_t session::inflight_count() const {
    std::lock_guard lock(mutex_);
    return inflight_.size();
}

drop_counters session::drops() const {
    std::lock_guard lock(mutex_);
    return drops_;
}

}  // namespace mqttd
