#pragma once
// Accepts TCP connections on one address and hands each to the next io_context.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "broker/options.hpp"

namespace mqttd {

class broker;
class connection_set;

class listener : public std::enable_shared_from_this<listener> {
public:
    // Binds at once, so that a bad address or a port in use is a start-up error.
    listener(broker& b, boost::asio::io_context& ctx, const listener_options& o);
    void start();
    void stop();  // thread-safe
    std::uint16_t port() const { return port_; }

private:
    boost::asio::awaitable<void> accept_loop();
    // WebSocket: the HTTP upgrade happens on the connection's own thread.
    boost::asio::awaitable<void> upgrade(boost::asio::ip::tcp::socket socket, connection_set& set);

    broker& broker_;
    boost::asio::ip::tcp::acceptor acceptor_;
    listener_options::kind kind_;
    std::uint16_t port_;
};

}  // namespace mqttd
