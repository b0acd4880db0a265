#pragma once
// MQTT over WebSocket (MQTT 5.0 section 6): binary messages carry the MQTT byte
// stream; the handshake must offer the "mqtt" subprotocol (or 3.1's "mqttv3.1").
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "broker/transport.hpp"

namespace mqttd {

// Reads the HTTP upgrade request and completes the WebSocket handshake; null when the
// peer did not ask for a WebSocket with an MQTT subprotocol (it gets an HTTP error).
boost::asio::awaitable<std::unique_ptr<transport>> accept_websocket(boost::asio::ip::tcp::socket socket,
                                                                    std::size_t max_message_size);

}  // namespace mqttd
