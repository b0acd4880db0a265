"""Sessions (MQTT 3.1.1 sections 3.1.2.4, 3.2.2.2, 4.1): clean vs persistent, the
session present flag, offline queueing, takeover by a second connection with the
same client id, and mqttd's expiry and queue bounds."""

import time

import pytest

import mqtt_raw as raw_mqtt


# ----- session present / clean session ---------------------------------------

def test_session_present_flag_paho(broker, paho):
    first = paho(broker, "sp-paho", clean_session=False)
    assert first.connect() == (0, False), "no stored session yet"
    first.subscribe("sp/t", 1)
    first.disconnect()

    again = paho(broker, "sp-paho", clean_session=False)
    assert again.connect() == (0, True), "the persistent session must be resumed"
    again.disconnect()

    clean = paho(broker, "sp-paho", clean_session=True)
    assert clean.connect() == (0, False), "[MQTT-3.2.2-1] clean session: session present 0"
    clean.disconnect()

    after = paho(broker, "sp-paho", clean_session=False)
    assert after.connect() == (0, False), "the clean session discarded the old state"


def test_session_present_flag_mqttjs(broker, mqttjs):
    a = mqttjs(broker, clientId="sp-js", clean=False)
    assert a.connect()["sessionPresent"] is False
    a.subscribe("sp/js", 1)
    a.end()
    b = mqttjs(broker, clientId="sp-js", clean=False)
    assert b.connect()["sessionPresent"] is True
    b.end()


def _queue_while_away(broker, paho, client_id):
    """A persistent subscriber goes away; 20 messages at QoS 1 and 2 on three topics are
    published; it comes back without subscribing again. Returns what it receives."""
    sub = paho(broker, client_id, clean_session=False)
    sub.connect()
    assert sub.subscribe("persist/#", 2) == (2,)
    sub.disconnect()

    pub = paho(broker, client_id + "-pub")
    pub.connect()
    for i in range(20):
        pub.publish(f"persist/{i % 3}", f"m{i}".encode(), qos=1 + i % 2)

    back = paho(broker, client_id, clean_session=False)
    assert back.connect() == (0, True)
    got = back.collect(20, timeout=10)
    back.expect_none(0.5)
    return got


def test_persistent_session_keeps_subscriptions_and_queues(broker, paho):
    """QoS 1 and 2 messages published while the client is away are delivered on return at
    their QoS, without a new SUBSCRIBE, and in order for each topic and QoS
    ([MQTT-4.6.0-5]: ordering is required per topic and QoS)."""
    got = _queue_while_away(broker, paho, "persist-1")
    sent = [(f"persist/{i % 3}", f"m{i}".encode(), 1 + i % 2) for i in range(20)]
    received = [(m.topic, m.payload, m.qos) for m in got]
    assert sorted(received) == sorted(sent)
    for key in {(t, q) for t, _, q in sent}:
        assert [r for r in received if (r[0], r[2]) == key] == [s for s in sent if (s[0], s[2]) == key]


@pytest.mark.mqttd_only
def test_persistent_session_queue_is_one_fifo(broker, paho, raw):
    """mqttd keeps one queue per session: messages come back in publication order even
    across topics and QoS levels (mosquitto sends the queued QoS 1 ones first). Observed
    on the wire with a raw client: paho hands QoS 2 messages to the application only at
    PUBREL, which would reorder them."""
    sub = raw(broker)
    sub.connect("persist-2", clean=False)
    assert sub.subscribe([("persist/#", 2)]) == [2]
    sub.send(raw_mqtt.disconnect())
    sub.expect_closed()

    pub = paho(broker, "persist-2-pub")
    pub.connect()
    for i in range(20):
        pub.publish(f"persist/{i % 3}", f"m{i}".encode(), qos=1 + i % 2)

    back = raw(broker)
    assert back.connect("persist-2", clean=False).session_present
    got = []
    while len(got) < 20:
        p = back.recv(timeout=10)
        if p.name == "PUBLISH":
            got.append(p)
            back.send(raw_mqtt.puback(p.pid) if p.qos == 1 else raw_mqtt.pubrec(p.pid))
    assert [p.payload for p in got] == [f"m{i}".encode() for i in range(20)]
    assert [p.qos for p in got] == [1 + i % 2 for i in range(20)]


def test_persistent_session_mosquitto_clients(broker, mosq):
    # -E: subscribe, then a clean DISCONNECT; the session stays.
    s = mosq.sub(broker, "cli/persist", qos=1, client_id="cli-persist", clean=False,
                 exit_after_subscribe=True)
    assert s.wait(10) == 0
    mosq.pub(broker, "cli/persist", lines=[f"line {i}" for i in range(10)], qos=1)
    back = mosq.sub(broker, "cli/persist", qos=1, client_id="cli-persist", clean=False,
                    count=10, wait=False)
    got = back.collect(10, timeout=10)
    assert [m.payload for m in got] == [f"line {i}".encode() for i in range(10)]
    assert back.wait(10) == 0


def test_clean_session_discards_subscriptions_and_queue(broker, paho):
    a = paho(broker, "clean-1", clean_session=False)
    a.connect()
    a.subscribe("clean/t", 1)
    a.disconnect()
    pub = paho(broker, "clean-pub")
    pub.connect()
    pub.publish("clean/t", b"queued", qos=1)

    c = paho(broker, "clean-1", clean_session=True)
    assert c.connect() == (0, False)
    c.expect_none(0.7)  # the queued message went with the session
    pub.publish("clean/t", b"live", qos=1)
    c.expect_none(0.7)  # and so did the subscription


def test_clean_session_state_ends_at_disconnect(broker, paho):
    """[MQTT-3.1.2-6]: a clean session's state is not kept after it disconnects."""
    a = paho(broker, "clean-2", clean_session=True)
    a.connect()
    a.subscribe("clean2/t", 1)
    a.disconnect()
    b = paho(broker, "clean-2", clean_session=False)
    assert b.connect() == (0, False)
    pub = paho(broker, "clean2-pub")
    pub.connect()
    pub.publish("clean2/t", b"x", qos=1)
    b.expect_none(0.7)


def test_offline_qos0_not_required(broker, paho):
    """Queueing QoS 0 for an offline client is optional in the spec: whatever the broker
    does, the QoS 1 and 2 messages must come back, in order."""
    a = paho(broker, "off-0", clean_session=False)
    a.connect()
    a.subscribe("off0/#", 2)
    a.disconnect()
    pub = paho(broker, "off0-pub")
    pub.connect()
    pub.publish("off0/a", b"q0", qos=0)
    pub.publish("off0/b", b"q1", qos=1)
    pub.publish("off0/c", b"q2", qos=2)
    back = paho(broker, "off-0", clean_session=False)
    back.connect()
    got = [m.payload for m in back.drain(1.5)]
    assert got in ([b"q1", b"q2"], [b"q0", b"q1", b"q2"]), got


# ----- mqttd: QoS 0 queueing, expiry, bounds -------------------------------------

@pytest.mark.mqttd_only
def test_offline_qos0_queued_by_default(broker, paho):
    """mqtt.mqueue_store_qos0 defaults to true: QoS 0 is queued like QoS 1 and 2."""
    a = paho(broker, "q0-on", clean_session=False)
    a.connect()
    a.subscribe("q0on/#", 2)
    a.disconnect()
    pub = paho(broker, "q0on-pub")
    pub.connect()
    pub.publish("q0on/a", b"q0", qos=0)
    pub.publish("q0on/b", b"q1", qos=1)
    pub.publish("q0on/c", b"q0 again", qos=0)
    back = paho(broker, "q0-on", clean_session=False)
    back.connect()
    got = back.collect(3)
    assert [(m.payload, m.qos) for m in got] == [(b"q0", 0), (b"q1", 1), (b"q0 again", 0)]


@pytest.mark.mqttd_only
def test_offline_qos0_dropped_when_disabled(start_broker, paho):
    b = start_broker(["mqtt.mqueue_store_qos0 = false"])
    a = paho(b, "q0-off", clean_session=False)
    a.connect()
    a.subscribe("q0off/#", 2)
    a.disconnect()
    pub = paho(b, "q0off-pub")
    pub.connect()
    pub.publish("q0off/a", b"q0", qos=0)
    pub.publish("q0off/b", b"q1", qos=1)
    back = paho(b, "q0-off", clean_session=False)
    back.connect()
    assert [m.payload for m in back.drain(1.5)] == [b"q1"]


@pytest.mark.mqttd_only
def test_session_expires_after_interval(start_broker, paho):
    b = start_broker(["mqtt.session_expiry_interval = 2s"])
    a = paho(b, "exp-1", clean_session=False)
    a.connect()
    a.subscribe("exp/t", 1)
    a.disconnect()
    # Still there well before the interval ...
    time.sleep(0.5)
    again = paho(b, "exp-1", clean_session=False)
    assert again.connect() == (0, True)
    again.disconnect()
    # ... gone after it (2 s, plus margin), queued messages included.
    pub = paho(b, "exp-pub")
    pub.connect()
    pub.publish("exp/t", b"too late", qos=1)
    time.sleep(3.5)
    late = paho(b, "exp-1", clean_session=False)
    assert late.connect() == (0, False)
    late.expect_none(0.7)
    pub.publish("exp/t", b"no subscription", qos=1)
    late.expect_none(0.7)


@pytest.mark.mqttd_only
def test_session_expiry_zero_ends_sessions_at_disconnect(start_broker, paho):
    b = start_broker(["mqtt.session_expiry_interval = 0"])
    a = paho(b, "exp-0", clean_session=False)
    a.connect()
    a.subscribe("exp0/t", 1)
    a.disconnect()
    again = paho(b, "exp-0", clean_session=False)
    assert again.connect() == (0, False)


def _fill_offline_queue(b, paho, n):
    a = paho(b, "slow-1", clean_session=False)
    a.connect()
    a.subscribe("slow/t", 1)
    a.disconnect()
    pub = paho(b, "slow-pub")
    pub.connect()
    mids = [pub.publish("slow/t", f"{i:03d}".encode(), qos=1, wait=False) for i in range(n)]
    pub.wait_published(mids)
    back = paho(b, "slow-1", clean_session=False)
    assert back.connect() == (0, True)
    return [m.payload for m in back.drain(2.0)]


def test_offline_queue_is_bounded(start_broker, paho):
    """A slow consumer cannot make the broker queue without bound: with a limit of 10,
    at most 10 of 50 messages are kept, in publication order."""
    got = _fill_offline_queue(start_broker(["mqtt.max_mqueue_len = 10"]), paho, 50)
    assert 1 <= len(got) <= 10, got
    sent = [f"{i:03d}".encode() for i in range(50)]
    assert all(p in sent for p in got)
    assert got == sorted(got), "queued messages must keep their order"


@pytest.mark.mqttd_only
def test_offline_queue_drops_oldest(start_broker, paho):
    """mqttd's choice when the queue is full: drop the oldest message (mosquitto drops
    the newest instead)."""
    got = _fill_offline_queue(start_broker(["mqtt.max_mqueue_len = 10"]), paho, 50)
    assert got == [f"{i:03d}".encode() for i in range(40, 50)]


# ----- takeover ------------------------------------------------------------------

def test_takeover_closes_first_connection(broker, paho):
    """[MQTT-3.1.4-2]: a second connection with the same client id disconnects the first."""
    first = paho(broker, "takeover-1")
    first.connect()
    second = paho(broker, "takeover-1")
    second.connect()
    assert first.wait_disconnected(5), "the first connection must be closed"
    second.subscribe("takeover/t", 1)
    second.publish("takeover/t", b"still served", qos=1)
    assert second.get().payload == b"still served"
    assert not second.disconnected.is_set()


def test_takeover_closes_first_connection_raw(broker, raw):
    first = raw(broker)
    first.connect("takeover-raw")
    second = raw(broker)
    assert second.connect("takeover-raw").return_code == 0
    first.expect_closed(5)
    second.ping()


def test_takeover_moves_session_with_inflight_and_queued(broker, raw, paho):
    """The new connection (clean session 0) resumes the session: subscription and the
    messages the first connection never acknowledged, in order."""
    first = raw(broker)
    first.connect("takeover-s", clean=False)
    assert first.subscribe([("tk/#", 1)]) == [1]
    pub = paho(broker, "tk-pub")
    pub.connect()
    for i in range(5):
        pub.publish("tk/x", f"n{i}".encode(), qos=1)
    # The first connection receives them but never acknowledges.
    unacked = [first.expect(raw_mqtt.PUBLISH) for _ in range(5)]
    assert [p.payload for p in unacked] == [f"n{i}".encode() for i in range(5)]

    second = raw(broker)
    ack = second.connect("takeover-s", clean=False)
    assert ack.return_code == 0 and ack.session_present
    first.expect_closed(5)
    again = [second.expect(raw_mqtt.PUBLISH) for _ in range(5)]
    assert [p.payload for p in again] == [f"n{i}".encode() for i in range(5)]
    assert all(p.dup for p in again), "[MQTT-4.4.0-1] re-sent PUBLISH must have DUP=1"
    assert [p.pid for p in again] == [p.pid for p in unacked], "original packet ids"
    for p in again:
        second.send(raw_mqtt.puback(p.pid))
    # And the subscription is live on the new connection.
    pub.publish("tk/x", b"live", qos=1)
    live = second.expect(raw_mqtt.PUBLISH)
    assert live.payload == b"live" and not live.dup


def test_takeover_mqttjs_by_paho(broker, mqttjs, paho):
    js = mqttjs(broker, clientId="takeover-mixed", clean=False)
    js.connect()
    js.subscribe("tkm/#", 1)
    p = paho(broker, "takeover-mixed", clean_session=False)
    assert p.connect() == (0, True)
    js.wait_event("close", 5)
    p.publish("tkm/a", b"to paho", qos=1)
    assert p.get().payload == b"to paho"
    js.expect_none(0.5)
