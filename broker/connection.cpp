#include "broker/connection.hpp"

#include <boost/asio/post.hpp>

#include "broker/broker.hpp"
#include "broker/connection_set.hpp"
#include "broker/log.hpp"
#include "protocol/encoder.hpp"
#include "protocol/topic.hpp"
#include "protocol/utf8.hpp"

namespace mqttd {

namespace asio = boost::asio;
using mqtt::reason_code;

namespace {

constexpr std::uint32_t min_read_size = 256;
constexpr std::uint32_t max_read_size = 64 * 1024;
// The largest batch of deliveries moved into one write.
constexpr std::size_t write_batch_bytes = 256 * 1024;
// How long a closing connection may take to flush before its socket is closed anyway.
constexpr auto close_grace = std::chrono::seconds(5);

// What a PUBLISH or a will passes on to receivers: not the sender's topic alias,
// subscription identifiers (the receiver's own are added) or Will Delay Interval.
mqtt::properties forwarded_properties(const mqtt::properties& in) {
    using mqtt::property_id;
    mqtt::properties out;
    for (const auto& p : in)
        if (p.id != property_id::topic_alias && p.id != property_id::subscription_identifier &&
            p.id != property_id::will_delay_interval)
            out.add(p.id, p.value);
    return out;
}

// Payload Format Indicator 1 promises UTF-8 (spec 3.3.2.3.2); the broker checks the promise.
bool payload_format_broken(const mqtt::properties& props, const mqtt::shared_payload& payload) {
    return props.integer(mqtt::property_id::payload_format_indicator).value_or(0) == 1 &&
           !mqtt::valid_utf8(payload.view());
}

std::string assigned_client_id(broker& b) { return "mqttd-" + b.next_msgid(); }

// Response Information for a client that asks (Request Response Information 1): a topic
// prefix of its own, on which to receive responses.
std::string response_information(const std::string& clientid) { return "response/" + clientid; }

}  // namespace

connection::connection(broker& b, std::unique_ptr<transport> t)
    : broker_(b),
      transport_(std::move(t)),
      decoder_(b.options().max_packet_size),
      read_size_(min_read_size) {}

connection::~connection() = default;

void connection::start(connection_set& set) {
    set_ = &set;
    set.add(shared_from_this());
    last_rx_ = clock::now();
    keepalive_limit_ = broker_.options().connect_timeout;
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
        self->flush_acks();
        self->pull_from_session();
    });
}

void connection::taken_over() {
    asio::post(executor(), [self = shared_from_this()] {
        if (self->closing_ || self->closed_) return;
        log::info("client {} taken over by a new connection", self->client_.clientid);
        self->close(reason_code::session_taken_over);
    });
}

void connection::shutdown() {
    asio::post(executor(), [self = shared_from_this()] { self->shutdown_now(); });
}

void connection::shutdown_now() {
    if (closing_ || closed_) return;
    will_.reset();
    close(reason_code::server_shutting_down);
}

// ---------------------------------------------------------------- reading

std::size_t connection::max_pending_acks() const noexcept {
    return std::max<std::size_t>(broker_.options().max_inflight, 16);
}

void connection::arm_read() {
    transport_->async_wait_readable(shared_from_this());
}

void connection::on_readable(const boost::system::error_code& ec) {
    if (ec || closing_ || closed_) return reading_stopped();
    read_available();
}

void connection::read_available() {
    // A turn reads at most this much, then yields, so that one busy client cannot keep
    // the others of its thread waiting.
    std::size_t budget = 4 * max_read_size;
    for (;;) {
        if (closing_ || closed_) return reading_stopped();
        // Back-pressure: while the hooks hold many of this publisher's acks, stop
        // reading, so the client (and TCP) waits instead of the broker buffering.
        if (pending_acks_.size() >= max_pending_acks()) {
            read_active_ = false;
            decoder_.trim(0);
            return;
        }
        auto space = decoder_.prepare(read_size_);
        boost::system::error_code ec;
        const auto n = transport_->read_now(asio::buffer(space.data(), space.size()), ec);
        decoder_.commit(n);
        if (ec == asio::error::would_block || ec == asio::error::try_again) {
            // Drained. A connection reading little keeps no buffer while idle; a busy one
            // keeps its (empty) buffer rather than allocate and clear it every turn.
            decoder_.trim(read_size_ > min_read_size ? 2 * std::size_t{read_size_} : 0);
            return arm_read();
        }
        if (ec) return reading_stopped();
        // Reads that fill the buffer ask for a bigger one; small reads let it shrink back.
        if (n == read_size_ && read_size_ < max_read_size) read_size_ *= 2;
        else if (n < read_size_ / 4 && read_size_ > min_read_size) read_size_ /= 2;
        stats::bump(broker_.counters().bytes_received, n);
        last_rx_ = clock::now();
        while (!closing_ && !closed_) {
            std::error_code derr;
            auto p = decoder_.next(derr);
            if (derr) {
                on_decode_error(derr);
                break;
            }
            if (!p) break;
            on_packet(*p);
        }
        if (n >= budget) {
            asio::post(executor(), [self = shared_from_this()] { self->read_available(); });
            return;
        }
        budget -= n;
    }
}

void connection::reading_stopped() {
    read_active_ = false;
    decoder_.trim(0);
    if (!closing_) close(std::nullopt);  // the network went away: the will is due
    finish();
}

// ---------------------------------------------------------------- writing

void connection::schedule_write() {
    if (write_active_ || write_posted_ || writes_done_) return;
    write_posted_ = true;
    asio::post(executor(), [self = shared_from_this()] {
        self->write_posted_ = false;
        self->start_write();
    });
}

void connection::start_write() {
    if (write_active_ || writes_done_) return;
    if (out_.empty()) {
        if (closing_ || closed_) writes_ended();
        return;
    }
    writing_.clear();
    std::swap(writing_, out_);
    write_active_ = true;
    transport_->async_write(asio::buffer(writing_), shared_from_this());
}

void connection::on_written(const boost::system::error_code& ec, std::size_t n) {
    if (ec) {
        write_active_ = false;
        return writes_ended();
    }
    stats::bump(broker_.counters().bytes_sent, n);
    pull_from_session();  // while write_active_: gathers into out_ without posting
    write_active_ = false;
    // A connection gone quiet keeps no large buffer.
    if (out_.empty() && writing_.capacity() > 4096) std::string().swap(writing_);
    start_write();
}

void connection::writes_ended() {
    writes_done_ = true;
    closed_ = true;
    transport_->close();
    if (!read_active_) reading_stopped();  // reading was paused: nothing else will finish
}

// ---------------------------------------------------------------- deadlines

connection::clock::time_point connection::deadline() const noexcept {
    if (closed_) return clock::time_point::max();
    if (closing_) return closing_at_ + close_grace;
    if (keepalive_limit_ == clock::duration::zero()) return clock::time_point::max();
    // Not reading while the hooks hold this publisher's acks: the silence is the broker's.
    if (!read_active_) return clock::time_point::max();
    return last_rx_ + keepalive_limit_;
}

void connection::on_deadline(clock::time_point now) {
    if (closed_ || now < deadline()) return;
    if (closing_) {
        // The writer had its time to flush: close regardless.
        transport_->close();
        return;
    }
    log::info("client {} keep-alive timeout", client_.clientid.empty() ? "(connecting)" : client_.clientid);
    close(connected_ ? std::optional(reason_code::keep_alive_timeout) : std::nullopt);
}

// ---------------------------------------------------------------- dispatch

void connection::on_decode_error(std::error_code ec) {
    auto rc = mqtt::to_reason_code(ec);
    log::debug("client {}: protocol violation: {}", client_.clientid, mqtt::to_string(rc));
    if (!connected_) {
        auto v = decoder_.version();
        if (v == mqtt::protocol_version::v5) {
            version_ = *v;
            refuse_connect(rc);
        } else if (rc == reason_code::unsupported_protocol_version) {
            // 3.1.1 [MQTT-3.1.2-2]: answer an unsupported level with return code 0x01.
            version_ = mqtt::protocol_version::v311;
            refuse_connect(rc);
        } else {
            close(std::nullopt);
        }
        return;
    }
    close(rc);
}

void connection::on_packet(mqtt::packet& p) {
    if (!connected_) {
        if (auto* c = std::get_if<mqtt::connect>(&p)) {
            on_connect(*c);
        } else {
            close(std::nullopt);  // [MQTT-3.1.0-1] the first packet must be CONNECT
        }
        return;
    }
    std::visit(
        [this](auto& pkt) {
            using T = std::decay_t<decltype(pkt)>;
            if constexpr (std::is_same_v<T, mqtt::publish>) {
                on_publish(pkt);
            } else if constexpr (std::is_same_v<T, mqtt::puback>) {
                on_puback(pkt);
            } else if constexpr (std::is_same_v<T, mqtt::pubrec>) {
                on_pubrec(pkt);
            } else if constexpr (std::is_same_v<T, mqtt::pubrel>) {
                on_pubrel(pkt);
            } else if constexpr (std::is_same_v<T, mqtt::pubcomp>) {
                on_pubcomp(pkt);
            } else if constexpr (std::is_same_v<T, mqtt::subscribe>) {
                on_subscribe(pkt);
            } else if constexpr (std::is_same_v<T, mqtt::unsubscribe>) {
                on_unsubscribe(pkt);
            } else if constexpr (std::is_same_v<T, mqtt::pingreq>) {
                send(mqtt::pingresp{});
            } else if constexpr (std::is_same_v<T, mqtt::disconnect>) {
                on_disconnect(pkt);
            } else {
                // A second CONNECT [MQTT-3.1.0-2], a server-to-client packet, or AUTH
                // without an authentication method in CONNECT.
                close(reason_code::protocol_error);
            }
        },
        p);
}

// ---------------------------------------------------------------- CONNECT

bool connection::authenticate(const mqtt::connect& c) const {
    const auto& o = broker_.options();
    if (!c.username) return o.allow_anonymous;
    auto it = o.passwords.find(*c.username);
    if (it == o.passwords.end()) return o.allow_anonymous && o.passwords.empty();
    return c.password && *c.password == it->second;
}

void connection::refuse_connect(reason_code rc) {
    mqtt::connack ack;
    ack.reason = v5() ? static_cast<std::uint8_t>(rc) : static_cast<std::uint8_t>(mqtt::to_v311_connack(rc));
    explain(ack, rc, false);
    send(ack);
    will_.reset();
    close(std::nullopt);
}

void connection::on_connect(mqtt::connect& c) {
    const auto& o = broker_.options();
    version_ = c.version;
    client_.version = c.version;
    client_.username = c.username.value_or("");
    if (v5()) {
        client_max_packet_ = c.props.integer(mqtt::property_id::maximum_packet_size).value_or(0);
        problem_info_ = c.props.integer(mqtt::property_id::request_problem_information).value_or(1) != 0;
    }

    bool assigned = false;
    if (c.client_id.empty()) {
        // 3.1.1 [MQTT-3.1.3-8]: a zero-length id needs a clean session; MQTT 3.1 wants
        // 1 to 23 characters, whatever the session (its CONNACK return code 2).
        if ((!v5() && !c.clean_start) || c.version == mqtt::protocol_version::v31)
            return refuse_connect(reason_code::client_identifier_not_valid);
        c.client_id = assigned_client_id(broker_);
        assigned = true;
    } else if (c.client_id.size() > o.max_clientid_len ||
               (c.version == mqtt::protocol_version::v31 && c.client_id.size() > 23)) {
        return refuse_connect(reason_code::client_identifier_not_valid);
    }
    // Enhanced authentication: this broker offers no method, so any is refused.
    if (c.props.find(mqtt::property_id::authentication_method)) {
        return refuse_connect(reason_code::bad_authentication_method);
    }
    if (!authenticate(c)) {
        return refuse_connect(c.username && !o.passwords.empty() ? reason_code::bad_user_name_or_password
                                                                 : reason_code::not_authorized);
    }
    client_.clientid = c.client_id;
    client_.connected_at = std::chrono::system_clock::now();

    std::uint16_t keep_alive = c.keep_alive;
    if (v5() && o.server_keepalive) keep_alive = o.server_keepalive;
    keepalive_limit_ = keep_alive == 0 ? clock::duration::zero()
                                       : std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(
                                             keep_alive * o.keepalive_backoff * 2));

    std::uint32_t expiry = 0;
    if (v5()) {
        expiry = std::min(c.props.integer(mqtt::property_id::session_expiry_interval).value_or(0),
                          o.session_expiry_interval);
        auto rm = c.props.integer(mqtt::property_id::receive_maximum).value_or(65535);
        send_window_ = static_cast<std::uint16_t>(std::min<std::uint32_t>(rm, o.max_inflight));
        receive_maximum_ = o.max_inflight;
        const auto out_max = std::min<std::uint32_t>(
            c.props.integer(mqtt::property_id::topic_alias_maximum).value_or(0), o.max_topic_alias_out);
        if (out_max > 0) aliases_out_ = std::make_unique<outbound_aliases>(static_cast<std::uint16_t>(out_max));
    } else {
        expiry = c.clean_start ? 0 : o.session_expiry_interval;
        send_window_ = o.max_inflight;
    }
    if (c.will) {
        if (c.will->qos > static_cast<mqtt::qos>(o.max_qos_allowed))
            return refuse_connect(reason_code::qos_not_supported);
        if (c.will->retain && !o.retain_available) return refuse_connect(reason_code::retain_not_supported);
        if (v5() && payload_format_broken(c.will->props, c.will->payload))
            return refuse_connect(reason_code::payload_format_invalid);
        will_delay_ = c.will->props.integer(mqtt::property_id::will_delay_interval).value_or(0);
        will_ = std::make_unique<mqtt::will_message>(std::move(*c.will));
    }

    session_limits limits{o.max_inflight, o.max_mqueue_len, o.max_mqueue_bytes, o.mqueue_store_qos0};
    auto opened = broker_.sessions().open(client_.clientid, c.clean_start, expiry, limits, weak_from_this());
    session_ = opened.s;
    generation_ = opened.generation;
    if (auto previous = opened.previous_owner.lock()) previous->taken_over();
    connected_ = true;
    stats::bump(broker_.counters().clients_total);
    broker_.counters().clients_connected.fetch_add(1, std::memory_order_relaxed);

    mqtt::connack ack;
    ack.session_present = opened.present;
    if (v5()) {
        using mqtt::property_id;
        if (assigned) ack.props.add(property_id::assigned_client_identifier, client_.clientid);
        // Capped by mqtt.session_expiry_interval: the client is told the interval in force.
        if (expiry != c.props.integer(property_id::session_expiry_interval).value_or(0))
            ack.props.add(property_id::session_expiry_interval, expiry);
        if (keep_alive != c.keep_alive) ack.props.add(property_id::server_keep_alive, std::uint32_t{keep_alive});
        ack.props.add(property_id::receive_maximum, std::uint32_t{receive_maximum_});
        if (o.max_qos_allowed < 2) ack.props.add(property_id::maximum_qos, std::uint32_t{o.max_qos_allowed});
        if (!o.retain_available) ack.props.add(property_id::retain_available, std::uint32_t{0});
        ack.props.add(property_id::maximum_packet_size, o.max_packet_size);
        ack.props.add(property_id::topic_alias_maximum, std::uint32_t{o.max_topic_alias});
        if (!o.wildcard_subscription) ack.props.add(property_id::wildcard_subscription_available, std::uint32_t{0});
        if (!o.shared_subscription) ack.props.add(property_id::shared_subscription_available, std::uint32_t{0});
        if (c.props.integer(property_id::request_response_information).value_or(0) == 1) {
            ack.props.add(property_id::response_information, response_information(client_.clientid));
            // Optional, so left out rather than exceed the client's Maximum Packet Size.
            if (client_max_packet_ && mqtt::encoded_size(ack, version_) > client_max_packet_)
                ack.props.erase(property_id::response_information);
        }
    }
    send(ack);
    log::debug("client {} connected (v{}, clean {}, present {})", client_.clientid, static_cast<int>(version_),
               c.clean_start, opened.present);

    // Resume what was in flight [MQTT-4.4.0-1]: PUBLISH again with DUP, PUBREL again.
    std::vector<session::publish_out> publishes;
    std::vector<std::uint16_t> pubrels;
    session_->in_flight(publishes, pubrels);
    for (const auto& po : publishes) append_publish(po);
    for (auto id : pubrels) send(mqtt::pubrel{{id}});
    pull_from_session();

    broker_.hooks().client_connected(client_);
}

// ---------------------------------------------------------------- PUBLISH from the client

void connection::on_publish(mqtt::publish& p) {
    const auto& o = broker_.options();
    if (v5()) {
        if (auto alias = p.props.integer(mqtt::property_id::topic_alias)) {
            if (*alias == 0 || *alias > o.max_topic_alias) return close(reason_code::topic_alias_invalid);
            if (p.topic.empty()) {
                if (!topic_aliases_) return close(reason_code::protocol_error);
                auto it = topic_aliases_->find(static_cast<std::uint16_t>(*alias));
                if (it == topic_aliases_->end()) return close(reason_code::protocol_error);
                p.topic = it->second;
            } else {
                if (!topic_aliases_) topic_aliases_ = std::make_unique<std::unordered_map<std::uint16_t, std::string>>();
                (*topic_aliases_)[static_cast<std::uint16_t>(*alias)] = p.topic;
            }
        }
        // QoS 1 not yet PUBACKed and QoS 2 not yet PUBCOMPed [MQTT-3.3.4-9]; a held QoS 2
        // message is counted once, in the session's table.
        if (p.qos != mqtt::qos::at_most_once && pending_pubacks_ + session_->incoming_qos2_count() >= receive_maximum_)
            return close(reason_code::receive_maximum_exceeded);
    }
    if (p.qos > static_cast<mqtt::qos>(o.max_qos_allowed)) return close(reason_code::qos_not_supported);
    if (p.retain && !o.retain_available) return close(reason_code::retain_not_supported);

    if (o.max_topic_levels && mqtt::topic_levels(p.topic) > o.max_topic_levels)
        return close(reason_code::topic_name_invalid);

    const auto type = p.qos == mqtt::qos::exactly_once ? mqtt::packet_type::pubrec : mqtt::packet_type::puback;
    if (v5() && payload_format_broken(p.props, p.payload)) {
        // Refused, not routed: QoS 0 has no ack to say so [MQTT-3.3.2.3.2, 4.13].
        if (p.qos == mqtt::qos::at_most_once) return close(reason_code::payload_format_invalid);
        queue_ack(p.packet_id, type, ack_gate::opened(reason_code::payload_format_invalid));
        return;
    }
    const bool held = p.qos != mqtt::qos::at_most_once && broker_.hooks().has(hookpoint::message_publish);
    ack_gate_ptr gate;
    if (p.qos != mqtt::qos::at_most_once) gate = held ? std::make_shared<ack_gate>() : ack_gate::opened();
    if (p.qos == mqtt::qos::exactly_once) {
        switch (session_->begin_incoming_qos2(p.packet_id, o.max_awaiting_rel, o.await_rel_timeout, gate)) {
            case session::incoming_qos2::fresh: break;
            case session::incoming_qos2::duplicate:
                // The same QoS 2 message again before PUBREL, perhaps on a new connection: not
                // routed twice, and answered only once the first copy is stored.
                queue_ack(p.packet_id, type, gate);
                return;
            // The broker's own bound (mqtt.max_awaiting_rel), not the client's Receive Maximum.
            case session::incoming_qos2::too_many: return close(reason_code::quota_exceeded);
        }
    }

    auto m = make_message(std::move(p.topic), std::move(p.payload), p.qos, p.retain, p.props);
    if (auto expiry = p.props.integer(mqtt::property_id::message_expiry_interval))
        m->expires_at = clock::now() + std::chrono::seconds(*expiry);
    message_ptr msg = std::move(m);

    stats::bump(broker_.counters().messages_received);
    stats::bump(broker_.counters().publish_received);
    if (gate) queue_ack(p.packet_id, type, gate);
    // The message.publish hook before routing: what a handler queues for the message (its
    // row) comes before anything a subscriber's acknowledgement of it can queue.
    bool refused = false;
    if (!held) {
        broker_.hooks().message_publish(client_, msg, nullptr);
    } else {
        // Released on the backend's thread once stored (or not): the session's owner then,
        // which may be a later connection answering a resent copy, sends the ack.
        auto hold = std::make_shared<publish_token>([gate, weak = std::weak_ptr<session>(session_)](reason_code rc) {
            gate->open(rc);
            if (auto s = weak.lock())
                if (auto owner = s->owner().lock()) owner->wake();
        });
        broker_.hooks().message_publish(client_, msg, hold);
        // A handler that can tell at once that the message cannot be stored refuses it
        // before anything is acknowledged or routed.
        refused = hold->failed();
    }
    // Clients may not publish into the broker's own $SYS tree.
    if (!refused && !msg->topic.starts_with("$SYS")) {
        if (msg->retain) broker_.retained().set(msg);
        broker_.router().route(msg, session_.get());
    }
}

void connection::queue_ack(std::uint16_t id, mqtt::packet_type type, ack_gate_ptr gate) {
    if (type == mqtt::packet_type::puback) ++pending_pubacks_;
    pending_acks_.push_back({id, type, std::move(gate)});
    flush_acks();
}

void connection::flush_acks() {
    bool sent = false;
    while (!pending_acks_.empty() && pending_acks_.front().gate->is_open()) {
        const auto a = std::move(pending_acks_.front());
        pending_acks_.pop_front();
        if (a.type == mqtt::packet_type::puback) --pending_pubacks_;
        const auto rc = a.gate->reason();
        if (static_cast<std::uint8_t>(rc) >= 0x80) {
            // Not stored. A resent copy must be taken as new, so that it is stored then; a
            // 5.0 PUBREC with a failure also ends the exchange [MQTT-4.3.3].
            if (a.type == mqtt::packet_type::pubrec) session_->release_incoming_qos2(a.id);
            if (!v5()) {
                // 3.1.1 has no negative acknowledgement: close without the ack, so that the
                // client sends the message again [MQTT-3.3.5-2, 4.4.0-1].
                log::warning("client {}: a QoS {} message could not be stored ({}); closing the connection "
                             "without acknowledging it",
                             client_.clientid, a.type == mqtt::packet_type::pubrec ? 2 : 1, mqtt::to_string(rc));
                pending_acks_.clear();
                pending_pubacks_ = 0;
                close(std::nullopt);
                return;
            }
        }
        auto ack = [&](auto packet) {
            packet.packet_id = a.id;
            packet.reason = rc;
            explain(packet, rc, true);
            send(packet);
        };
        if (a.type == mqtt::packet_type::pubrec)
            ack(mqtt::pubrec{});
        else
            ack(mqtt::puback{});
        sent = true;
    }
    if (sent && !read_active_ && !closing_ && !closed_ && !finished_ && pending_acks_.size() < max_pending_acks()) {
        read_active_ = true;
        // The client was not read from: its keep-alive starts again now.
        last_rx_ = clock::now();
        asio::post(executor(), [self = shared_from_this()] { self->read_available(); });
    }
}

// ---------------------------------------------------------------- acks from the client

void connection::on_puback(const mqtt::puback& a) {
    if (auto msg = session_->puback(a.packet_id)) {
        broker_.hooks().message_acked({client_, msg});
        pull_from_session();
    }
}

void connection::on_pubrec(const mqtt::pubrec& a) {
    if (v5() && static_cast<std::uint8_t>(a.reason) >= 0x80) {
        // The client refused the message: the exchange ends here [MQTT-4.3.3].
        if (session_->pubrec(a.packet_id)) session_->pubcomp(a.packet_id);
        pull_from_session();
        return;
    }
    if (session_->pubrec(a.packet_id)) {
        send(mqtt::pubrel{{a.packet_id}});
    } else {
        mqtt::pubrel rel{{a.packet_id}};
        if (v5()) rel.reason = reason_code::packet_identifier_not_found;
        explain(rel, rel.reason, true);
        send(rel);
    }
}

void connection::on_pubrel(const mqtt::pubrel& a) {
    mqtt::pubcomp comp{{a.packet_id}};
    if (!session_->release_incoming_qos2(a.packet_id) && v5()) comp.reason = reason_code::packet_identifier_not_found;
    explain(comp, comp.reason, true);
    send(comp);
}

void connection::on_pubcomp(const mqtt::pubcomp& a) {
    // A QoS 2 message counts as acknowledged at PUBCOMP, not PUBREC: a client may hand it
    // to its application only at PUBREL [MQTT-4.3.3, method B], which a broker killed in
    // between never sends; the offline ack pointer must not pass it before.
    if (auto msg = session_->pubcomp(a.packet_id)) {
        broker_.hooks().message_acked({client_, msg});
        pull_from_session();
    }
}

// ---------------------------------------------------------------- SUBSCRIBE / UNSUBSCRIBE

void connection::on_subscribe(const mqtt::subscribe& s) {
    std::uint32_t sub_id = 0;
    if (v5()) sub_id = s.props.integer(mqtt::property_id::subscription_identifier).value_or(0);
    mqtt::suback ack;
    ack.packet_id = s.packet_id;
    std::vector<subscription_event> events;
    for (const auto& sub : s.subscriptions) {
        auto r = broker_.add_subscription(session_, sub, sub_id, v5());
        ack.reasons.push_back(v5() || r.reason < 0x80 ? r.reason : 0x80);
        if (r.reason < 0x80)
            events.push_back({client_, sub.filter, static_cast<mqtt::qos>(r.reason), r.existed,
                              sub.options.retain_handling, session_.get()});
    }
    for (auto r : ack.reasons) {
        if (r < 0x80) continue;
        explain(ack, static_cast<reason_code>(r), true);  // the first refusal's reason
        break;
    }
    send(ack);
    for (const auto& e : events) broker_.hooks().session_subscribed(e);
}

void connection::on_unsubscribe(const mqtt::unsubscribe& u) {
    mqtt::unsuback ack;
    ack.packet_id = u.packet_id;
    std::vector<subscription_event> events;
    for (const auto& f : u.filters) {
        bool existed = broker_.subscriptions().unsubscribe(session_, f);
        session_->forget_subscription(f);
        if (v5())
            ack.reasons.push_back(static_cast<std::uint8_t>(existed ? reason_code::success
                                                                    : reason_code::no_subscription_existed));
        if (existed) events.push_back({client_, f, mqtt::qos::at_most_once, true, 0, session_.get()});
    }
    send(ack);
    for (const auto& e : events) broker_.hooks().session_unsubscribed(e);
}

// ---------------------------------------------------------------- DISCONNECT

void connection::on_disconnect(const mqtt::disconnect& d) {
    if (v5()) {
        if (auto expiry = d.props.integer(mqtt::property_id::session_expiry_interval)) {
            // [MQTT-3.14.2-2]: a session that ends at disconnect cannot be extended here.
            if (session_->expiry() == 0 && *expiry != 0) return close(reason_code::protocol_error);
            session_->set_expiry(std::min(*expiry, broker_.options().session_expiry_interval));
        }
    }
    // [MQTT-3.1.2-10]: only a normal disconnection (0x00) discards the will; 0x04 asks for
    // it, and so, in effect, does any error the client reports.
    if (!v5() || d.reason == reason_code::success) will_.reset();
    close(std::nullopt);
}

// ---------------------------------------------------------------- output

void connection::send(const mqtt::packet& p) {
    if (closed_) return;
    mqtt::encode(p, version_, out_);
    schedule_write();
}

template <class Packet>
void connection::explain(Packet& p, reason_code rc, bool gated) {
    if (!v5() || static_cast<std::uint8_t>(rc) < 0x80 || (gated && !problem_info_)) return;
    p.props.add(mqtt::property_id::reason_string, std::string(mqtt::to_string(rc)));
    // [MQTT-3.1.2-25]: a Reason String is dropped rather than exceed the client's maximum.
    if (client_max_packet_ && mqtt::encoded_size(p, version_) > client_max_packet_)
        p.props.erase(mqtt::property_id::reason_string);
}

void connection::pull_from_session() {
    if (!session_ || closing_ || closed_ || !connected_) return;
    std::vector<session::publish_out> batch;
    while (out_.size() < write_batch_bytes) {
        batch.clear();
        session_->take(send_window_, 64, batch);
        if (batch.empty()) break;
        for (const auto& po : batch) append_publish(po);
    }
}

void connection::append_publish(const session::publish_out& po) {
    const auto& m = *po.out.msg;
    mqtt::publish p;
    p.topic = m.topic;
    p.payload = m.payload;
    p.qos = po.out.qos;
    p.retain = po.out.retain;
    p.dup = po.dup;
    p.packet_id = po.packet_id;
    outbound_aliases::choice alias;
    if (v5()) {
        p.props = m.props;
        for (auto id : po.out.subscription_ids) p.props.add(mqtt::property_id::subscription_identifier, id);
        if (m.expires_at) {
            auto left = std::chrono::ceil<std::chrono::seconds>(*m.expires_at - clock::now()).count();
            p.props.set(mqtt::property_id::message_expiry_interval, static_cast<std::uint32_t>(std::max<long>(left, 0)));
        }
        if (aliases_out_) alias = aliases_out_->pick(m.topic);
        if (alias.alias) {
            p.props.add(mqtt::property_id::topic_alias, std::uint32_t{alias.alias});
            if (alias.known) p.topic.clear();
        }
        if (client_max_packet_ && mqtt::encoded_size(p, version_) > client_max_packet_) {
            // [MQTT-3.1.2-25]: too large for the client: discard as if it had been sent.
            stats::bump(broker_.counters().messages_dropped);
            if (p.qos == mqtt::qos::at_least_once) session_->puback(p.packet_id);
            if (p.qos == mqtt::qos::exactly_once && session_->pubrec(p.packet_id)) session_->pubcomp(p.packet_id);
            return;
        }
    }
    if (aliases_out_) aliases_out_->use(m.topic, alias);
    mqtt::encode(p, version_, out_);
    stats::bump(broker_.counters().messages_sent);
    stats::bump(broker_.counters().publish_sent);
    schedule_write();
    if (broker_.hooks().has(hookpoint::message_delivered)) broker_.hooks().message_delivered({client_, po.out.msg});
}

// ---------------------------------------------------------------- closing

void connection::close(std::optional<reason_code> reason) {
    if (closing_ || closed_) return;
    if (reason && connected_ && v5()) {
        mqtt::disconnect d;
        d.reason = *reason;
        explain(d, *reason, false);
        send(d);
    }
    closing_ = true;
    closing_at_ = clock::now();
    schedule_write();
    if (!read_active_ && !finished_) reading_stopped();  // reading was paused
}

message_ptr connection::will_message() {
    if (!will_) return nullptr;
    auto m = make_message(std::move(will_->topic), std::move(will_->payload), will_->qos, will_->retain, will_->props);
    will_.reset();
    return m;
}

std::shared_ptr<message> connection::make_message(std::string topic, mqtt::shared_payload payload, mqtt::qos qos,
                                                  bool retain, const mqtt::properties& props) {
    auto m = std::make_shared<message>();
    m->topic = std::move(topic);
    m->payload = std::move(payload);
    m->qos = qos;
    m->retain = retain;
    if (v5()) m->props = forwarded_properties(props);
    m->msgid = broker_.next_msgid();
    m->sender = client_.clientid;
    m->username = client_.username;
    m->timestamp = std::chrono::system_clock::now();
    return m;
}

void connection::finish() {
    if (finished_) return;
    finished_ = true;
    if (connected_) {
        // Still the session's owner (not taken over): shared subscriptions' unacknowledged
        // messages go to other members rather than wait for this client's return.
        if (session_->generation() == generation_) broker_.hand_over_shared(session_);
        broker_.counters().clients_connected.fetch_sub(1, std::memory_order_relaxed);
        broker_.sessions().release(session_, generation_, will_message(), will_delay_);
        broker_.hooks().client_disconnected(client_);
        log::debug("client {} disconnected", client_.clientid);
    }
    if (set_) set_->remove(*this);  // last: may destroy this connection
}

}  // namespace mqttd
