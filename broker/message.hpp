#pragma once
// One published application message as the broker routes it: immutable once published,
// shared by every session it is delivered to (payload and properties stored once).
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "protocol/packet.hpp"

namespace mqttd {

struct message {
    std::string topic;
    mqtt::shared_payload payload;
    mqtt::qos qos = mqtt::qos::at_most_once;
    bool retain = false;
    // 5.0 properties forwarded to receivers (user properties, content type, response
    // topic, correlation data, payload format); never topic alias or subscription ids.
    mqtt::properties props;
    std::string msgid;     // the broker's unique id, as text
    std::string sender;    // publisher's client id ("" for messages the broker makes)
    std::string username;  // publisher's user name, if any
    std::chrono::system_clock::time_point timestamp{};
    // When the Message Expiry Interval runs out; nullopt: never.
    std::optional<std::chrono::steady_clock::time_point> expires_at;
};

using message_ptr = std::shared_ptr<const message>;

}  // namespace mqttd
