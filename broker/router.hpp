#pragma once
// Routing: a published message to every matching subscription, one copy per session at
// the highest matching QoS; one member per shared-subscription group, one with room in its
// send window if there is one.
#include <atomic>
#include <cstdint>

#include "broker/message.hpp"
#include "broker/session.hpp"
#include "broker/stats.hpp"
#include "broker/topic_tree.hpp"

namespace mqttd {

class router {
public:
    router(topic_tree<session_ptr>& tree, stats& counters) : tree_(tree), stats_(counters) {}

    // `publisher` is the publishing session (for No Local), or null.
    // Returns how many sessions the message was queued for.
    std::size_t route(const message_ptr& m, const session* publisher);

private:
    topic_tree<session_ptr>& tree_;
    stats& stats_;
};

// What a shared subscription weighs its members by (topic_tree's choose).
inline std::int64_t member_room(const session_ptr& s) { return s->room(); }

// The delivery of one message to one subscription: QoS downgraded to the subscription's
// maximum; RETAIN kept only with Retain As Published (live messages are not retained).
// `share_filter` names the shared subscription that chose this session, if one did.
outgoing make_outgoing(const message_ptr& m, const mqtt::subscribe_options& o, std::vector<std::uint32_t> sub_ids,
                       std::string share_filter = {});

}  // namespace mqttd
