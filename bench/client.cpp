#include "bench/client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>
#include <numeric>

#include "protocol/encoder.hpp"

namespace bench {

namespace asio = boost::asio;
using asio::awaitable;
constexpr auto nothrow_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr mqtt::protocol_version version = mqtt::protocol_version::v311;
constexpr std::uint16_t subscribe_packet_id = 65535;  // above every publish id (1..inflight)
// Reads start small and grow while they come back full, so thousands of idle clients
// hold little and a busy subscriber reads in large chunks.
constexpr std::size_t min_read_size = 512;
constexpr std::size_t max_read_size = 64 * 1024;
// QoS 0 has no ack to wait for: a publisher going as fast as it can waits instead while
// this much is queued and not yet taken by the socket.
constexpr std::size_t qos0_high_water = 64 * 1024;
// A waiting publisher wakes at least this often: nothing notifies it when
// run_flags::publishing is switched off.
constexpr auto poll_interval = std::chrono::milliseconds(100);

// Each payload starts with the send time (16 hex digits of steady-clock nanoseconds)
// and the publisher's entry in the flow table (8 hex digits), so payloads stay text: a
// backend storing them in a text column sees what a typical device sends.
constexpr std::size_t stamp_size = 16;
constexpr std::size_t flow_size = 8;

void write_hex(char* at, std::size_t digits, std::uint64_t value) {
    constexpr char hex[] = "0123456789abcdef";
    for (std::size_t i = digits; i-- > 0; value >>= 4) at[i] = hex[value & 0xf];
}

bool read_hex(std::string_view text, std::uint64_t& value) {
    value = 0;
    for (char c : text) {
        unsigned digit;
        if (c >= '0' && c <= '9') digit = static_cast<unsigned>(c - '0');
        else if (c >= 'a' && c <= 'f') digit = static_cast<unsigned>(c - 'a' + 10);
        else return false;
        value = value << 4 | digit;
    }
    return true;
}

std::uint64_t elapsed_ns(clock::time_point from, clock::time_point to) {
    return to > from ? static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count()) : 0;
}

void store_max(std::atomic<std::int64_t>& a, std::int64_t v) {
    auto seen = a.load(std::memory_order_relaxed);
    while (seen < v && !a.compare_exchange_weak(seen, v, std::memory_order_relaxed)) {}
}

}  // namespace

client::client(asio::io_context& io, shard& metrics, const run_flags& flags, flow_table& flows)
    : socket_(io),
      metrics_(metrics),
      flags_(flags),
      flows_(flows),
      write_wanted_(socket_.get_executor()),
      progress_(socket_.get_executor()),
      connect_deadline_(io) {
    decoder_.set_version(version);
}

// ---------------------------------------------------------------- requests

awaitable<bool> client::connect(asio::ip::tcp::endpoint broker, connect_params p, clock::time_point deadline) {
    const auto started = clock::now();
    // Whatever hangs (SYN, CONNACK), the deadline closes the socket and so ends the wait.
    connect_deadline_.expires_at(deadline);
    connect_deadline_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec && !self->connected_) self->close();
    });

    auto [ec] = co_await socket_.async_connect(broker, nothrow_awaitable);
    if (!ec && !closed_) {
        boost::system::error_code ignored;
        connect_sent_at_ = clock::now();
        socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
        keepalive_ = std::chrono::seconds(p.keepalive);
        mqtt::connect c;
        c.version = version;
        c.clean_start = p.clean_session;
        c.keep_alive = p.keepalive;
        c.client_id = std::move(p.client_id);
        send(c);
        auto self = shared_from_this();
        asio::co_spawn(executor(), [self] { return self->read_loop(); }, asio::detached);
        asio::co_spawn(executor(), [self] { return self->write_loop(); }, asio::detached);
        while (!connected_ && !closed_) co_await progress_.wait_until(deadline);
    } else {
        close();
    }
    connect_deadline_.cancel();

    if (!connected_) {
        metrics_.connect_failures.fetch_add(1, std::memory_order_relaxed);
        co_return false;
    }
    const auto now = clock::now();
    metrics_.connect_latency.record(elapsed_ns(started, now));
    metrics_.connack_latency.record(elapsed_ns(connect_sent_at_, now));
    metrics_.connects.fetch_add(1, std::memory_order_relaxed);
    store_max(metrics_.last_connack_ns, to_ns(now));
    co_return true;
}

awaitable<bool> client::subscribe(std::string filter, mqtt::qos q, clock::time_point deadline) {
    if (closed_) co_return false;
    mqtt::subscribe s;
    s.packet_id = subscribe_packet_id;
    s.subscriptions.push_back({std::move(filter), {.max_qos = q}});
    send(s);
    while (!subscribed_ && !closed_ && clock::now() < deadline) co_await progress_.wait_until(deadline);
    if (subscribed_) metrics_.subscribed.fetch_add(1, std::memory_order_relaxed);
    co_return subscribed_;
}

awaitable<void> client::publish(publish_params p) {
    mqtt::publish pub;
    pub.topic = p.topic;
    pub.qos = p.qos;
    pub.packet_id = p.qos == mqtt::qos::at_most_once ? 0 : 1;
    pub.payload = mqtt::shared_payload(std::string(p.payload, 'x'));
    publish_template_ = mqtt::encode(pub, version);
    payload_offset_ = publish_template_.size() - p.payload;
    if (p.qos != mqtt::qos::at_most_once) {
        free_ids_.resize(p.inflight);
        std::iota(free_ids_.rbegin(), free_ids_.rend(), std::uint16_t{1});  // 1 is handed out first
        sent_at_.assign(p.inflight + 1u, clock::time_point{});
    }

    const bool unbounded = p.count == std::numeric_limits<std::uint64_t>::max();
    const auto interval = p.rate > 0 ? std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(1.0 / p.rate))
                                     : clock::duration::zero();
    auto next = clock::now();
    std::uint64_t sent = 0;
    while (!closed_ && sent < p.count && (!unbounded || flags_.publishing.load(std::memory_order_relaxed))) {
        const auto now = clock::now();
        const bool window_full = p.qos == mqtt::qos::at_most_once ? out_.size() >= qos0_high_water : free_ids_.empty();
        auto on_the_way = [&] { return sent - flows_.received(p.flow) / p.fanout; };
        bool e2e_full = p.window && on_the_way() >= p.window;
        if (e2e_full) {
            flows_.want_wake(p.flow);
            e2e_full = on_the_way() >= p.window;
        }
        if (window_full || e2e_full) {
            co_await progress_.wait_until(now + poll_interval);
            continue;
        }
        if (interval > clock::duration::zero()) {
            if (now < next) {
                co_await progress_.wait_until(std::min(next, now + poll_interval));
                continue;
            }
            // A publisher held back by its window does not make up for it in a burst.
            next = std::max(next + interval, now);
        }
        std::uint16_t id = 0;
        if (p.qos != mqtt::qos::at_most_once) {
            id = free_ids_.back();
            free_ids_.pop_back();
            sent_at_[id] = now;
        }
        append_publish(id, p.flow);
        ++sent;
        metrics_.published.fetch_add(1, std::memory_order_relaxed);
    }
}

void client::disconnect() {
    if (closing_ || closed_) return;
    send(mqtt::disconnect{});
    closing_ = true;
}

// ---------------------------------------------------------------- loops

awaitable<void> client::read_loop() {
    std::size_t read_size = min_read_size;
    for (;;) {
        auto space = decoder_.prepare(read_size);
        auto [ec, n] = co_await socket_.async_read_some(asio::buffer(space.data(), space.size()), nothrow_awaitable);
        decoder_.commit(ec ? 0 : n);
        if (ec) break;
        if (n == read_size && read_size < max_read_size) read_size *= 2;
        else if (n < read_size / 4 && read_size > min_read_size) read_size /= 2;
        // One arrival time for everything this read brought: they arrived together.
        const auto arrived = clock::now();
        std::error_code bad;
        while (auto p = decoder_.next(bad)) on_packet(*p, arrived);
        if (bad) break;
        decoder_.trim(2 * read_size);
    }
    if (!closing_ && !closed_) metrics_.unexpected_closes.fetch_add(1, std::memory_order_relaxed);
    close();
}

awaitable<void> client::write_loop() {
    std::string writing;
    last_write_ = clock::now();
    while (!closed_) {
        if (out_.empty()) {
            if (closing_) break;
            // Anything written counts as a sign of life; a silent client pings at half
            // its keep-alive.
            auto ping_at = keepalive_ == clock::duration::zero() ? clock::time_point::max() : last_write_ + keepalive_ / 2;
            if (clock::now() >= ping_at) {
                send(mqtt::pingreq{});
                continue;
            }
            co_await write_wanted_.wait_until(ping_at);
            continue;
        }
        writing.clear();
        std::swap(writing, out_);
        auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(writing), nothrow_awaitable);
        if (ec) break;
        last_write_ = clock::now();
        progress_.notify();  // a QoS 0 publisher may be waiting for the buffer to empty
    }
    close();
}

// ---------------------------------------------------------------- the broker's packets

void client::on_packet(const mqtt::packet& p, clock::time_point arrived) {
    if (auto* pub = std::get_if<mqtt::publish>(&p)) {
        on_publish(*pub, arrived);
    } else if (auto* ack = std::get_if<mqtt::puback>(&p)) {
        on_completed(ack->packet_id, arrived);
    } else if (auto* rec = std::get_if<mqtt::pubrec>(&p)) {
        mqtt::pubrel rel;
        rel.packet_id = rec->packet_id;
        send(rel);
    } else if (auto* comp = std::get_if<mqtt::pubcomp>(&p)) {
        on_completed(comp->packet_id, arrived);
    } else if (auto* rel = std::get_if<mqtt::pubrel>(&p)) {
        mqtt::pubcomp c;
        c.packet_id = rel->packet_id;
        send(c);
    } else if (auto* ca = std::get_if<mqtt::connack>(&p)) {
        if (ca->reason == 0) {
            connected_ = true;
        } else {
            close();  // refused
        }
        progress_.notify();
    } else if (auto* sa = std::get_if<mqtt::suback>(&p)) {
        subscribed_ = sa->packet_id == subscribe_packet_id && !sa->reasons.empty() && sa->reasons.front() < 0x80;
        progress_.notify();
    }
    // PINGRESP and anything else: nothing to do.
}

void client::on_publish(const mqtt::publish& p, clock::time_point arrived) {
    if (p.qos == mqtt::qos::at_least_once) {
        mqtt::puback a;
        a.packet_id = p.packet_id;
        send(a);
    } else if (p.qos == mqtt::qos::exactly_once) {
        mqtt::pubrec r;
        r.packet_id = p.packet_id;
        send(r);
    }
    metrics_.delivered.fetch_add(1, std::memory_order_relaxed);
    store_max(metrics_.last_delivery_ns, to_ns(arrived));
    auto payload = p.payload.view();
    std::uint64_t stamp, flow;
    if (payload.size() < stamp_size + flow_size || !read_hex(payload.substr(0, stamp_size), stamp) ||
        !read_hex(payload.substr(stamp_size, flow_size), flow))
        return;  // not from this generator
    if (flows_.contains(static_cast<std::uint32_t>(flow))) flows_.delivered(static_cast<std::uint32_t>(flow));
    if (flags_.measuring.load(std::memory_order_relaxed))
        metrics_.latency.record(elapsed_ns(clock::time_point(std::chrono::nanoseconds(stamp)), arrived));
}

void client::on_completed(std::uint16_t packet_id, clock::time_point arrived) {
    if (packet_id == 0 || packet_id >= sent_at_.size() || sent_at_[packet_id] == clock::time_point{}) return;
    if (flags_.measuring.load(std::memory_order_relaxed))
        metrics_.ack_latency.record(elapsed_ns(sent_at_[packet_id], arrived));
    sent_at_[packet_id] = clock::time_point{};
    free_ids_.push_back(packet_id);
    metrics_.acked.fetch_add(1, std::memory_order_relaxed);
    progress_.notify();
}

// ---------------------------------------------------------------- output

void client::send(const mqtt::packet& p) {
    mqtt::encode(p, version, out_);
    write_wanted_.notify();
}

void client::append_publish(std::uint16_t packet_id, std::uint32_t flow) {
    const auto at = out_.size();
    out_ += publish_template_;
    write_hex(out_.data() + at + payload_offset_, stamp_size, static_cast<std::uint64_t>(to_ns(clock::now())));
    write_hex(out_.data() + at + payload_offset_ + stamp_size, flow_size, flow);
    if (packet_id != 0) {
        // The packet id is the two bytes before the payload (3.1.1 has no properties).
        out_[at + payload_offset_ - 2] = static_cast<char>(packet_id >> 8);
        out_[at + payload_offset_ - 1] = static_cast<char>(packet_id & 0xff);
    }
    write_wanted_.notify();
}

void client::close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    write_wanted_.notify();
    progress_.notify();
    connect_deadline_.cancel();
    metrics_.closed.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace bench
