#include "broker/listener.hpp"

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

listener::listener(broker& b, asio::io_context& ctx, const listener_options& o)
    : broker_(b), acceptor_(ctx), kind_(o.type) {
    tcp::endpoint ep(asio::ip::make_address(o.address), o.port);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(asio::socket_base::max_listen_connections);
    port_ = acceptor_.local_endpoint().port();
}

void listener::start() {
    asio::co_spawn(acceptor_.get_executor(), [self = shared_from_this()] { return self->accept_loop(); },
                   asio::detached);
}

void listener::stop() {
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
        boost::system::error_code ignored;
        self->acceptor_.close(ignored);
    });
}

asio::awaitable<void> listener::accept_loop() {
    constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
    while (acceptor_.is_open()) {
        auto& set = broker_.next_set();
        auto [ec, socket] = co_await acceptor_.async_accept(set.context(), nothrow);
        if (ec == asio::error::operation_aborted) break;
        if (ec) {
            // Out of descriptors or similar: pause rather than spin.
            log::warning("accept failed: {}", ec.message());
            asio::steady_timer pause(acceptor_.get_executor(), std::chrono::milliseconds(100));
            co_await pause.async_wait(nothrow);
            continue;
        }
        if (kind_ == listener_options::kind::websocket) {
            auto ex = socket.get_executor();
            asio::co_spawn(ex, upgrade(std::move(socket), set), asio::detached);
            continue;
        }
        auto c = std::make_shared<connection>(broker_, make_tcp_transport(std::move(socket)));
        c->start(set);
    }
}

asio::awaitable<void> listener::upgrade(tcp::socket socket, connection_set& set) {
    auto self = shared_from_this();
    auto t = co_await accept_websocket(std::move(socket), broker_.options().max_packet_size);
    if (!t) co_return;
    auto c = std::make_shared<connection>(broker_, std::move(t));
    c->start(set);
}

}  // namespace mqttd
