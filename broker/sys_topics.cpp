#include "broker/sys_topics.hpp"

#include <fmt/format.h>

#include "broker/broker.hpp"

namespace mqttd {

namespace {

void publish(broker& b, std::string topic, std::string value) {
    auto m = std::make_shared<message>();
    m->topic = std::move(topic);
    m->payload = mqtt::shared_payload(std::move(value));
    m->retain = true;
    m->msgid = b.next_msgid();
    m->timestamp = std::chrono::system_clock::now();
    message_ptr msg = std::move(m);
    b.retained().set(msg);
    b.router().route(msg, nullptr);
}

}  // namespace

void publish_sys_topics(broker& b) {
    const auto& s = b.counters();
    auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - b.started_at());
    auto load = [](const auto& counter) { return fmt::format("{}", counter.load(std::memory_order_relaxed)); };
    publish(b, "$SYS/broker/version", "mqttd " MQTTD_VERSION);
    publish(b, "$SYS/broker/uptime", fmt::format("{} seconds", uptime.count()));
    publish(b, "$SYS/broker/clients/connected", load(s.clients_connected));
    publish(b, "$SYS/broker/clients/total", fmt::format("{}", b.sessions().size()));
    publish(b, "$SYS/broker/clients/accepted", load(s.clients_total));
    publish(b, "$SYS/broker/messages/received", load(s.messages_received));
    publish(b, "$SYS/broker/messages/sent", load(s.messages_sent));
    publish(b, "$SYS/broker/messages/dropped", load(s.messages_dropped));
    publish(b, "$SYS/broker/publish/messages/received", load(s.publish_received));
    publish(b, "$SYS/broker/publish/messages/sent", load(s.publish_sent));
    publish(b, "$SYS/broker/bytes/received", load(s.bytes_received));
    publish(b, "$SYS/broker/bytes/sent", load(s.bytes_sent));
    publish(b, "$SYS/broker/subscriptions/count", fmt::format("{}", b.subscriptions().size()));
    publish(b, "$SYS/broker/retained messages/count", fmt::format("{}", b.retained().size()));
    for (const auto& source : b.statistics_sources())
        for (auto& [name, value] : source()) publish(b, "$SYS/broker/" + name, std::move(value));
}

}  // namespace mqttd
