#pragma once
// One MQTT 3.1.1 client of the generator. It connects, subscribes, publishes with a rate
// or an inflight window, answers the broker's QoS 1/2 flows, and records into its
// thread's metrics what it sees: deliveries with their latency (the send time travels in
// the payload), acks with theirs, CONNACK with the connect time. It keeps the protocol
// codec's rules (the packets are the broker's own types) and does its own I/O: one read
// loop and one write loop that gathers everything pending into one write.
//
// Everything runs on the executor of the io_context the client was created on; other
// threads start work with co_spawn on executor().
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "bench/event.hpp"
#include "bench/flow.hpp"
#include "bench/metrics.hpp"
#include "protocol/decoder.hpp"
#include "protocol/packet.hpp"

namespace bench {

struct connect_params {
    std::string client_id;
    bool clean_session = true;
    std::uint16_t keepalive = 60;
};

struct publish_params {
    std::string topic;
    mqtt::qos qos = mqtt::qos::at_least_once;
    std::size_t payload = 64;
    double rate = 0;         // messages/s; 0: as fast as the windows allow
    unsigned inflight = 32;  // QoS 1/2 messages awaiting their ack
    // End to end (flow.hpp): messages not yet received by all `fanout` subscribers of
    // this publisher (its entry `flow` in the flow table); 0: no such window.
    unsigned window = 0;
    std::uint32_t flow = 0;
    std::uint64_t fanout = 1;
    // Publish this many, then stop; without a count, publish while run_flags::publishing.
    std::uint64_t count = std::numeric_limits<std::uint64_t>::max();
};

class client : public std::enable_shared_from_this<client> {
public:
    // Deliveries are reported to `flows`, which must outlive the client's work.
    client(boost::asio::io_context& io, shard& metrics, const run_flags& flags, flow_table& flows);

    boost::asio::any_io_executor executor() { return socket_.get_executor(); }

    // TCP connect, CONNECT, CONNACK, before the deadline. True when the broker accepted.
    boost::asio::awaitable<bool> connect(boost::asio::ip::tcp::endpoint broker, connect_params p,
                                         clock::time_point deadline);
    boost::asio::awaitable<bool> subscribe(std::string filter, mqtt::qos q, clock::time_point deadline);
    // Returns when the count is reached, publishing stops or the connection closes.
    boost::asio::awaitable<void> publish(publish_params p);
    // Sends DISCONNECT, then closes once it is written.
    void disconnect();
    // A publisher waiting for its end-to-end window looks again.
    void wake() { progress_.notify(); }

private:
    boost::asio::awaitable<void> read_loop();
    boost::asio::awaitable<void> write_loop();

    void on_packet(const mqtt::packet& p, clock::time_point arrived);
    void on_publish(const mqtt::publish& p, clock::time_point arrived);
    void on_completed(std::uint16_t packet_id, clock::time_point arrived);
    void send(const mqtt::packet& p);
    void append_publish(std::uint16_t packet_id, std::uint32_t flow);
    void close();

    boost::asio::ip::tcp::socket socket_;
    shard& metrics_;
    const run_flags& flags_;
    flow_table& flows_;
    mqtt::decoder decoder_;
    std::string out_;
    event write_wanted_;  // the write loop waits here for bytes to send
    event progress_;      // connect, subscribe and publish wait here for the broker's answers
    boost::asio::steady_timer connect_deadline_;
    clock::time_point connect_sent_at_{};
    clock::duration keepalive_{};
    clock::time_point last_write_;

    bool connected_ = false;
    bool subscribed_ = false;
    bool closing_ = false;
    bool closed_ = false;

    // Publishing: a prebuilt PUBLISH whose send time, flow and packet id are patched per
    // message; packet ids 1..inflight, each free again when its QoS flow completes.
    std::string publish_template_;
    std::size_t payload_offset_ = 0;
    std::vector<std::uint16_t> free_ids_;
    std::vector<clock::time_point> sent_at_;  // by packet id
};

}  // namespace bench
