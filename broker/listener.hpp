#pragma once
// Accepts TCP connections on one address with one acceptor per I/O thread, all bound to
// the same port (SO_REUSEPORT): the kernel spreads the incoming connections over them,
// and each connection is accepted and served on the same thread, never handed over.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <vector>

#include "broker/options.hpp"

namespace mqttd {

class broker;
class connection_set;

class listener : public std::enable_shared_from_this<listener> {
public:
    // Binds at once, so that a bad address or a port in use is a start-up error. With
    // port 0 the first acceptor's port is the one all of them share.
    listener(broker& b, const std::vector<connection_set*>& sets, const listener_options& o);
    void start();
    void stop();  // thread-safe
    std::uint16_t port() const { return port_; }

private:
    using tcp_acceptor =
        boost::asio::ip::tcp::acceptor::rebind_executor<boost::asio::io_context::executor_type>::other;
    struct acceptor_of_set {
        tcp_acceptor acceptor;
        connection_set& set;
    };

    boost::asio::awaitable<void> accept_loop(acceptor_of_set& a);
    boost::asio::awaitable<void> upgrade(boost::asio::ip::tcp::socket socket, connection_set& set);

    broker& broker_;
    // Never resized after construction: the accept loops hold references into it.
    std::vector<acceptor_of_set> acceptors_;
    listener_options::kind kind_;
    std::uint16_t port_ = 0;
};

}  // namespace mqttd
