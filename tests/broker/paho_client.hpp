#pragma once
// A thin RAII wrapper over the Eclipse Paho C synchronous client, so broker tests talk
// to the real broker with a client we did not write.
#include <MQTTClient.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>

namespace test {

struct received {
    std::string topic;
    std::string payload;
    int qos = 0;
    bool retained = false;
    bool dup = false;
};

class paho_client {
public:
    paho_client(std::uint16_t port, const std::string& id) {
        auto uri = "tcp://127.0.0.1:" + std::to_string(port);
        if (MQTTClient_create(&c_, uri.c_str(), id.c_str(), MQTTCLIENT_PERSISTENCE_NONE, nullptr) != MQTTCLIENT_SUCCESS)
            throw std::runtime_error("MQTTClient_create failed");
    }
    ~paho_client() {
        if (MQTTClient_isConnected(c_)) MQTTClient_disconnect(c_, 200);
        MQTTClient_destroy(&c_);
    }
    paho_client(const paho_client&) = delete;
    paho_client& operator=(const paho_client&) = delete;

    int connect(bool clean = true, int keepalive = 30) {
        MQTTClient_connectOptions o = MQTTClient_connectOptions_initializer;
        o.keepAliveInterval = keepalive;
        o.cleansession = clean;
        o.connectTimeout = 5;
        o.reliable = 0;  // allow several QoS 1/2 messages in flight at once
        return MQTTClient_connect(c_, &o);
    }
    int subscribe(const std::string& filter, int qos) { return MQTTClient_subscribe(c_, filter.c_str(), qos); }
    int unsubscribe(const std::string& filter) { return MQTTClient_unsubscribe(c_, filter.c_str()); }

    // Sends and returns the token; wait with completed().
    MQTTClient_deliveryToken publish(const std::string& topic, const std::string& payload, int qos, bool retain = false) {
        MQTTClient_deliveryToken token = 0;
        if (MQTTClient_publish(c_, topic.c_str(), static_cast<int>(payload.size()), payload.data(), qos, retain,
                               &token) != MQTTCLIENT_SUCCESS)
            throw std::runtime_error("publish failed");
        return token;
    }
    bool completed(MQTTClient_deliveryToken token, std::chrono::milliseconds timeout) {
        return MQTTClient_waitForCompletion(c_, token, static_cast<unsigned long>(timeout.count())) == MQTTCLIENT_SUCCESS;
    }

    std::optional<received> receive(std::chrono::milliseconds timeout) {
        char* topic = nullptr;
        int topic_len = 0;
        MQTTClient_message* m = nullptr;
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            int rc = MQTTClient_receive(c_, &topic, &topic_len, &m, 100);
            if (rc != MQTTCLIENT_SUCCESS && rc != MQTTCLIENT_TOPICNAME_TRUNCATED) return std::nullopt;
            if (!m) continue;
            received r{topic_len ? std::string(topic, static_cast<std::size_t>(topic_len)) : std::string(topic),
                       std::string(static_cast<const char*>(m->payload), static_cast<std::size_t>(m->payloadlen)),
                       m->qos, m->retained != 0, m->dup != 0};
            MQTTClient_freeMessage(&m);
            MQTTClient_free(topic);
            return r;
        }
        return std::nullopt;
    }

private:
    MQTTClient c_ = nullptr;
};

}  // namespace test
