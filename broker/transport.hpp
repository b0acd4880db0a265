#pragma once
// The byte stream under one MQTT connection: plain TCP or WebSocket. The connection's
// MQTT logic is the same over both; only reading, writing and closing differ.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <memory>
#include <tuple>

namespace mqttd {

class transport {
public:
    using result = std::tuple<boost::system::error_code, std::size_t>;
    virtual ~transport() = default;
    virtual boost::asio::any_io_executor executor() = 0;
    virtual boost::asio::awaitable<result> read_some(boost::asio::mutable_buffer b) = 0;
    virtual boost::asio::awaitable<result> write(boost::asio::const_buffer b) = 0;
    // Ends the connection at once; pending reads and writes complete with an error.
    virtual void close() = 0;
};

std::unique_ptr<transport> make_tcp_transport(boost::asio::ip::tcp::socket socket);

}  // namespace mqttd
