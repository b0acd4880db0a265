#pragma once
// How far the ack pointer (mqtt_acked.mid) of one offline-fetched subscription may move
// while its session lives: only past stored rows that were delivered and acknowledged.
//
// The backlog behind the pointer is fetched in pages, oldest first. A page is handed to
// the session queue, which keeps stored messages ahead of the live ones and never drops
// one to make room for a live one (session::enqueue_stored), so every row it took is
// delivered, in stored order. It takes the page whole, or its first rows when other
// subscriptions' stored messages fill it: the page then ends before the first row not
// taken. The pointer moves to the end of the page's acknowledged prefix, never past a
// row still unacknowledged. Once every row of a full (or cut) page is acknowledged the
// next page is fetched (from the pointer); after a page of which the queue took nothing,
// once the client acknowledges any message, which frees room. A page that is not full
// ends the backlog ("drained"); from then on any acknowledged message of the
// subscription moves the pointer, as before. While the backlog drains, acks of other
// (live) messages do not move it; the last one is remembered and applied once drained.
//
// Memory: the page's rows (a page is bounded by its caller) and one msgid.
// Not thread-safe: its owner serializes the calls.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mqttd::persistence {

class fetch_pointer {
public:
    struct row {
        std::int64_t id = 0;
        std::string msgid;
        bool needs_ack = true;  // false when delivered at QoS 0: no ack will come
    };

    // What the owner must do after a call.
    struct step {
        std::optional<std::int64_t> move_to;  // move the pointer forward to this row id
        std::string move_to_msgid;            // or to the row of this msgid (a live ack)
        bool fetch = false;                   // fetch a page from the pointer
    };

    // `fetching`: a first page is being fetched; otherwise nothing to drain (a resumed
    // session's subscription).
    explicit fetch_pointer(bool fetching = true) : phase_(fetching ? phase::fetching : phase::drained) {}

    // The rows of the page asked for (ordered by id); `full`: as many as asked, so more
    // may follow. `send` gets the indexes of the rows to deliver: all but those already
    // acknowledged from an earlier attempt at the same page.
    step page(std::vector<row> rows, bool full, std::vector<std::size_t>& send);
    // The session queue took the first `taken` of the rows page() gave to send.
    step handed_over(std::size_t taken, const std::vector<std::size_t>& send);
    // The client acknowledged a message the subscription matches.
    step ack(std::string_view msgid);
    // The client acknowledged a message the subscription does not match.
    step saw_ack();

    bool draining() const noexcept { return phase_ != phase::drained; }
    std::size_t page_size() const noexcept { return rows_.size(); }

private:
    enum class phase : std::uint8_t { fetching, delivering, drained };
    struct slot {
        std::int64_t id;
        std::string msgid;
        bool acked;
    };

    void advance(step& s);     // the pointer over the acknowledged prefix; the page's end
    void room_freed(step& s);  // an ack: the session queue has room again

    phase phase_;
    std::vector<slot> rows_;  // the page being read, by id
    std::size_t prefix_ = 0;  // rows_[0, prefix_) acknowledged, the pointer past them
    bool full_ = false;
    bool awaiting_room_ = false;  // the queue took none of the page: fetch it at the next ack
    std::string live_msgid_;  // the last live ack while draining
};

}  // namespace mqttd::persistence
