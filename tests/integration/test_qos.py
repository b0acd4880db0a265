"""Quality of service (MQTT 3.1.1 sections 4.3, 4.4, 4.6): the QoS 0/1/2 flows in both
directions with their packet identifiers, downgrade to the subscription's QoS,
exactly-once for QoS 2, ordering, and redelivery with DUP after a reconnect."""

import pytest

import mqtt_raw as raw_mqtt


@pytest.mark.parametrize("sub_qos", [0, 1, 2])
def test_delivered_qos_is_min_of_publish_and_subscription(broker, paho, sub_qos):
    """[MQTT-3.8.4-6], 4.3: a message is delivered at min(publish QoS, granted QoS);
    the broker never upgrades."""
    sub = paho(broker, f"qos-sub-{sub_qos}")
    sub.connect()
    assert sub.subscribe("qos/t", sub_qos) == (sub_qos,)
    pub = paho(broker, f"qos-pub-{sub_qos}")
    pub.connect()
    for pub_qos in (0, 1, 2):
        pub.publish("qos/t", f"p{pub_qos}".encode(), qos=pub_qos)
    got = sub.collect(3)
    # Different QoS levels need not stay ordered relative to each other.
    assert sorted((m.payload, m.qos) for m in got) == [
        (f"p{q}".encode(), min(q, sub_qos)) for q in (0, 1, 2)]
    sub.expect_none(0.5)


def test_qos_downgrade_mqttjs(broker, mqttjs, paho):
    js = mqttjs(broker, clientId="js-down", clean=True)
    js.connect()
    assert js.subscribe("down/js", 1) == [1]
    pub = paho(broker, "down-pub")
    pub.connect()
    pub.publish("down/js", b"two", qos=2)
    m = js.get()
    assert (m.payload, m.qos) == (b"two", 1)


def test_mqttjs_publishes_all_qos_to_paho(broker, mqttjs, paho):
    sub = paho(broker, "js-to-paho")
    sub.connect()
    sub.subscribe("jsq/#", 2)
    js = mqttjs(broker, clientId="js-pub-all", clean=True)
    js.connect()
    for q in (0, 1, 2):
        js.publish(f"jsq/{q}", f"js{q}", qos=q)
    got = sub.collect(3)
    assert sorted((m.topic, m.payload, m.qos) for m in got) == [
        (f"jsq/{q}", f"js{q}".encode(), q) for q in (0, 1, 2)]


def test_paho_publishes_all_qos_to_mqttjs(broker, mqttjs, paho):
    js = mqttjs(broker, clientId="js-sub-all", clean=True)
    js.connect()
    assert js.subscribe("pq/#", 2) == [2]
    pub = paho(broker, "paho-to-js")
    pub.connect()
    for q in (0, 1, 2):
        pub.publish(f"pq/{q}", f"pa{q}".encode(), qos=q)
    got = js.collect(3)
    assert sorted((m.topic, m.payload, m.qos) for m in got) == [
        (f"pq/{q}", f"pa{q}".encode(), q) for q in (0, 1, 2)]


def test_qos1_publish_from_raw_client_acked_with_its_packet_id(broker, raw, paho):
    sub = paho(broker, "raw-q1-sub")
    sub.connect()
    sub.subscribe("rq1/t", 1)
    r = raw(broker)
    r.connect("raw-q1")
    for pid in (1, 0x1234, 0xFFFF):
        r.send(raw_mqtt.publish("rq1/t", f"pid {pid}", qos=1, pid=pid))
        ack = r.expect(raw_mqtt.PUBACK)
        assert ack.pid == pid and ack.flags == 0 and len(ack.body) == 2
    got = sub.collect(3)
    assert [m.payload for m in got] == [b"pid 1", b"pid 4660", b"pid 65535"]


def test_qos2_publish_from_raw_client_full_flow(broker, raw, paho):
    sub = paho(broker, "raw-q2-sub")
    sub.connect()
    sub.subscribe("rq2/t", 2)
    r = raw(broker)
    r.connect("raw-q2")
    r.send(raw_mqtt.publish("rq2/t", b"exactly once", qos=2, pid=77))
    rec = r.expect(raw_mqtt.PUBREC)
    assert rec.pid == 77 and rec.flags == 0
    r.send(raw_mqtt.pubrel(77))
    comp = r.expect(raw_mqtt.PUBCOMP)
    assert comp.pid == 77 and comp.flags == 0
    m = sub.get()
    assert (m.payload, m.qos) == (b"exactly once", 2)
    sub.expect_none(0.5)


def test_qos2_duplicate_publish_before_pubrel_delivered_once(broker, raw, paho):
    """[MQTT-4.3.3-2]: until PUBREL, a PUBLISH with the same packet id is acknowledged
    with PUBREC again and must not cause a second delivery."""
    sub = paho(broker, "q2dup-sub")
    sub.connect()
    sub.subscribe("q2dup/t", 2)
    r = raw(broker)
    r.connect("q2dup")
    r.send(raw_mqtt.publish("q2dup/t", b"once", qos=2, pid=9))
    assert r.expect(raw_mqtt.PUBREC).pid == 9
    r.send(raw_mqtt.publish("q2dup/t", b"once", qos=2, pid=9, dup=True))
    assert r.expect(raw_mqtt.PUBREC).pid == 9
    r.send(raw_mqtt.pubrel(9))
    assert r.expect(raw_mqtt.PUBCOMP).pid == 9
    assert sub.get().payload == b"once"
    sub.expect_none(1.0)
    # After PUBCOMP the id is free again: a new message with it is a new message.
    r.publish_qos2("q2dup/t", b"again", 9)
    assert sub.get().payload == b"again"


def test_qos1_to_raw_subscriber_carries_distinct_packet_ids(broker, raw, paho):
    """[MQTT-2.3.1-1], [MQTT-2.3.1-2]: non-zero ids, distinct while unacknowledged."""
    r = raw(broker)
    r.connect("raw-q1-recv")
    assert r.subscribe([("rr1/t", 1)]) == [1]
    pub = paho(broker, "rr1-pub")
    pub.connect()
    for i in range(5):
        pub.publish("rr1/t", f"{i}".encode(), qos=1)
    got = [r.expect(raw_mqtt.PUBLISH) for _ in range(5)]
    assert [p.payload for p in got] == [b"0", b"1", b"2", b"3", b"4"]
    assert all(p.qos == 1 and not p.dup and not p.retain for p in got)
    pids = [p.pid for p in got]
    assert 0 not in pids and len(set(pids)) == 5, pids
    for p in got:
        r.send(raw_mqtt.puback(p.pid))
    r.ping()  # the acks were accepted without complaint
    r.expect_silence(0.5)


def test_qos2_to_raw_subscriber_full_flow(broker, raw, paho):
    r = raw(broker)
    r.connect("raw-q2-recv")
    assert r.subscribe([("rr2/t", 2)]) == [2]
    pub = paho(broker, "rr2-pub")
    pub.connect()
    pub.publish("rr2/t", b"two", qos=2)
    p = r.expect(raw_mqtt.PUBLISH)
    assert (p.qos, p.dup, p.payload) == (2, False, b"two") and p.pid
    r.send(raw_mqtt.pubrec(p.pid))
    rel = r.expect(raw_mqtt.PUBREL)
    assert rel.pid == p.pid
    assert rel.flags == 0b0010, "[MQTT-3.6.1-1] PUBREL fixed header flags must be 0010"
    r.send(raw_mqtt.pubcomp(p.pid))
    r.ping()
    r.expect_silence(0.5)


@pytest.mark.parametrize("qos", [1, 2])
def test_two_hundred_messages_in_order_paho(broker, paho, qos):
    """[MQTT-4.6.0-5]: same topic, same QoS, one publisher: order is kept."""
    sub = paho(broker, f"order-sub-{qos}")
    sub.connect()
    sub.subscribe("order/t", qos)
    pub = paho(broker, f"order-pub-{qos}")
    pub.connect()
    mids = [pub.publish("order/t", f"{i:04d}".encode(), qos=qos, wait=False) for i in range(200)]
    pub.wait_published(mids, timeout=15)
    got = sub.collect(200, timeout=15)
    assert [m.payload for m in got] == [f"{i:04d}".encode() for i in range(200)]
    assert {m.qos for m in got} == {qos}
    assert not any(m.dup for m in got)


@pytest.mark.parametrize("qos", [1, 2])
def test_two_hundred_messages_in_order_mosquitto_clients(broker, mosq, qos):
    sub = mosq.sub(broker, "order/cli", qos=qos, count=200)
    mosq.pub(broker, "order/cli", lines=[f"n{i:04d}" for i in range(200)], qos=qos)
    got = sub.collect(200, timeout=15)
    assert [m.payload for m in got] == [f"n{i:04d}".encode() for i in range(200)]
    assert {m.qos for m in got} == {qos}
    assert sub.wait(10) == 0


def test_qos1_redelivered_with_dup_after_reconnect(broker, raw, paho):
    """4.4: on reconnect with CleanSession=0 the server re-sends unacknowledged PUBLISH
    packets with their original packet ids and DUP=1 ([MQTT-3.3.1-1])."""
    r = raw(broker)
    r.connect("redeliver-1", clean=False)
    r.subscribe([("redo/#", 2)])
    pub = paho(broker, "redo-pub")
    pub.connect()
    pub.publish("redo/a", b"first", qos=1)
    pub.publish("redo/b", b"second", qos=1)
    orig = [r.expect(raw_mqtt.PUBLISH) for _ in range(2)]
    assert [(p.payload, p.dup) for p in orig] == [(b"first", False), (b"second", False)]
    r.close()  # no PUBACK, no DISCONNECT

    r2 = raw(broker)
    ack = r2.connect("redeliver-1", clean=False)
    assert ack.return_code == 0 and ack.session_present
    again = [r2.expect(raw_mqtt.PUBLISH) for _ in range(2)]
    assert [(p.topic, p.payload, p.qos) for p in again] == [("redo/a", b"first", 1), ("redo/b", b"second", 1)]
    assert all(p.dup for p in again)
    assert [p.pid for p in again] == [p.pid for p in orig]
    for p in again:
        r2.send(raw_mqtt.puback(p.pid))
    r2.ping()  # the broker has read the PUBACKs before this connection goes
    r2.close()

    # Acknowledged now: a third connection gets nothing more.
    r3 = raw(broker)
    assert r3.connect("redeliver-1", clean=False).session_present
    r3.expect_silence(1.0)


def test_qos2_publish_redelivered_with_dup_after_reconnect(broker, raw, paho):
    r = raw(broker)
    r.connect("redeliver-2", clean=False)
    r.subscribe([("redo2/t", 2)])
    pub = paho(broker, "redo2-pub")
    pub.connect()
    pub.publish("redo2/t", b"q2", qos=2)
    orig = r.expect(raw_mqtt.PUBLISH)
    assert orig.qos == 2 and not orig.dup
    r.close()  # no PUBREC

    r2 = raw(broker)
    assert r2.connect("redeliver-2", clean=False).session_present
    again = r2.expect(raw_mqtt.PUBLISH)
    assert (again.payload, again.qos, again.dup, again.pid) == (b"q2", 2, True, orig.pid)
    r2.send(raw_mqtt.pubrec(again.pid))
    assert r2.expect(raw_mqtt.PUBREL).pid == again.pid
    r2.send(raw_mqtt.pubcomp(again.pid))
    r2.expect_silence(0.5)


def test_qos2_pubrel_resent_after_reconnect(broker, raw, paho):
    """After PUBREC the message is delivered; what is left to re-send on reconnect is
    the PUBREL, not the PUBLISH (4.4, 4.3.3)."""
    r = raw(broker)
    r.connect("redeliver-3", clean=False)
    r.subscribe([("redo3/t", 2)])
    pub = paho(broker, "redo3-pub")
    pub.connect()
    pub.publish("redo3/t", b"q2", qos=2)
    p = r.expect(raw_mqtt.PUBLISH)
    r.send(raw_mqtt.pubrec(p.pid))
    assert r.expect(raw_mqtt.PUBREL).pid == p.pid
    r.close()  # no PUBCOMP

    r2 = raw(broker)
    assert r2.connect("redeliver-3", clean=False).session_present
    rel = r2.expect(raw_mqtt.PUBREL)
    assert rel.pid == p.pid and rel.flags == 0b0010
    r2.send(raw_mqtt.pubcomp(rel.pid))
    r2.expect_silence(0.7)


def test_redelivery_paho_subscriber_gets_message_after_crash(broker, raw, paho):
    """The same with a real client on the receiving end: a paho subscriber that comes
    back gets the message its crashed predecessor never acknowledged."""
    r = raw(broker)
    r.connect("redeliver-paho", clean=False)
    r.subscribe([("redop/t", 1)])
    pub = paho(broker, "redop-pub")
    pub.connect()
    pub.publish("redop/t", b"not acked", qos=1)
    assert r.expect(raw_mqtt.PUBLISH).payload == b"not acked"
    r.close()
    back = paho(broker, "redeliver-paho", clean_session=False)
    assert back.connect() == (0, True)
    m = back.get()
    assert (m.payload, m.qos, m.dup) == (b"not acked", 1, True)
