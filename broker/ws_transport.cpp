#include "broker/ws_transport.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <string>

#include "broker/log.hpp"

namespace mqttd {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
constexpr auto nothrow_awaitable = asio::as_tuple(asio::use_awaitable);

// The subprotocol to answer with: the first MQTT one the client offers.
std::string pick_subprotocol(std::string_view offered) {
    while (!offered.empty()) {
        auto comma = offered.find(',');
        auto item = offered.substr(0, comma);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        if (item == "mqtt" || item == "mqttv3.1") return std::string(item);
        if (comma == std::string_view::npos) break;
        offered.remove_prefix(comma + 1);
    }
    return {};
}

class ws_transport final : public transport {
public:
    explicit ws_transport(websocket::stream<beast::tcp_stream> ws) : ws_(std::move(ws)) { ws_.binary(true); }

    asio::any_io_executor executor() override { return ws_.get_executor(); }

    std::string peer_address() const override {
        boost::system::error_code ec;
        const auto at = ws_.next_layer().socket().remote_endpoint(ec);
        return ec ? std::string() : at.address().to_string();
    }

    // Beast reads frames into its own buffer: readiness here means frame bytes arrived.
    void async_wait_readable(std::shared_ptr<transport_events> to) override {
        if (!received_.empty()) {
            asio::post(ws_.get_executor(), [to = std::move(to)] { to->on_readable({}); });
            return;
        }
        received_.resize(read_chunk);
        ws_.async_read_some(asio::buffer(received_),
                            [this, to = std::move(to)](const boost::system::error_code& ec, std::size_t n) {
                                received_.resize(ec ? 0 : n);
                                to->on_readable(ec);
                            });
    }
    std::size_t read_now(asio::mutable_buffer b, boost::system::error_code& ec) override {
        ec.clear();
        if (received_.empty()) {
            ec = asio::error::would_block;
            return 0;
        }
        const auto n = asio::buffer_copy(b, asio::buffer(received_));
        received_.erase(0, n);
        if (received_.empty()) std::string().swap(received_);
        return n;
    }
    void async_write(asio::const_buffer b, std::shared_ptr<transport_events> to) override {
        ws_.async_write(b, [to = std::move(to)](const boost::system::error_code& ec, std::size_t n) {
            to->on_written(ec, n);
        });
    }
    void shutdown_send() override {
        // Under the WebSocket layer: the MQTT packet that explains the close is the last
        // frame the client gets.
        boost::system::error_code ignored;
        beast::get_lowest_layer(ws_).socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    }
    void close() override {
        // A hard close: the MQTT layer has already said what it had to say.
        boost::system::error_code ignored;
        beast::get_lowest_layer(ws_).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        beast::get_lowest_layer(ws_).close();
    }

private:
    static constexpr std::size_t read_chunk = 16 * 1024;
    websocket::stream<beast::tcp_stream> ws_;
    std::string received_;  // frame bytes read but not yet taken by read_now
};

}  // namespace

asio::awaitable<std::unique_ptr<transport>> accept_websocket(asio::ip::tcp::socket socket, std::size_t max_message_size) {
    beast::tcp_stream stream(std::move(socket));
    stream.expires_after(std::chrono::seconds(10));
    beast::flat_buffer buffer;
    http::request_parser<http::string_body> parser;
    parser.body_limit(4096);
    parser.header_limit(8192);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, nothrow_awaitable);
    if (ec) co_return nullptr;
    auto req = parser.release();

    auto refuse = [&](http::status status, std::string text) -> asio::awaitable<void> {
        http::response<http::string_body> res{status, req.version()};
        res.set(http::field::content_type, "text/plain");
        res.keep_alive(false);
        res.body() = std::move(text);
        res.prepare_payload();
        co_await http::async_write(stream, res, nothrow_awaitable);
    };
    if (!websocket::is_upgrade(req)) {
        co_await refuse(http::status::upgrade_required, "this endpoint speaks MQTT over WebSocket\n");
        co_return nullptr;
    }
    auto subprotocol = pick_subprotocol(req[http::field::sec_websocket_protocol]);
    if (subprotocol.empty()) {
        // MQTT 5.0 [MQTT-6.0.0-3]: the client must offer "mqtt".
        co_await refuse(http::status::bad_request, "the WebSocket subprotocol must be mqtt\n");
        co_return nullptr;
    }

    stream.expires_never();
    websocket::stream<beast::tcp_stream> ws(std::move(stream));
    ws.read_message_max(max_message_size);
    // MQTT's keep-alive governs idleness; only the handshake gets a deadline here.
    ws.set_option(websocket::stream_base::timeout{std::chrono::seconds(10), websocket::stream_base::none(), false});
    ws.set_option(websocket::stream_base::decorator([subprotocol](websocket::response_type& res) {
        res.set(http::field::sec_websocket_protocol, subprotocol);
        res.set(http::field::server, "mqttd");
    }));
    auto [aec] = co_await ws.async_accept(req, nothrow_awaitable);
    if (aec) {
        log::debug("websocket handshake failed: {}", aec.message());
        co_return nullptr;
    }
    co_return std::make_unique<ws_transport>(std::move(ws));
}

}  // namespace mqttd
