#include "broker/connection_rules.hpp"

#include <algorithm>
#include <utility>

#include "broker/broker.hpp"
#include "broker/log.hpp"
#include "protocol/encoder.hpp"
#include "protocol/topic.hpp"
#include "protocol/utf8.hpp"

namespace mqttd {

using mqtt::reason_code;

namespace {

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

bool is_failure(reason_code rc) { return static_cast<std::uint8_t>(rc) >= 0x80; }

// A client that does not drain what the broker wrote, over the output bound, is closed
// after as long as its keep-alive allows it to stay silent (and never sooner than this).
constexpr std::chrono::seconds min_output_stall{10};
constexpr std::chrono::seconds output_stall_without_keepalive{60};

}  // namespace

connection_rules::connection_rules(broker& b, std::weak_ptr<session_owner> owner, clock::time_point now,
                                   std::string address)
    : broker_(b),
      owner_(std::move(owner)),
      last_rx_(now),
      keepalive_limit_(b.options().connect_timeout) {
    client_.address = std::move(address);
}

// ---------------------------------------------------------------- flow control

std::size_t connection_rules::max_pending_acks() const noexcept {
    return std::max<std::size_t>(broker_.options().max_inflight, 16);
}

bool connection_rules::input_paused() const noexcept {
    // Back-pressure: while the hooks hold many of this publisher's acks, or while much of
    // what the broker answered is unwritten, the client (and TCP) waits instead of the
    // broker buffering.
    return connect_waiting_ || refusal_ || pending_acks_.size() >= max_pending_acks() || unwritten() >= output_bound;
}

bool connection_rules::wants_input() const noexcept {
    if (phase_ == phase::ended) return false;
    if (!open()) return true;  // closing or lingering: read to discard
    return !input_paused();
}

void connection_rules::note_pause(clock::time_point now) {
    const bool paused = open() && input_paused();
    if (paused_ && !paused) last_rx_ = now;
    paused_ = paused;
}

connection_rules::clock::time_point connection_rules::deadline() const noexcept {
    switch (phase_) {
        case phase::ended: return clock::time_point::max();
        case phase::closing: return phase_since_ + close_grace;
        case phase::lingering: return phase_since_ + linger_time;
        default: break;
    }
    if (refusal_) return refuse_at_;
    if (unwritten() >= output_bound) {
        const auto limit = keepalive_limit_ == clock::duration::zero()
                               ? clock::duration(output_stall_without_keepalive)
                               : std::max<clock::duration>(keepalive_limit_, min_output_stall);
        return write_started_ + limit;
    }
    if (keepalive_limit_ == clock::duration::zero()) return clock::time_point::max();
    // Not reading while the hooks hold this publisher's acks: the silence is the broker's.
    // A password check is not: it counts against the connect timeout.
    if (paused_ && phase_ == phase::connected) return clock::time_point::max();
    return last_rx_ + keepalive_limit_;
}

void connection_rules::tick(clock::time_point now) {
    if (phase_ == phase::ended || now < deadline()) return;
    switch (phase_) {
        case phase::closing:
            // The writer had its time to flush: end regardless.
            release_session();
            end();
            return;
        case phase::lingering: end(); return;
        default: break;
    }
    if (refusal_) return refuse_connect(*std::exchange(refusal_, std::nullopt), now);
    const auto who = client_.clientid.empty() ? std::string("(connecting)") : client_.clientid;
    if (unwritten() >= output_bound) {
        log::info("client {} does not read what is sent to it; closing", who);
        // Nothing more can reach it: no DISCONNECT.
        close(std::nullopt, now);
        return;
    }
    log::info("client {} keep-alive timeout", who);
    close(session_ ? std::optional(reason_code::keep_alive_timeout) : std::nullopt, now);
}

// ---------------------------------------------------------------- events from the connection

void connection_rules::received(clock::time_point now) { last_rx_ = now; }

void connection_rules::woken(clock::time_point now) {
    if (connect_waiting_ && password_check_->value != auth::password_checker::verdict::pending) {
        password_checked(now);
        note_pause(now);
        return;
    }
    flush_acks(now);
    pull_from_session(now);
    note_pause(now);
}

void connection_rules::taken_over(clock::time_point now) {
    if (!open()) return;
    log::info("client {} taken over by a new connection", client_.clientid);
    close(reason_code::session_taken_over, now);
}

void connection_rules::shutting_down(clock::time_point now) {
    if (!open()) return;
    will_.reset();
    close(reason_code::server_shutting_down, now);
}

void connection_rules::input_ended() {
    if (phase_ == phase::ended) return;
    // The network went away: the will is due, unless a DISCONNECT already discarded it.
    release_session();
    end();
}

void connection_rules::take_output(std::string& into, clock::time_point now) {
    into.clear();
    std::swap(into, out_);
    writing_ = into.size();
    write_started_ = now;
}

void connection_rules::written(clock::time_point now) {
    writing_ = 0;
    pull_from_session(now);
    note_pause(now);
}

void connection_rules::output_failed() {
    if (phase_ == phase::ended) return;
    out_.clear();
    writing_ = 0;
    release_session();
    end();
}

void connection_rules::flushed(clock::time_point now) {
    if (phase_ != phase::closing) return;
    release_session();
    phase_ = phase::lingering;
    phase_since_ = now;
}

void connection_rules::decode_error(std::error_code ec, std::optional<mqtt::protocol_version> decoded_version,
                                    clock::time_point now) {
    if (!open()) return;
    auto rc = mqtt::to_reason_code(ec);
    log::debug("client {}: protocol violation: {}", client_.clientid, mqtt::to_string(rc));
    if (phase_ == phase::awaiting_connect) {
        if (decoded_version == mqtt::protocol_version::v5) {
            version_ = *decoded_version;
            refuse_connect(rc, now);
        } else if (rc == reason_code::unsupported_protocol_version) {
            // 3.1.1 [MQTT-3.1.2-2]: answer an unsupported level with return code 0x01.
            version_ = mqtt::protocol_version::v311;
            refuse_connect(rc, now);
        } else {
            close(std::nullopt, now);
        }
        return;
    }
    // A second CONNECT is a Protocol Error whatever is wrong inside it [MQTT-3.1.0-2]:
    // "Unsupported Protocol Version" answers a CONNECT and is no DISCONNECT reason.
    if (rc == reason_code::unsupported_protocol_version) rc = reason_code::protocol_error;
    close(rc, now);
}

void connection_rules::packet(mqtt::packet& p, clock::time_point now) {
    if (!open()) return;
    if (phase_ == phase::awaiting_connect) {
        if (auto* c = std::get_if<mqtt::connect>(&p))
            on_connect(*c, now);
        else
            close(std::nullopt, now);  // [MQTT-3.1.0-1] the first packet must be CONNECT
        note_pause(now);
        return;
    }
    std::visit(
        [this, now](auto& pkt) {
            using T = std::decay_t<decltype(pkt)>;
            if constexpr (std::is_same_v<T, mqtt::publish>) {
                on_publish(pkt, now);
            } else if constexpr (std::is_same_v<T, mqtt::puback>) {
                on_puback(pkt, now);
            } else if constexpr (std::is_same_v<T, mqtt::pubrec>) {
                on_pubrec(pkt, now);
            } else if constexpr (std::is_same_v<T, mqtt::pubrel>) {
                on_pubrel(pkt, now);
            } else if constexpr (std::is_same_v<T, mqtt::pubcomp>) {
                on_pubcomp(pkt, now);
            } else if constexpr (std::is_same_v<T, mqtt::subscribe>) {
                on_subscribe(pkt, now);
            } else if constexpr (std::is_same_v<T, mqtt::unsubscribe>) {
                on_unsubscribe(pkt);
            } else if constexpr (std::is_same_v<T, mqtt::pingreq>) {
                send(mqtt::pingresp{});
            } else if constexpr (std::is_same_v<T, mqtt::disconnect>) {
                on_disconnect(pkt, now);
            } else {
                // A second CONNECT [MQTT-3.1.0-2], a server-to-client packet, or AUTH
                // without an authentication method in CONNECT.
                close(reason_code::protocol_error, now);
            }
        },
        p);
    note_pause(now);
}

// ---------------------------------------------------------------- authorization

bool connection_rules::permitted(auth::access a, std::string_view topic) const {
    const auto& o = broker_.options();
    if (!o.acl) return o.acl_nomatch_allow;
    const auth::acl_client who{client_.username, client_.clientid, client_.address};
    switch (auth::check_acl(*o.acl, who, a, topic)) {
        case auth::acl_verdict::allow: return true;
        case auth::acl_verdict::deny: return false;
        case auth::acl_verdict::no_match: break;
    }
    return o.acl_nomatch_allow;
}

// ---------------------------------------------------------------- CONNECT

void connection_rules::password_checked(clock::time_point now) {
    auto c = std::move(connect_waiting_);
    const auto verdict = password_check_->value.load();
    password_check_.reset();
    using v = auth::password_checker::verdict;
    if (verdict == v::busy) return refuse_connect(reason_code::server_busy, now);
    if (verdict != v::accepted) {
        log::info("client {}: wrong password for user {}", c->client_id, client_.username);
        return refuse_later(reason_code::bad_user_name_or_password, now);
    }
    accept_connect(*c, now);
}

void connection_rules::refuse_later(reason_code rc, clock::time_point now) {
    refusal_ = rc;
    refuse_at_ = now + refusal_delay;
}

void connection_rules::refuse_connect(reason_code rc, clock::time_point now) {
    mqtt::connack ack;
    ack.reason = v5() ? static_cast<std::uint8_t>(rc) : static_cast<std::uint8_t>(mqtt::to_v311_connack(rc));
    explain(ack, rc, false);
    // [MQTT-3.1.2-24]: a refusal too large for the client is not sent at all.
    if (fit_connack(ack)) send(ack);
    will_.reset();
    close(std::nullopt, now);
}

std::optional<connection_rules::keep_alive_terms> connection_rules::keep_alive_for(std::uint16_t asked) const {
    const auto& o = broker_.options();
    if (v5() && o.server_keepalive) return keep_alive_terms{o.server_keepalive, o.server_keepalive};
    // mqtt.max_keepalive caps long keep-alives and "none" (0) without lengthening short
    // ones. A 5.0 client is told the cap [MQTT-3.2.2-21]; a 3.1.1 client cannot be, and
    // is refused (CONNACK 2, as mosquitto does) rather than be cut off for pinging at the
    // interval it asked for.
    if (o.max_keepalive && (asked == 0 || asked > o.max_keepalive)) {
        if (!v5()) return std::nullopt;
        return keep_alive_terms{o.max_keepalive, o.max_keepalive};
    }
    return keep_alive_terms{asked, std::nullopt};
}

bool connection_rules::fit_connack(mqtt::connack& ack) const {
    if (!client_max_packet_) return true;
    using mqtt::property_id;
    // Only what the client can do without [MQTT-3.1.2-25]: the Reason String and User
    // Properties, and Response Information, which it asked for but may go without.
    for (auto id : {property_id::response_information, property_id::reason_string, property_id::user_property}) {
        if (mqtt::encoded_size(ack, version_) <= client_max_packet_) return true;
        ack.props.erase(id);
    }
    return mqtt::encoded_size(ack, version_) <= client_max_packet_;
}

void connection_rules::on_connect(mqtt::connect& c, clock::time_point now) {
    const auto& o = broker_.options();
    version_ = c.version;
    client_.version = c.version;
    client_.username = c.username.value_or("");
    if (v5()) {
        client_max_packet_ = c.props.integer(mqtt::property_id::maximum_packet_size).value_or(0);
        problem_info_ = c.props.integer(mqtt::property_id::request_problem_information).value_or(1) != 0;
    }

    if (c.client_id.empty()) {
        // 3.1.1 [MQTT-3.1.3-8]: a zero-length id needs a clean session; MQTT 3.1 wants
        // 1 to 23 characters, whatever the session (its CONNACK return code 2).
        if ((!v5() && !c.clean_start) || c.version == mqtt::protocol_version::v31)
            return refuse_connect(reason_code::client_identifier_not_valid, now);
        c.client_id = assigned_client_id(broker_);
        id_assigned_ = true;
    } else if (c.client_id.size() > o.max_clientid_len ||
               (c.version == mqtt::protocol_version::v31 && c.client_id.size() > 23)) {
        return refuse_connect(reason_code::client_identifier_not_valid, now);
    }
    // Enhanced authentication: this broker offers no method, so any is refused.
    if (c.props.find(mqtt::property_id::authentication_method))
        return refuse_connect(reason_code::bad_authentication_method, now);
    if (c.username) {
        if (auto it = o.passwords.find(*c.username); it != o.passwords.end()) {
            // Checked on the checker's thread: the I/O thread serves its other
            // connections meanwhile, reading from this one waits, the connect timeout runs.
            password_check_ = broker_.password_checker().check(it->second, c.password.value_or(""),
                                                               [owner = owner_] {
                                                                   if (auto o = owner.lock()) o->wake();
                                                               });
            connect_waiting_ = std::make_unique<mqtt::connect>(std::move(c));
            // The verdict comes through woken(), even when the check is already done;
            // only "busy" is known at once (no wake-up follows it).
            if (password_check_->value == auth::password_checker::verdict::busy) password_checked(now);
            return;
        }
    }
    // No source knows the client (no user name, or one the password file does not list):
    // in only with allow_anonymous, as EMQX's chain decides.
    if (!o.allow_anonymous) {
        if (!c.username || o.passwords.empty()) return refuse_connect(reason_code::not_authorized, now);
        // A name the file does not list is answered as a wrong password is, and as late.
        return refuse_later(reason_code::bad_user_name_or_password, now);
    }
    accept_connect(c, now);
}

void connection_rules::accept_connect(mqtt::connect& c, clock::time_point now) {
    const auto& o = broker_.options();
    const auto keep_alive = keep_alive_for(c.keep_alive);
    if (!keep_alive) return refuse_connect(reason_code::client_identifier_not_valid, now);
    client_.clientid = c.client_id;
    client_.connected_at = std::chrono::system_clock::now();

    keepalive_limit_ = keep_alive->watched == 0
                           ? clock::duration::zero()
                           : std::chrono::duration_cast<clock::duration>(
                                 std::chrono::duration<double>(keep_alive->watched * o.keepalive_backoff * 2));

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
            return refuse_connect(reason_code::qos_not_supported, now);
        if (c.will->retain && !o.retain_available) return refuse_connect(reason_code::retain_not_supported, now);
        if (v5() && payload_format_broken(c.will->props, c.will->payload))
            return refuse_connect(reason_code::payload_format_invalid, now);
        will_delay_ = c.will->props.integer(mqtt::property_id::will_delay_interval).value_or(0);
    }

    mqtt::connack ack;
    if (v5()) {
        using mqtt::property_id;
        if (id_assigned_) ack.props.add(property_id::assigned_client_identifier, client_.clientid);
        // Capped by mqtt.session_expiry_interval: the client is told the interval in force.
        if (expiry != c.props.integer(property_id::session_expiry_interval).value_or(0))
            ack.props.add(property_id::session_expiry_interval, expiry);
        if (keep_alive->told && *keep_alive->told != c.keep_alive)
            ack.props.add(property_id::server_keep_alive, std::uint32_t{*keep_alive->told});
        ack.props.add(property_id::receive_maximum, std::uint32_t{receive_maximum_});
        if (o.max_qos_allowed < 2) ack.props.add(property_id::maximum_qos, std::uint32_t{o.max_qos_allowed});
        if (!o.retain_available) ack.props.add(property_id::retain_available, std::uint32_t{0});
        ack.props.add(property_id::maximum_packet_size, o.max_packet_size);
        ack.props.add(property_id::topic_alias_maximum, std::uint32_t{o.max_topic_alias});
        if (!o.wildcard_subscription) ack.props.add(property_id::wildcard_subscription_available, std::uint32_t{0});
        if (!o.shared_subscription) ack.props.add(property_id::shared_subscription_available, std::uint32_t{0});
        if (c.props.integer(property_id::request_response_information).value_or(0) == 1)
            ack.props.add(property_id::response_information, response_information(client_.clientid));
    }
    // Known before the session is touched: a client that cannot receive even the smallest
    // CONNACK takes nothing over [MQTT-3.1.2-24].
    ack.session_present = true;  // the largest form: the flag costs no byte
    if (!fit_connack(ack)) {
        log::info("client {}: its Maximum Packet Size ({}) is too small for a CONNACK; closing", client_.clientid,
                  client_max_packet_);
        return close(std::nullopt, now);
    }
    if (c.will) will_ = std::make_unique<mqtt::will_message>(std::move(*c.will));

    session_limits limits{o.max_inflight, o.max_mqueue_len, o.max_mqueue_bytes, o.mqueue_store_qos0};
    auto opened = broker_.sessions().open(client_.clientid, c.clean_start, expiry, limits, owner_);
    session_ = opened.s;
    generation_ = opened.generation;
    if (auto previous = opened.previous_owner.lock()) previous->taken_over();
    phase_ = phase::connected;
    stats::bump(broker_.counters().clients_total);
    broker_.counters().clients_connected.fetch_add(1, std::memory_order_relaxed);

    // MQTT 3.1 has no session-present flag: its CONNACK's first byte is reserved.
    ack.session_present = opened.present && c.version != mqtt::protocol_version::v31;
    send(ack);
    log::debug("client {} connected (v{}, clean {}, present {})", client_.clientid, static_cast<int>(version_),
               c.clean_start, opened.present);

    // Resume what was in flight [MQTT-4.4.0-1]: PUBLISH again with DUP, PUBREL again.
    std::vector<session::publish_out> publishes;
    std::vector<std::uint16_t> pubrels;
    session_->in_flight(publishes, pubrels);
    for (const auto& po : publishes) append_publish(po, now);
    for (auto id : pubrels) send(mqtt::pubrel{{id}});
    pull_from_session(now);

    broker_.hooks().client_connected(client_);
}

// ---------------------------------------------------------------- PUBLISH from the client

bool connection_rules::resolve_alias(mqtt::publish& p, clock::time_point now) {
    auto alias = p.props.integer(mqtt::property_id::topic_alias);
    if (!alias) return true;
    if (*alias == 0 || *alias > broker_.options().max_topic_alias) {
        close(reason_code::topic_alias_invalid, now);
        return false;
    }
    const auto key = static_cast<std::uint16_t>(*alias);
    if (p.topic.empty()) {
        auto it = topic_aliases_ ? topic_aliases_->find(key) : decltype(topic_aliases_->end()){};
        if (!topic_aliases_ || it == topic_aliases_->end()) {
            close(reason_code::protocol_error, now);
            return false;
        }
        p.topic = it->second;
        return true;
    }
    if (!topic_aliases_) topic_aliases_ = std::make_unique<std::unordered_map<std::uint16_t, std::string>>();
    auto& slot = (*topic_aliases_)[key];
    const auto bytes = alias_bytes_ - slot.size() + p.topic.size();
    if (bytes > alias_bytes_bound) {
        // The count the client was told stands; the bytes behind it are the broker's own
        // limit, so it is a quota, not a protocol error.
        log::info("client {}: its topic aliases would hold more than {} bytes; closing", client_.clientid,
                  alias_bytes_bound);
        close(reason_code::quota_exceeded, now);
        return false;
    }
    slot = p.topic;
    alias_bytes_ = bytes;
    return true;
}

void connection_rules::on_publish(mqtt::publish& p, clock::time_point now) {
    const auto& o = broker_.options();
    if (v5()) {
        if (!resolve_alias(p, now)) return;
        // QoS 1 not yet PUBACKed and QoS 2 not yet PUBCOMPed [MQTT-3.3.4-9]; a held QoS 2
        // message is counted once, in the session's table.
        if (p.qos != mqtt::qos::at_most_once && pending_pubacks_ + session_->incoming_qos2_count() >= receive_maximum_)
            return close(reason_code::receive_maximum_exceeded, now);
    }
    if (p.qos > static_cast<mqtt::qos>(o.max_qos_allowed)) return close(reason_code::qos_not_supported, now);
    if (p.retain && !o.retain_available) return close(reason_code::retain_not_supported, now);

    if (o.max_topic_levels && mqtt::topic_levels(p.topic) > o.max_topic_levels)
        return close(reason_code::topic_name_invalid, now);

    const auto type = p.qos == mqtt::qos::exactly_once ? mqtt::packet_type::pubrec : mqtt::packet_type::puback;
    if (v5() && payload_format_broken(p.props, p.payload)) {
        // Refused, not routed: QoS 0 has no ack to say so [MQTT-3.3.2.3.2, 4.13].
        if (p.qos == mqtt::qos::at_most_once) return close(reason_code::payload_format_invalid, now);
        queue_ack(p.packet_id, type, ack_gate::opened(reason_code::payload_format_invalid), now);
        return;
    }
    if (!permitted(auth::access::publish, p.topic)) {
        log::info("client {}: publishing to {} is not authorized", client_.clientid, p.topic);
        if (o.acl_deny_disconnect) return close(reason_code::not_authorized, now);
        // Not routed. 5.0 says why [MQTT-3.4.2.1]; 3.1.1 has no code for it, so the
        // message is acknowledged and dropped, as EMQX does; QoS 0 is dropped.
        if (p.qos != mqtt::qos::at_most_once)
            queue_ack(p.packet_id, type, ack_gate::opened(v5() ? reason_code::not_authorized : reason_code::success),
                      now);
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
                queue_ack(p.packet_id, type, gate, now);
                return;
            // The broker's own bound (mqtt.max_awaiting_rel), not the client's Receive Maximum.
            case session::incoming_qos2::too_many: return close(reason_code::quota_exceeded, now);
        }
    }

    auto m = make_message(std::move(p.topic), std::move(p.payload), p.qos, p.retain, p.props);
    if (auto expiry = p.props.integer(mqtt::property_id::message_expiry_interval))
        m->expires_at = now + std::chrono::seconds(*expiry);
    message_ptr msg = std::move(m);

    stats::bump(broker_.counters().messages_received);
    stats::bump(broker_.counters().publish_received);
    if (gate) queue_ack(p.packet_id, type, gate, now);
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

void connection_rules::queue_ack(std::uint16_t id, mqtt::packet_type type, ack_gate_ptr gate, clock::time_point now) {
    if (type == mqtt::packet_type::puback) ++pending_pubacks_;
    pending_acks_.push_back({id, type, std::move(gate)});
    flush_acks(now);
}

void connection_rules::flush_acks(clock::time_point now) {
    while (open() && !pending_acks_.empty() && pending_acks_.front().gate->is_open()) {
        const auto a = std::move(pending_acks_.front());
        pending_acks_.pop_front();
        if (a.type == mqtt::packet_type::puback) --pending_pubacks_;
        const auto rc = a.gate->reason();
        if (is_failure(rc)) {
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
                close(std::nullopt, now);
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
    }
}

// ---------------------------------------------------------------- acks from the client
//
// An acknowledgement for a packet id the session knows, but of the wrong kind for the
// message's QoS or for where its exchange stands, is a Protocol Error [MQTT-4.3.2, 4.3.3;
// 4.13]: the connection is closed (5.0: DISCONNECT 0x82) rather than the ack ignored.
// One for an id the session does not know is ignored, or answered with 0x92 where the
// exchange has an answer (PUBREL, PUBREC): after a reconnect a client may well
// acknowledge what the broker has already forgotten.

void connection_rules::on_puback(const mqtt::puback& a, clock::time_point now) {
    if (auto msg = session_->puback(a.packet_id)) {
        broker_.hooks().message_acked({client_, msg});
        pull_from_session(now);
    } else if (session_->awaiting(a.packet_id)) {
        close(reason_code::protocol_error, now);  // PUBACK for a QoS 2 message
    }
}

void connection_rules::on_pubrec(const mqtt::pubrec& a, clock::time_point now) {
    const auto state = session_->awaiting(a.packet_id);
    if (state == session::await_state::puback) return close(reason_code::protocol_error, now);
    if (v5() && is_failure(a.reason)) {
        // The client refused the message: the exchange ends here [MQTT-4.3.3].
        if (session_->pubrec(a.packet_id)) session_->pubcomp(a.packet_id);
        pull_from_session(now);
        return;
    }
    // A PUBREC again (awaiting PUBCOMP already) is answered with the same PUBREL.
    if (state == session::await_state::pubcomp || session_->pubrec(a.packet_id)) {
        send(mqtt::pubrel{{a.packet_id}});
        return;
    }
    mqtt::pubrel rel{{a.packet_id}};
    if (v5()) rel.reason = reason_code::packet_identifier_not_found;
    explain(rel, rel.reason, true);
    send(rel);
}

void connection_rules::on_pubrel(const mqtt::pubrel& a, clock::time_point now) {
    // Before this connection sent the PUBREC, PUBREL is out of order [MQTT-4.3.3]: the
    // message may not even be stored yet.
    const bool unanswered = std::any_of(pending_acks_.begin(), pending_acks_.end(), [&](const pending_ack& p) {
        return p.type == mqtt::packet_type::pubrec && p.id == a.packet_id;
    });
    if (unanswered) return close(reason_code::protocol_error, now);
    mqtt::pubcomp comp{{a.packet_id}};
    if (!session_->release_incoming_qos2(a.packet_id) && v5()) comp.reason = reason_code::packet_identifier_not_found;
    explain(comp, comp.reason, true);
    send(comp);
}

void connection_rules::on_pubcomp(const mqtt::pubcomp& a, clock::time_point now) {
    // A QoS 2 message counts as acknowledged at PUBCOMP, not PUBREC: a client may hand it
    // to its application only at PUBREL [MQTT-4.3.3, method B], which a broker killed in
    // between never sends; the offline ack pointer must not pass it before.
    if (auto msg = session_->pubcomp(a.packet_id)) {
        broker_.hooks().message_acked({client_, msg});
        pull_from_session(now);
    } else if (session_->awaiting(a.packet_id)) {
        close(reason_code::protocol_error, now);  // for a QoS 1 message, or before PUBREL
    }
}

// ---------------------------------------------------------------- SUBSCRIBE / UNSUBSCRIBE

void connection_rules::on_subscribe(const mqtt::subscribe& s, clock::time_point now) {
    std::uint32_t sub_id = 0;
    if (v5()) sub_id = s.props.integer(mqtt::property_id::subscription_identifier).value_or(0);
    mqtt::suback ack;
    ack.packet_id = s.packet_id;
    std::vector<subscription_event> events;
    for (const auto& sub : s.subscriptions) {
        // A shared subscription is checked for the filter it shares.
        const auto shared = mqtt::parse_shared(sub.filter);
        if (!permitted(auth::access::subscribe, shared ? shared->filter : std::string_view(sub.filter))) {
            log::info("client {}: subscribing to {} is not authorized", client_.clientid, sub.filter);
            if (broker_.options().acl_deny_disconnect) return close(reason_code::not_authorized, now);
            ack.reasons.push_back(v5() ? static_cast<std::uint8_t>(reason_code::not_authorized) : 0x80);
            continue;
        }
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

void connection_rules::on_unsubscribe(const mqtt::unsubscribe& u) {
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

void connection_rules::on_disconnect(const mqtt::disconnect& d, clock::time_point now) {
    if (v5()) {
        if (auto expiry = d.props.integer(mqtt::property_id::session_expiry_interval)) {
            // [MQTT-3.14.2-2]: a session that ends at disconnect cannot be extended here.
            if (session_->expiry() == 0 && *expiry != 0) return close(reason_code::protocol_error, now);
            session_->set_expiry(std::min(*expiry, broker_.options().session_expiry_interval));
        }
    }
    // [MQTT-3.1.2-10]: only a normal disconnection (0x00) discards the will; 0x04 asks for
    // it, and so, in effect, does any error the client reports.
    if (!v5() || d.reason == reason_code::success) will_.reset();
    close(std::nullopt, now);
}

// ---------------------------------------------------------------- output

void connection_rules::send(const mqtt::packet& p) {
    if (!open()) return;
    mqtt::encode(p, version_, out_);
}

template <class Packet>
void connection_rules::explain(Packet& p, reason_code rc, bool gated) {
    if (!v5() || !is_failure(rc) || (gated && !problem_info_)) return;
    p.props.add(mqtt::property_id::reason_string, std::string(mqtt::to_string(rc)));
    // [MQTT-3.1.2-25]: a Reason String is dropped rather than exceed the client's maximum.
    if (client_max_packet_ && mqtt::encoded_size(p, version_) > client_max_packet_)
        p.props.erase(mqtt::property_id::reason_string);
}

void connection_rules::pull_from_session(clock::time_point now) {
    if (!session_ || phase_ != phase::connected) return;
    std::vector<session::publish_out> batch;
    while (out_.size() < delivery_batch_bytes) {
        batch.clear();
        // Only while this connection still owns the session: after a takeover, what it
        // took would sit in flight until the next reconnect.
        session_->take(generation_, send_window_, 64, batch);
        if (batch.empty()) break;
        for (const auto& po : batch) append_publish(po, now);
    }
}

void connection_rules::append_publish(const session::publish_out& po, clock::time_point now) {
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
            auto left = std::chrono::ceil<std::chrono::seconds>(*m.expires_at - now).count();
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
    if (broker_.hooks().has(hookpoint::message_delivered)) broker_.hooks().message_delivered({client_, po.out.msg});
}

// ---------------------------------------------------------------- closing

void connection_rules::close(std::optional<reason_code> reason, clock::time_point now) {
    if (!open()) return;
    if (reason && session_ && v5()) {
        mqtt::disconnect d;
        d.reason = *reason;
        explain(d, *reason, false);
        // [MQTT-3.1.2-24]: not even a DISCONNECT goes beyond the client's maximum.
        if (!client_max_packet_ || mqtt::encoded_size(d, version_) <= client_max_packet_) send(d);
    }
    phase_ = phase::closing;
    phase_since_ = now;
    paused_ = false;
}

message_ptr connection_rules::will_message() {
    if (!will_) return nullptr;
    // Checked when it is published, as EMQX does: the rules may have changed meanwhile.
    if (!permitted(auth::access::publish, will_->topic)) {
        log::info("client {}: its will to {} is not authorized; dropped", client_.clientid, will_->topic);
        will_.reset();
        return nullptr;
    }
    auto m = make_message(std::move(will_->topic), std::move(will_->payload), will_->qos, will_->retain, will_->props);
    will_.reset();
    return m;
}

std::shared_ptr<message> connection_rules::make_message(std::string topic, mqtt::shared_payload payload, mqtt::qos qos,
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

void connection_rules::release_session() {
    if (!session_) return;
    auto s = std::move(session_);
    // Still the session's owner (not taken over): shared subscriptions' unacknowledged
    // messages go to other members rather than wait for this client's return.
    if (s->generation() == generation_) broker_.hand_over_shared(s);
    broker_.counters().clients_connected.fetch_sub(1, std::memory_order_relaxed);
    broker_.sessions().release(s, generation_, will_message(), will_delay_);
    broker_.hooks().client_disconnected(client_);
    log::debug("client {} disconnected", client_.clientid);
}

void connection_rules::end() {
    phase_ = phase::ended;
    pending_acks_.clear();
    pending_pubacks_ = 0;
    topic_aliases_.reset();
    aliases_out_.reset();
}

}  // namespace mqttd
