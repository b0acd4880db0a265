#pragma once
// $SYS/broker/... statistics, published as retained QoS 0 messages every sys_interval.
namespace mqttd {
class broker;
void publish_sys_topics(broker& b);
}  // namespace mqttd
