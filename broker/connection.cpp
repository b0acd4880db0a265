#include "broker/connection.hpp"

#include <array>
#include <boost/asio/post.hpp>

#include "broker/broker.hpp"
#include "broker/connection_set.hpp"

namespace mqttd {

namespace asio = boost::asio;

namespace {

constexpr std::uint32_t min_read_size = 256;
constexpr std::uint32_t max_read_size = 64 * 1024;

}  // namespace

connection::connection(broker& b, std::unique_ptr<transport> t)
    : broker_(b),
      transport_(std::move(t)),
      decoder_(b.options().max_packet_size),
      read_size_(min_read_size) {}

connection::~connection() = default;

void connection::start(connection_set& set) {
    rules_.emplace(broker_, weak_from_this(), clock::now(), transport_->peer_address());
    set_ = &set;
    set.add(shared_from_this());
    read_active_ = true;
    // Read first, wait after: the socket's first readiness may have been reported
    // (edge-triggered) before this connection began to wait, and would not be again.
    read_available();
    if (broker_.stopping()) shutdown_now();
}

void connection::wake() {
    if (wake_posted_.exchange(true)) return;
    asio::post(executor(), [self = shared_from_this()] {
        self->wake_posted_ = false;
        if (self->closed_) return;
        self->rules_->woken(clock::now());
        self->follow_rules();
    });
}

void connection::taken_over() {
    asio::post(executor(), [self = shared_from_this()] {
        if (self->closed_) return;
        self->rules_->taken_over(clock::now());
        self->follow_rules();
    });
}

void connection::shutdown() {
    asio::post(executor(), [self = shared_from_this()] { self->shutdown_now(); });
}

void connection::shutdown_now() {
    if (closed_) return;
    rules_->shutting_down(clock::now());
    follow_rules();
}

// ---------------------------------------------------------------- following the rules

void connection::follow_rules() {
    if (closed_) return;
    auto& r = *rules_;
    if (r.state() == connection_rules::phase::ended) return end_connection();
    if (r.has_output()) {
        schedule_write();
    } else if (r.state() == connection_rules::phase::closing && !write_active_ && !write_posted_) {
        // Everything said: FIN, then read until the client closes too [MQTT-3.14.4-1].
        r.flushed(clock::now());
        transport_->shutdown_send();
    }
    resume_reading();
}

void connection::resume_reading() {
    if (read_active_ || !rules_->wants_input()) return;
    read_active_ = true;
    asio::post(executor(), [self = shared_from_this()] { self->read_available(); });
}

// ---------------------------------------------------------------- reading

void connection::on_readable(const boost::system::error_code& ec) {
    if (closed_) return;
    if (ec) {
        read_active_ = false;
        rules_->input_ended();
        return follow_rules();
    }
    read_available();
}

bool connection::discard_available(boost::system::error_code& ec) {
    std::array<char, 4096> scratch;
    for (int i = 0; i < 16; ++i) {
        const auto n = transport_->read_now(asio::buffer(scratch), ec);
        stats::bump(broker_.counters().bytes_received, n);
        if (ec) return true;
    }
    return false;  // more may be there: another turn
}

void connection::read_available() {
    // A turn reads at most this much, then yields, so that one busy client cannot keep
    // the others of its thread waiting.
    std::size_t budget = 4 * max_read_size;
    auto& r = *rules_;
    // Packets that came behind a CONNECT whose password was being checked.
    if (r.state() == connection_rules::phase::connected && decoder_.buffered() && take_packets(clock::now()))
        follow_rules();
    for (;;) {
        if (closed_) return;
        if (r.state() == connection_rules::phase::ended) return end_connection();
        if (!r.wants_input()) {
            read_active_ = false;
            decoder_.trim(0);
            return;
        }
        boost::system::error_code ec;
        std::size_t n = 0;
        const bool draining = r.state() != connection_rules::phase::awaiting_connect &&
                              r.state() != connection_rules::phase::connected;
        if (draining) {
            decoder_.trim(0);
            if (!discard_available(ec)) {
                asio::post(executor(), [self = shared_from_this()] { self->read_available(); });
                return;
            }
        } else {
            auto space = decoder_.prepare(read_size_);
            n = transport_->read_now(asio::buffer(space.data(), space.size()), ec);
            decoder_.commit(n);
        }
        if (ec == asio::error::would_block || ec == asio::error::try_again) {
            // Drained. A connection reading little keeps no buffer while idle; a busy one
            // keeps its (empty) buffer rather than allocate and clear it every turn.
            decoder_.trim(read_size_ > min_read_size ? 2 * std::size_t{read_size_} : 0);
            transport_->async_wait_readable(shared_from_this());
            return;
        }
        if (ec) {
            read_active_ = false;
            decoder_.trim(0);
            r.input_ended();
            return follow_rules();
        }
        // Reads that fill the buffer ask for a bigger one; small reads let it shrink back.
        if (n == read_size_ && read_size_ < max_read_size) read_size_ *= 2;
        else if (n < read_size_ / 4 && read_size_ > min_read_size) read_size_ /= 2;
        stats::bump(broker_.counters().bytes_received, n);
        const auto now = clock::now();
        r.received(now);
        take_packets(now);
        follow_rules();
        if (n >= budget) {
            asio::post(executor(), [self = shared_from_this()] { self->read_available(); });
            return;
        }
        budget -= n;
    }
}

bool connection::take_packets(clock::time_point now) {
    auto& r = *rules_;
    for (bool took = false;; took = true) {
        std::error_code derr;
        auto p = decoder_.next(derr);
        if (derr) {
            r.decode_error(derr, decoder_.version(), now);
            return true;
        }
        if (!p) return took;
        r.packet(*p, now);
        if (r.state() != connection_rules::phase::connected) return true;
    }
}

// ---------------------------------------------------------------- writing

void connection::schedule_write() {
    if (write_active_ || write_posted_ || closed_) return;
    write_posted_ = true;
    asio::post(executor(), [self = shared_from_this()] {
        self->write_posted_ = false;
        self->start_write();
    });
}

void connection::start_write() {
    if (write_active_ || closed_) return;
    if (!rules_->has_output()) return follow_rules();
    rules_->take_output(writing_, clock::now());
    write_active_ = true;
    transport_->async_write(asio::buffer(writing_), shared_from_this());
    // The write before this one finished: the output may be back under its bound.
    resume_reading();
}

void connection::on_written(const boost::system::error_code& ec, std::size_t n) {
    write_active_ = false;
    if (closed_) return;
    if (ec) {
        rules_->output_failed();
        return follow_rules();
    }
    stats::bump(broker_.counters().bytes_sent, n);
    rules_->written(clock::now());  // gathers more deliveries into the output
    // A connection gone quiet keeps no large buffer.
    if (!rules_->has_output() && writing_.capacity() > 4096) std::string().swap(writing_);
    start_write();
}

// ---------------------------------------------------------------- deadlines and the end

connection::clock::time_point connection::deadline() const noexcept {
    return closed_ ? clock::time_point::max() : rules_->deadline();
}

void connection::on_deadline(clock::time_point now) {
    if (closed_ || now < deadline()) return;
    rules_->tick(now);
    follow_rules();
}

void connection::end_connection() {
    if (closed_) return;
    closed_ = true;
    read_active_ = false;
    decoder_.trim(0);
    transport_->close();
    if (set_) set_->remove(*this);  // last: may destroy this connection
}

}  // namespace mqttd
