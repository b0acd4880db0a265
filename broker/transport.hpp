#pragma once
// The byte stream under one MQTT connection: plain TCP or WebSocket. The connection's
// MQTT logic is the same over both; only reading, writing and closing differ.
//
// Reading is readiness-based: the connection waits until bytes can be read, then reads
// what is there without blocking. An idle connection therefore holds no read buffer and
// no suspended coroutine, only the pending wait.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <memory>
#include <string>

namespace mqttd {

// Where a transport reports the completion of its asynchronous operations. Each
// pending operation holds a reference to it.
class transport_events {
public:
    virtual ~transport_events() = default;
    virtual void on_readable(const boost::system::error_code& ec) = 0;
    virtual void on_written(const boost::system::error_code& ec, std::size_t n) = 0;
};

class transport {
public:
    virtual ~transport() = default;
    virtual boost::asio::any_io_executor executor() = 0;
    // Calls to->on_readable once bytes can be read or the stream failed. One at a time.
    virtual void async_wait_readable(std::shared_ptr<transport_events> to) = 0;
    // Reads what can be read now, without blocking: 0 bytes and would_block when nothing.
    virtual std::size_t read_now(boost::asio::mutable_buffer b, boost::system::error_code& ec) = 0;
    // Writes all of `b` (which must stay valid until completion), then calls to->on_written.
    virtual void async_write(boost::asio::const_buffer b, std::shared_ptr<transport_events> to) = 0;
    // Ends the sending side (TCP FIN) once everything is written; reading goes on, so that
    // bytes the client still sends are read rather than answered with a reset.
    virtual void shutdown_send() = 0;
    // Ends the connection at once; pending operations complete with an error.
    virtual void close() = 0;
    // The client's IP address as text (empty when the socket no longer knows it).
    virtual std::string peer_address() const = 0;
};

// A socket bound to its io_context's own executor type rather than any_io_executor: the
// socket, and every operation pending on it, is smaller by a type-erased executor.
using tcp_socket = boost::asio::ip::tcp::socket::rebind_executor<boost::asio::io_context::executor_type>::other;

std::unique_ptr<transport> make_tcp_transport(tcp_socket socket);

}  // namespace mqttd
