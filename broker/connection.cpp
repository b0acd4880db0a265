#include "broker/connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "broker/broker.hpp"
#include "broker/log.hpp"
#include "protocol/encoder.hpp"
#include "protocol/topic.hpp"
#include "protocol/utf8.hpp"

namespace mqttd {

namespace asio = boost::asio;
using asio::awaitable;
using mqtt::reason_code;
constexpr auto nothrow_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

// The largest batch of deliveries moved into one write.
constexpr std::size_t write_batch_bytes = 256 * 1024;
// How long a closing connection may take to flush before its socket is closed anyway.
constexpr auto close_grace = std::chrono::seconds(5);

mqtt::properties forwarded_properties(const mqtt::properties& in) {
    mqtt::properties out;
    for (const auto& p : in)
        if (p.id != mqtt::property_id::topic_alias && p.id != mqtt::property_id::subscription_identifier)
            out.add(p.id, p.value);
    return out;
}

std::string assigned_client_id(broker& b) { return "mqttd-" + b.next_msgid(); }

}  // namespace

connection::connection(broker& b, std::unique_ptr<transport> t)
    : broker_(b),
      transport_(std::move(t)),
      executor_(transport_->executor()),
      decoder_(b.options().max_packet_size),
      write_signal_(executor_),
      resume_signal_(executor_),
      keepalive_timer_(executor_) {}

connection::~connection() = default;

void connection::start() {
    last_rx_ = clock::now();
    keepalive_limit_ = broker_.options().connect_timeout;
    auto self = shared_from_this();
    asio::co_spawn(executor_, [self] { return self->read_loop(); }, asio::detached);
    asio::co_spawn(executor_, [self] { return self->write_loop(); }, asio::detached);
    asio::co_spawn(executor_, [self] { return self->keepalive_loop(); }, asio::detached);
}

void connection::wake() {
    if (wake_posted_.exchange(true)) return;
    asio::post(executor_, [self = shared_from_this()] {
        self->wake_posted_ = false;
        self->pull_from_session();
    });
}

void connection::taken_over() {
    asio::post(executor_, [self = shared_from_this()] {
        if (self->closing_ || self->closed_) return;
        log::info("client {} taken over by a new connection", self->client_.clientid);
        self->close(reason_code::session_taken_over);
    });
}

void connection::shutdown() {
    asio::post(executor_, [self = shared_from_this()] {
        if (self->closing_ || self->closed_) return;
        self->will_.reset();
        self->close(reason_code::server_shutting_down);
    });
}

// ---------------------------------------------------------------- loops

awaitable<void> connection::read_loop() {
    const std::size_t max_pending_acks = std::max<std::size_t>(broker_.options().max_inflight, 16);
    constexpr std::size_t min_read_size = 256;
    constexpr std::size_t max_read_size = 64 * 1024;
    std::size_t read_size = min_read_size;
    while (!closing_ && !closed_) {
        // Back-pressure: while the hooks hold many of this publisher's acks, stop
        // reading, so the client (and TCP) waits instead of the broker buffering.
        while (pending_acks_.size() >= max_pending_acks && !closing_ && !closed_) co_await resume_signal_.wait();
        if (closing_ || closed_) break;
        auto space = decoder_.prepare(read_size);
        auto [ec, n] = co_await transport_->read_some(asio::buffer(space.data(), space.size()));
        decoder_.commit(ec ? 0 : n);
        if (ec) break;
        // Reads that fill the buffer ask for a bigger one; small reads let it shrink back,
        // so idle connections hold little memory and busy ones read in large chunks.
        if (n == read_size && read_size < max_read_size) read_size *= 2;
        else if (n < read_size / 4 && read_size > min_read_size) read_size /= 2;
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
        decoder_.trim(2 * read_size);
    }
    if (!closing_) close(std::nullopt);  // the network went away: the will is due
    finish();
}

awaitable<void> connection::write_loop() {
    std::string writing;
    for (;;) {
        if (out_.empty()) {
            if (closing_ || closed_) break;
            co_await write_signal_.wait();
            continue;
        }
        writing.clear();
        std::swap(writing, out_);
        auto [ec, n] = co_await transport_->write(asio::buffer(writing));
        if (ec) break;
        stats::bump(broker_.counters().bytes_sent, n);
        pull_from_session();
    }
    write_loop_done_ = true;
    closed_ = true;
    transport_->close();
    resume_signal_.notify();
    keepalive_timer_.cancel();
}

awaitable<void> connection::keepalive_loop() {
    for (;;) {
        if (closed_) co_return;
        if (closing_) {
            // Give the writer a bounded time to flush, then close regardless.
            keepalive_timer_.expires_after(close_grace);
            co_await keepalive_timer_.async_wait(nothrow_awaitable);
            if (!write_loop_done_) transport_->close();
            co_return;
        }
        if (keepalive_limit_ == clock::duration::zero()) {
            keepalive_timer_.expires_at(clock::time_point::max());
        } else {
            auto deadline = last_rx_ + keepalive_limit_;
            if (clock::now() >= deadline) {
                log::info("client {} keep-alive timeout", client_.clientid.empty() ? "(connecting)" : client_.clientid);
                if (connected_)
                    close(reason_code::keep_alive_timeout);
                else
                    close(std::nullopt);
                continue;
            }
            keepalive_timer_.expires_at(deadline);
        }
        co_await keepalive_timer_.async_wait(nothrow_awaitable);
    }
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
    send(ack);
    will_.reset();
    close(std::nullopt);
}

void connection::on_connect(mqtt::connect& c) {
    const auto& o = broker_.options();
    version_ = c.version;
    client_.version = c.version;
    client_.username = c.username.value_or("");

    bool assigned = false;
    if (c.client_id.empty()) {
        // 3.1.1 [MQTT-3.1.3-8]: a zero-length id needs a clean session.
        if (!v5() && !c.clean_start) return refuse_connect(reason_code::client_identifier_not_valid);
        c.client_id = assigned_client_id(broker_);
        assigned = true;
    } else if (c.client_id.size() > o.max_clientid_len ||
               (c.version == mqtt::protocol_version::v31 && c.client_id.size() > 23)) {
        return refuse_connect(reason_code::client_identifier_not_valid);
    }
    if (!authenticate(c)) {
        return refuse_connect(c.username && !o.passwords.empty() ? reason_code::bad_user_name_or_password
                                                                 : reason_code::not_authorized);
    }
    if (c.props.find(mqtt::property_id::authentication_method)) {
        return refuse_connect(reason_code::bad_authentication_method);
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
        client_max_packet_ = c.props.integer(mqtt::property_id::maximum_packet_size).value_or(0);
        receive_maximum_ = o.max_inflight;
    } else {
        expiry = c.clean_start ? 0 : o.session_expiry_interval;
        send_window_ = o.max_inflight;
    }
    if (c.will) {
        if (c.will->qos > static_cast<mqtt::qos>(o.max_qos_allowed))
            return refuse_connect(reason_code::qos_not_supported);
        if (c.will->retain && !o.retain_available) return refuse_connect(reason_code::retain_not_supported);
        will_ = std::move(c.will);
    }

    session_limits limits{o.max_inflight, o.max_mqueue_len, o.max_mqueue_bytes, o.mqueue_store_qos0};
    auto opened = broker_.sessions().open(client_.clientid, c.clean_start, expiry, limits, weak_from_this());
    session_ = opened.s;
    generation_ = opened.generation;
    if (auto previous = opened.previous_owner.lock()) previous->taken_over();
    connected_ = true;
    keepalive_timer_.cancel();  // re-armed for the client's keep-alive instead of the connect timeout
    stats::bump(broker_.counters().clients_total);
    broker_.counters().clients_connected.fetch_add(1, std::memory_order_relaxed);

    mqtt::connack ack;
    ack.session_present = opened.present;
    if (v5()) {
        using mqtt::property_id;
        if (assigned) ack.props.add(property_id::assigned_client_identifier, client_.clientid);
        if (keep_alive != c.keep_alive) ack.props.add(property_id::server_keep_alive, std::uint32_t{keep_alive});
        ack.props.add(property_id::receive_maximum, std::uint32_t{receive_maximum_});
        if (o.max_qos_allowed < 2) ack.props.add(property_id::maximum_qos, std::uint32_t{o.max_qos_allowed});
        if (!o.retain_available) ack.props.add(property_id::retain_available, std::uint32_t{0});
        ack.props.add(property_id::maximum_packet_size, o.max_packet_size);
        ack.props.add(property_id::topic_alias_maximum, std::uint32_t{o.max_topic_alias});
        if (!o.wildcard_subscription) ack.props.add(property_id::wildcard_subscription_available, std::uint32_t{0});
        if (!o.shared_subscription) ack.props.add(property_id::shared_subscription_available, std::uint32_t{0});
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
                auto it = topic_aliases_.find(static_cast<std::uint16_t>(*alias));
                if (it == topic_aliases_.end()) return close(reason_code::protocol_error);
                p.topic = it->second;
            } else {
                topic_aliases_[static_cast<std::uint16_t>(*alias)] = p.topic;
            }
        }
        if (p.qos != mqtt::qos::at_most_once &&
            pending_acks_.size() + session_->incoming_qos2_count() >= receive_maximum_)
            return close(reason_code::receive_maximum_exceeded);
    }
    if (p.qos > static_cast<mqtt::qos>(o.max_qos_allowed)) return close(reason_code::qos_not_supported);
    if (p.retain && !o.retain_available) return close(reason_code::retain_not_supported);

    if (o.max_topic_levels && mqtt::topic_levels(p.topic) > o.max_topic_levels)
        return close(reason_code::topic_name_invalid);

    const auto type = p.qos == mqtt::qos::exactly_once ? mqtt::packet_type::pubrec : mqtt::packet_type::puback;
    if (p.qos == mqtt::qos::exactly_once) {
        switch (session_->begin_incoming_qos2(p.packet_id, o.max_awaiting_rel, o.await_rel_timeout)) {
            case session::incoming_qos2::fresh: break;
            case session::incoming_qos2::duplicate:
                // The same QoS 2 message again before PUBREL: acknowledge, do not route twice.
                queue_ack(p.packet_id, type, std::make_shared<bool>(true));
                return;
            case session::incoming_qos2::too_many: return close(reason_code::receive_maximum_exceeded);
        }
    }

    auto m = std::make_shared<message>();
    m->topic = std::move(p.topic);
    m->payload = std::move(p.payload);
    m->qos = p.qos;
    m->retain = p.retain;
    if (v5()) m->props = forwarded_properties(p.props);
    m->msgid = broker_.next_msgid();
    m->sender = client_.clientid;
    m->username = client_.username;
    m->timestamp = std::chrono::system_clock::now();
    if (auto expiry = p.props.integer(mqtt::property_id::message_expiry_interval))
        m->expires_at = clock::now() + std::chrono::seconds(*expiry);
    message_ptr msg = std::move(m);

    stats::bump(broker_.counters().messages_received);
    stats::bump(broker_.counters().publish_received);
    // The message.publish hook before routing: what a handler queues for the message (its
    // row) comes before anything a subscriber's acknowledgement of it can queue.
    const bool held = p.qos != mqtt::qos::at_most_once && broker_.hooks().has(hookpoint::message_publish);
    if (p.qos == mqtt::qos::at_most_once) {
        broker_.hooks().message_publish(client_, msg, nullptr);
    } else if (held) {
        auto released = std::make_shared<bool>(false);
        auto hold = std::make_shared<publish_token>(
            [weak = weak_from_this(), released, ex = executor_] {
                asio::post(ex, [weak, released] {
                    *released = true;
                    if (auto self = weak.lock()) self->flush_acks();
                });
            });
        queue_ack(p.packet_id, type, released);
        broker_.hooks().message_publish(client_, msg, hold);
    }
    // Clients may not publish into the broker's own $SYS tree.
    if (!msg->topic.starts_with("$SYS")) {
        if (msg->retain) broker_.retained().set(msg);
        broker_.router().route(msg, session_.get());
    }
    if (p.qos != mqtt::qos::at_most_once && !held) queue_ack(p.packet_id, type, std::make_shared<bool>(true));
}

void connection::queue_ack(std::uint16_t id, mqtt::packet_type type, const std::shared_ptr<bool>& released) {
    pending_acks_.push_back({id, type, released});
    flush_acks();
}

void connection::flush_acks() {
    bool sent = false;
    while (!pending_acks_.empty() && *pending_acks_.front().released) {
        const auto& a = pending_acks_.front();
        if (a.type == mqtt::packet_type::pubrec)
            send(mqtt::pubrec{{a.id}});
        else
            send(mqtt::puback{{a.id}});
        pending_acks_.pop_front();
        sent = true;
    }
    if (sent) resume_signal_.notify();
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
    if (auto msg = session_->pubrec(a.packet_id)) {
        broker_.hooks().message_acked({client_, msg});
        send(mqtt::pubrel{{a.packet_id}});
    } else {
        mqtt::pubrel rel{{a.packet_id}};
        if (v5()) rel.reason = reason_code::packet_identifier_not_found;
        send(rel);
    }
}

void connection::on_pubrel(const mqtt::pubrel& a) {
    mqtt::pubcomp comp{{a.packet_id}};
    if (!session_->release_incoming_qos2(a.packet_id) && v5()) comp.reason = reason_code::packet_identifier_not_found;
    send(comp);
}

void connection::on_pubcomp(const mqtt::pubcomp& a) {
    if (session_->pubcomp(a.packet_id)) pull_from_session();
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
    if (!(v5() && d.reason == reason_code::disconnect_with_will)) will_.reset();
    close(std::nullopt);
}

// ---------------------------------------------------------------- output

void connection::send(const mqtt::packet& p) {
    if (closed_) return;
    mqtt::encode(p, version_, out_);
    write_signal_.notify();
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
    if (v5()) {
        p.props = m.props;
        for (auto id : po.out.subscription_ids) p.props.add(mqtt::property_id::subscription_identifier, id);
        if (m.expires_at) {
            auto left = std::chrono::ceil<std::chrono::seconds>(*m.expires_at - clock::now()).count();
            p.props.set(mqtt::property_id::message_expiry_interval, static_cast<std::uint32_t>(std::max<long>(left, 0)));
        }
        if (client_max_packet_ && mqtt::encoded_size(p, version_) > client_max_packet_) {
            // [MQTT-3.1.2-25]: too large for the client: discard as if it had been sent.
            stats::bump(broker_.counters().messages_dropped);
            if (p.qos == mqtt::qos::at_least_once) session_->puback(p.packet_id);
            if (p.qos == mqtt::qos::exactly_once && session_->pubrec(p.packet_id)) session_->pubcomp(p.packet_id);
            return;
        }
    }
    mqtt::encode(p, version_, out_);
    stats::bump(broker_.counters().messages_sent);
    stats::bump(broker_.counters().publish_sent);
    write_signal_.notify();
    if (broker_.hooks().has(hookpoint::message_delivered)) broker_.hooks().message_delivered({client_, po.out.msg});
}

// ---------------------------------------------------------------- closing

void connection::close(std::optional<reason_code> reason) {
    if (closing_ || closed_) return;
    if (reason && connected_ && v5()) {
        mqtt::disconnect d;
        d.reason = *reason;
        send(d);
    }
    closing_ = true;
    write_signal_.notify();
    resume_signal_.notify();
    keepalive_timer_.cancel();
}

void connection::publish_will() {
    if (!will_) return;
    auto m = std::make_shared<message>();
    m->topic = std::move(will_->topic);
    m->payload = std::move(will_->payload);
    m->qos = will_->qos;
    m->retain = will_->retain;
    if (v5()) m->props = forwarded_properties(will_->props);
    m->msgid = broker_.next_msgid();
    m->sender = client_.clientid;
    m->username = client_.username;
    m->timestamp = std::chrono::system_clock::now();
    if (auto expiry = will_->props.integer(mqtt::property_id::message_expiry_interval))
        m->expires_at = clock::now() + std::chrono::seconds(*expiry);
    will_.reset();
    message_ptr msg = std::move(m);
    broker_.hooks().message_publish(client_, msg, nullptr);  // before routing, as in on_publish
    if (msg->retain) broker_.retained().set(msg);
    broker_.router().route(msg, nullptr);
}

void connection::finish() {
    if (finished_) return;
    finished_ = true;
    broker_.remove_connection(this);
    if (!connected_) return;
    publish_will();
    broker_.counters().clients_connected.fetch_sub(1, std::memory_order_relaxed);
    broker_.sessions().release(session_, generation_);
    broker_.hooks().client_disconnected(client_);
    log::debug("client {} disconnected", client_.clientid);
}

}  // namespace mqttd
