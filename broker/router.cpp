#include "broker/router.hpp"

namespace mqttd {

outgoing make_outgoing(const message_ptr& m, const mqtt::subscribe_options& o, std::vector<std::uint32_t> sub_ids,
                       std::string share_filter) {
    return {m, std::min(m->qos, o.max_qos), o.retain_as_published && m->retain, std::move(sub_ids),
            std::move(share_filter)};
}

std::size_t router::route(const message_ptr& m, const session* publisher) {
    thread_local std::vector<match_result<session_ptr>> matches;
    matches.clear();
    tree_.match(m->topic, matches, member_room);
    // No Local [MQTT-3.8.3-3]: not back to the publisher's own session.
    if (publisher) {
        std::erase_if(matches, [publisher](const auto& r) { return r.options.no_local && r.subscriber.get() == publisher; });
    }
    if (matches.empty()) {
        stats::bump(stats_.messages_dropped);
        return 0;
    }
    if (matches.size() == 1) {  // the common point-to-point case needs no merging
        auto& r = matches.front();
        std::vector<std::uint32_t> ids;
        if (r.subscription_id) ids.push_back(r.subscription_id);
        r.subscriber->enqueue(
            make_outgoing(m, r.options, std::move(ids), r.share_group.empty() ? std::string() : std::move(r.filter)));
        return 1;
    }
    auto deliveries = aggregate(std::move(matches));
    for (auto& d : deliveries)
        d.subscriber->enqueue(make_outgoing(m, d.options, std::move(d.subscription_ids), std::move(d.filter)));
    return deliveries.size();
}

}  // namespace mqttd
