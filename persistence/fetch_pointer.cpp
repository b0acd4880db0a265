#include "persistence/fetch_pointer.hpp"

namespace mqttd::persistence {

fetch_pointer::step fetch_pointer::page(std::vector<row> rows, bool full, std::vector<std::size_t>& send) {
    // Rows acknowledged in an earlier attempt at this page (both lists ordered by id).
    std::vector<slot> next;
    next.reserve(rows.size());
    std::size_t old = 0;
    send.clear();
    for (std::size_t i = 0; i < rows.size(); ++i) {
        auto& r = rows[i];
        while (old < rows_.size() && rows_[old].id < r.id) ++old;
        const bool acked = !r.needs_ack || (old < rows_.size() && rows_[old].id == r.id && rows_[old].acked);
        if (!acked) send.push_back(i);
        next.push_back({r.id, std::move(r.msgid), acked});
    }
    rows_ = std::move(next);
    prefix_ = 0;
    full_ = full;
    awaiting_room_ = false;
    phase_ = phase::delivering;
    step s;
    advance(s);
    return s;
}

fetch_pointer::step fetch_pointer::handed_over(std::size_t taken, const std::vector<std::size_t>& send) {
    step s;
    if (phase_ != phase::delivering || taken >= send.size()) return s;
    // The rows not taken come again, after those taken: in stored order.
    rows_.resize(send[taken]);
    full_ = true;
    awaiting_room_ = taken == 0;
    advance(s);
    return s;
}

fetch_pointer::step fetch_pointer::ack(std::string_view msgid) {
    step s;
    // Acks come in order: the row is usually the first unacknowledged one.
    for (std::size_t i = prefix_; i < rows_.size(); ++i) {
        if (rows_[i].msgid != msgid) continue;
        if (!rows_[i].acked) {
            rows_[i].acked = true;
            advance(s);
        }
        return s;
    }
    if (phase_ == phase::drained) {
        s.move_to_msgid = msgid;
        return s;
    }
    live_msgid_ = msgid;
    room_freed(s);
    return s;
}

fetch_pointer::step fetch_pointer::saw_ack() {
    step s;
    room_freed(s);
    return s;
}

void fetch_pointer::advance(step& s) {
    const auto before = prefix_;
    while (prefix_ < rows_.size() && rows_[prefix_].acked) ++prefix_;
    if (prefix_ > before) s.move_to = rows_[prefix_ - 1].id;
    if (phase_ != phase::delivering || prefix_ < rows_.size()) return;
    if (full_) {
        if (awaiting_room_) return;
        phase_ = phase::fetching;
        s.fetch = true;
        return;
    }
    phase_ = phase::drained;
    s.move_to_msgid = std::move(live_msgid_);
    live_msgid_.clear();
    rows_ = {};
    prefix_ = 0;
}

void fetch_pointer::room_freed(step& s) {
    if (!awaiting_room_) return;
    awaiting_room_ = false;
    phase_ = phase::fetching;
    s.fetch = true;
}

}  // namespace mqttd::persistence
