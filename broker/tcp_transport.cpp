#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "broker/transport.hpp"

namespace mqttd {

namespace {

namespace asio = boost::asio;
constexpr auto nothrow_awaitable = asio::as_tuple(asio::use_awaitable);

class tcp_transport final : public transport {
public:
    explicit tcp_transport(asio::ip::tcp::socket s) : socket_(std::move(s)) {
        boost::system::error_code ignored;
        socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
    }
    asio::any_io_executor executor() override { return socket_.get_executor(); }
    asio::awaitable<result> read_some(asio::mutable_buffer b) override {
        co_return co_await socket_.async_read_some(b, nothrow_awaitable);
    }
    asio::awaitable<result> write(asio::const_buffer b) override {
        co_return co_await asio::async_write(socket_, b, nothrow_awaitable);
    }
    void close() override {
        boost::system::error_code ignored;
        socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
    }

private:
    asio::ip::tcp::socket socket_;
};

}  // namespace

std::unique_ptr<transport> make_tcp_transport(asio::ip::tcp::socket socket) {
    return std::make_unique<tcp_transport>(std::move(socket));
}

}  // namespace mqttd
