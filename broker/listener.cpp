#include "broker/listener.hpp"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "broker/broker.hpp"
#include "broker/connection.hpp"
#include "broker/log.hpp"
#include "broker/ws_transport.hpp"

namespace mqttd {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// SO_REUSEPORT, which Asio names no public type for, as a settable socket option.
struct reuse_port {
    int value = 1;
    template <class Protocol> int level(const Protocol&) const { return SOL_SOCKET; }
    template <class Protocol> int name(const Protocol&) const { return SO_REUSEPORT; }
    template <class Protocol> const void* data(const Protocol&) const { return &value; }
    template <class Protocol> std::size_t size(const Protocol&) const { return sizeof(value); }
};

// SO_REUSEPORT would let this broker bind beside another process's listener that set it
// too (same user) and silently share its connections: a plain socket must be able to
// bind the port first.
void check_port_free(const tcp::endpoint& ep) {
    asio::io_context probe_ctx;
    tcp::acceptor probe(probe_ctx);
    probe.open(ep.protocol());
    probe.set_option(tcp::acceptor::reuse_address(true));
    probe.bind(ep);
}

}  // namespace

listener::listener(broker& b, const std::vector<connection_set*>& sets, const listener_options& o)
    : broker_(b), kind_(o.type) {
    tcp::endpoint ep(asio::ip::make_address(o.address), o.port);
    if (ep.port() != 0) check_port_free(ep);
    acceptors_.reserve(sets.size());
    for (auto* set : sets) {
        tcp_acceptor a(set->context());
        a.open(ep.protocol());
        a.set_option(tcp::acceptor::reuse_address(true));
        a.set_option(reuse_port{});
        a.bind(ep);
        // No TCP_DEFER_ACCEPT: it saves a wake-up per connection, but in a connection storm
        // one CONNACK in ten then came 10 ms or more after its CONNECT (bench/results/analysis.md).
        a.listen(asio::socket_base::max_listen_connections);
        if (ep.port() == 0) ep.port(a.local_endpoint().port());
        acceptors_.push_back({std::move(a), *set});
    }
    port_ = ep.port();
}

void listener::start() {
    for (auto& a : acceptors_)
        asio::co_spawn(a.acceptor.get_executor(), [self = shared_from_this(), &a] { return self->accept_loop(a); },
                       asio::detached);
}

void listener::stop() {
    for (auto& a : acceptors_)
        asio::post(a.acceptor.get_executor(), [self = shared_from_this(), &a] {
            boost::system::error_code ignored;
            a.acceptor.close(ignored);
        });
}

asio::awaitable<void> listener::accept_loop(acceptor_of_set& a) {
    constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
    while (a.acceptor.is_open()) {
        auto [ec, socket] = co_await a.acceptor.async_accept(nothrow);
        if (ec == asio::error::operation_aborted) break;
        if (ec) {
            // Out of descriptors or similar: pause rather than spin.
            log::warning("accept failed: {}", ec.message());
            asio::steady_timer pause(a.acceptor.get_executor(), std::chrono::milliseconds(100));
            co_await pause.async_wait(nothrow);
            continue;
        }
        if (kind_ == listener_options::kind::websocket) {
            asio::co_spawn(a.acceptor.get_executor(), upgrade(tcp::socket(std::move(socket)), a.set), asio::detached);
            continue;
        }
        std::make_shared<connection>(broker_, make_tcp_transport(std::move(socket)))->start(a.set);
    }
}

asio::awaitable<void> listener::upgrade(tcp::socket socket, connection_set& set) {
    auto self = shared_from_this();
    auto t = co_await accept_websocket(std::move(socket), broker_.options().max_packet_size);
    if (!t) co_return;
    std::make_shared<connection>(broker_, std::move(t))->start(set);
}

}  // namespace mqttd
