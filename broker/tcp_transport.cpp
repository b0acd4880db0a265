#include <boost/asio/write.hpp>

#include "broker/transport.hpp"

namespace mqttd {

namespace {

namespace asio = boost::asio;

class tcp_transport final : public transport {
public:
    explicit tcp_transport(tcp_socket s) : socket_(std::move(s)) {
        boost::system::error_code ignored;
        socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
        socket_.non_blocking(true, ignored);
    }
    asio::any_io_executor executor() override { return socket_.get_executor(); }
    void async_wait_readable(std::shared_ptr<transport_events> to) override {
        socket_.async_wait(asio::socket_base::wait_read,
                           [to = std::move(to)](const boost::system::error_code& ec) { to->on_readable(ec); });
    }
    std::size_t read_now(asio::mutable_buffer b, boost::system::error_code& ec) override {
        return socket_.read_some(b, ec);
    }
    void async_write(asio::const_buffer b, std::shared_ptr<transport_events> to) override {
        asio::async_write(socket_, b, [to = std::move(to)](const boost::system::error_code& ec, std::size_t n) {
            to->on_written(ec, n);
        });
    }
    void shutdown_send() override {
        boost::system::error_code ignored;
        socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    }
    void close() override {
        boost::system::error_code ignored;
        socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
    }
    std::string peer_address() const override {
        boost::system::error_code ec;
        const auto at = socket_.remote_endpoint(ec);
        return ec ? std::string() : at.address().to_string();
    }

private:
    tcp_socket socket_;
};

}  // namespace

std::unique_ptr<transport> make_tcp_transport(tcp_socket socket) {
    return std::make_unique<tcp_transport>(std::move(socket));
}

}  // namespace mqttd
