#pragma once
// Topic aliases the broker assigns on one connection's outgoing PUBLISH packets (MQTT 5
// 3.3.2.3.4): at most the client's Topic Alias Maximum (and the broker's own bound), the
// least recently used topic giving its alias up to a new one when all are taken. Lives
// and dies with the connection, as the spec requires.
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

namespace mqttd {

class outbound_aliases {
public:
    explicit outbound_aliases(std::uint16_t max = 0) : max_(max) {}

    struct choice {
        std::uint16_t alias = 0;  // 0: send the topic name without an alias
        bool known = false;       // the client already maps alias to this topic: the name may be left out
    };
    // What to send for `topic`; nothing changes until use() says it was sent.
    choice pick(std::string_view topic) const;
    // The PUBLISH carrying `c` for `topic` was sent: the client now maps the alias to it.
    void use(std::string_view topic, const choice& c);

    std::size_t size() const noexcept { return by_topic_.size(); }

private:
    struct entry {
        std::string topic;
        std::uint16_t alias;
    };
    std::uint16_t max_;
    std::list<entry> lru_;  // most recently used first
    std::unordered_map<std::string_view, std::list<entry>::iterator> by_topic_;  // views into lru_
};

}  // namespace mqttd
