"""Offline messages and restored state, end to end: unread messages fetched oldest
first, in pages, behind an ack pointer that passes only acknowledged messages,
subscriptions restored from mqtt_sub, retained messages that survive a broker restart,
and payloads that round-trip byte-exact through PostgreSQL."""

from __future__ import annotations

import time

import pytest

from test_backend_common import scalar, sql, start_pg_broker, uid, wait_for

pytestmark = pytest.mark.mqttd_only


def pointer(cid: str, topic: str):
    return scalar("select mid from mqtt_acked where clientid = :'c' and topic = :'t'", c=cid, t=topic)

def assert_caught_up(b, paho, client, cid: str, topic: str):
    """The pointer reaches the newest message of `topic`, so that `client`, once
    disconnected, gets nothing again when the client id subscribes anew: returns that
    new client."""
    newest = scalar("select max(id) from mqtt_msg where topic = :'t'", t=topic)
    wait_for(lambda: pointer(cid, topic) == newest, what="the pointer at the newest message")
    client.disconnect()
    again = paho(b, cid)
    again.connect()
    again.subscribe(topic, 1)
    again.expect_none(1.0)
    return again



def test_offline_story(start_broker, paho):
    """Subscribe QoS 1, go away, N messages are published, come back: the unread ones
    arrive oldest first, in order; the ack pointer moves to the newest; coming back once
    more brings nothing old."""
    b = start_pg_broker(start_broker)
    cid, topic = uid("offline"), uid("news")
    sub = paho(b, cid)
    sub.connect()
    sub.subscribe(topic, 1)
    # The first subscription creates the pointer at the newest existing message.
    wait_for(lambda: pointer(cid, topic) is not None, what="the ack pointer")
    assert pointer(cid, topic) == scalar("select coalesce(max(id), 0) from mqtt_msg where topic = :'t'", t=topic)
    sub.disconnect()  # clean session: the broker forgets it

    pub = paho(b, uid("pub"))
    pub.connect()
    n = 25
    for i in range(n):
        pub.publish(topic, f"m{i:02d}".encode(), qos=1)

    back = paho(b, cid)
    back.connect()
    back.subscribe(topic, 1)
    got = back.collect(n, timeout=10)
    assert [m.payload for m in got] == [f"m{i:02d}".encode() for i in range(n)]
    assert all(m.qos == 1 and not m.retain for m in got)
    back.expect_none(0.5)
    again = assert_caught_up(b, paho, back, cid, topic)
    # A new message still flows live.
    pub.publish(topic, b"live", qos=1)
    assert again.get().payload == b"live"


def test_offline_limits_and_wildcards(start_broker, paho):
    """A wildcard subscription gets the unread messages of every topic it matches, in
    publish order; max_returned_count bounds one page, and the next page follows once the
    client has acknowledged the first."""
    b = start_pg_broker(start_broker, extra=["backend.pgsql.max_returned_count = 4"])
    cid, base = uid("wild"), uid("fleet")
    sub = paho(b, cid)
    sub.connect()
    sub.subscribe(f"{base}/+/status", 2)
    wait_for(lambda: pointer(cid, f"{base}/+/status") is not None)
    sub.disconnect()

    pub = paho(b, uid("pub"))
    pub.connect()
    sent = []
    for i in range(6):
        t = f"{base}/truck{i % 3}/status"
        pub.publish(t, f"s{i}".encode(), qos=1)
        sent.append((t, f"s{i}".encode()))
    pub.publish(f"{base}/truck0/other", b"not matched", qos=1)

    first = paho(b, cid)
    first.connect()
    first.subscribe(f"{base}/+/status", 2)
    got = first.collect(6)
    assert [(m.topic, m.payload) for m in got] == sent
    assert [m.qos for m in got] == [1] * 6  # min(message QoS, subscription QoS)
    first.expect_none(0.5)
    first.disconnect()

    second = paho(b, cid)
    second.connect()
    second.subscribe(f"{base}/+/status", 1)
    second.expect_none(0.5)


def test_subscription_restore_fetches_unread(start_broker, paho):
    """Rows an application inserts into mqtt_sub subscribe the client at connect, and
    the restored subscription fetches its unread messages."""
    b = start_pg_broker(start_broker)
    cid, topic = uid("restore"), uid("orders")
    sql("insert into mqtt_sub(clientid, topic, qos, created) values(:'c', :'t', 1, now())", c=cid, t=topic)
    c = paho(b, cid)
    c.connect()
    wait_for(lambda: pointer(cid, topic) is not None, what="the restored subscription's pointer")
    c.disconnect()

    pub = paho(b, uid("pub"))
    pub.connect()
    for i in range(3):
        pub.publish(topic, f"order {i}".encode(), qos=1)

    again = paho(b, cid)
    again.connect()  # no SUBSCRIBE: the subscription comes from mqtt_sub
    got = again.collect(3)
    assert [m.payload for m in got] == [b"order 0", b"order 1", b"order 2"]
    pub.publish(topic, b"live", qos=1)
    assert again.get().payload == b"live"


def test_offline_messages_survive_broker_restart(start_broker, paho):
    """The session is lost with the broker; the messages are not."""
    b = start_pg_broker(start_broker)
    cid, topic = uid("restart"), uid("alerts")
    sub = paho(b, cid, clean_session=False)
    sub.connect()
    sub.subscribe(topic, 1)
    wait_for(lambda: pointer(cid, topic) is not None)
    sub.drop()
    pub = paho(b, uid("pub"))
    pub.connect()
    pub.publish(topic, b"before restart 1", qos=1)
    pub.publish(topic, b"before restart 2", qos=1)
    pub.close()
    b.restart()

    again = paho(b, cid, clean_session=False)
    _rc, present = again.connect()
    assert not present
    again.subscribe(topic, 1)
    assert [m.payload for m in again.collect(2)] == [b"before restart 1", b"before restart 2"]


def test_retained_served_after_restart_and_deleted(start_broker, paho):
    """Retained messages come back from PostgreSQL after a broker restart, and an empty
    retained publish deletes them."""
    b = start_pg_broker(start_broker)
    topic = uid("config")
    pub = paho(b, uid("pub"))
    pub.connect()
    pub.publish(topic, b"v1", qos=1, retain=True)
    pub.close()
    b.restart()

    s = paho(b, uid("sub"))
    s.connect()
    s.subscribe(topic, 1)
    m = s.get()
    assert (m.payload, m.retain, m.qos) == (b"v1", True, 1)
    s.expect_none(0.5)

    pub = paho(b, uid("pub"))
    pub.connect()
    pub.publish(topic, b"", qos=1, retain=True)
    assert sql("select * from mqtt_retain where topic = :'t'", t=topic) == []
    pub.close()
    b.restart()
    s2 = paho(b, uid("sub"))
    s2.connect()
    s2.subscribe(topic, 1)
    s2.expect_none(1.0)


BINARY = bytes(range(256))
LOOKS_HEX = b"\\x41"


def test_binary_payload_round_trip(start_broker, paho):
    """All 256 byte values, and a text payload that starts with \\x, come back
    byte-exact from mqtt_msg (offline fetch) and mqtt_retain (retain lookup); the text
    column holds the documented \\x hex form, which decode(substr(payload, 3), 'hex')
    turns back into the bytes."""
    b = start_pg_broker(start_broker)
    cid, topic = uid("bin"), uid("bin")
    sub = paho(b, cid)
    sub.connect()
    sub.subscribe(topic, 1)
    wait_for(lambda: pointer(cid, topic) is not None)
    sub.disconnect()

    pub = paho(b, uid("pub"))
    pub.connect()
    payloads = [BINARY, LOOKS_HEX, "ünïcödé".encode(), b"", b"a\x00b"]
    for p in payloads:
        pub.publish(topic, p, qos=1)
    pub.publish(topic + "/retained", BINARY, qos=1, retain=True)

    stored = sql("select payload, case when left(payload, 2) = '\\x' "
                 "then encode(decode(substr(payload, 3), 'hex'), 'hex') end from mqtt_msg "
                 "where topic = :'t' order by id", t=topic)
    assert stored[0][0] == "\\x" + BINARY.hex()
    assert stored[0][1] == BINARY.hex()
    assert stored[1][0] == "\\x" + LOOKS_HEX.hex()
    assert stored[2][0] == "ünïcödé"
    assert stored[3][0] == ""
    assert stored[4][0] == "\\x610062"

    back = paho(b, cid)
    back.connect()
    back.subscribe(topic, 1)
    assert [m.payload for m in back.collect(len(payloads))] == payloads

    r = paho(b, uid("ret"))
    r.connect()
    r.subscribe(topic + "/retained", 1)
    m = r.get()
    assert m.payload == BINARY and m.retain


def test_resumed_session_gets_no_duplicates(start_broker, paho):
    """A persistent session that resumes already has the messages queued while its
    client was away: subscribing again (existed) must not fetch them a second time."""
    b = start_pg_broker(start_broker)
    cid, topic = uid("resume"), uid("resume")
    sub = paho(b, cid, clean_session=False)
    sub.connect()
    sub.subscribe(topic, 1)
    wait_for(lambda: pointer(cid, topic) is not None)
    sub.drop()
    pub = paho(b, uid("pub"))
    pub.connect()
    for i in range(3):
        pub.publish(topic, f"r{i}".encode(), qos=1)

    again = paho(b, cid, clean_session=False)
    _rc, present = again.connect()
    assert present
    again.subscribe(topic, 1)
    got = again.collect(3)
    assert sorted(m.payload for m in got) == [b"r0", b"r1", b"r2"]
    again.expect_none(1.0)


def _store_while_away(b, paho, cid: str, topic: str, n: int) -> list[bytes]:
    """Creates cid's pointer on topic, then stores n messages while cid is away."""
    sub = paho(b, cid)
    sub.connect()
    sub.subscribe(topic, 1)
    wait_for(lambda: pointer(cid, topic) is not None, what="the ack pointer")
    sub.disconnect()
    pub = paho(b, uid("pub"))
    pub.connect()
    sent = [f"stored {i:02d}".encode() for i in range(n)]
    for p in sent:
        pub.publish(topic, p, qos=1)
    pub.disconnect()
    return sent


def test_live_ack_between_pages_skips_nothing(start_broker, paho):
    """With max_returned_count 3, a live message acknowledged after the first page does
    not move the pointer past the stored messages not yet fetched: the client receives
    all 11 stored ones, in order, and the live one; afterwards the pointer is past all of
    them and coming back brings nothing again."""
    b = start_pg_broker(start_broker, extra=["backend.pgsql.max_returned_count = 3"])
    cid, topic = uid("pages"), uid("pages")
    sent = _store_while_away(b, paho, cid, topic, 11)

    back = paho(b, cid)
    back.connect()
    back.subscribe(topic, 1)
    first = back.collect(3, timeout=10)
    assert [m.payload for m in first] == sent[:3]
    pub = paho(b, uid("pub"))
    pub.connect()
    pub.publish(topic, b"live", qos=1)
    rest = back.collect(9, timeout=15)
    payloads = [m.payload for m in first + rest]
    assert b"live" in payloads
    assert [p for p in payloads if p != b"live"] == sent
    back.expect_none(0.5)
    assert_caught_up(b, paho, back, cid, topic)


def test_backlog_larger_than_session_queue(start_broker, paho):
    """A backlog of 40 stored messages for a session queue of 5 arrives whole and in
    order to a client that stays online: no page overflows the queue, and the pointer
    never passes a row the client has not acknowledged."""
    b = start_pg_broker(start_broker, extra=["mqtt.max_mqueue_len = 5", "mqtt.max_inflight = 4"])
    cid, topic = uid("backlog"), uid("backlog")
    sent = _store_while_away(b, paho, cid, topic, 40)

    back = paho(b, cid)
    back.connect()
    back.subscribe(topic, 1)
    got = back.collect(40, timeout=20)
    assert [m.payload for m in got] == sent
    back.expect_none(0.5)
    newest = scalar("select max(id) from mqtt_msg where topic = :'t'", t=topic)
    wait_for(lambda: pointer(cid, topic) == newest, what="the pointer at the newest message")


def test_backlog_survives_a_flood_of_live_messages(start_broker, paho):
    """Live messages that fill the session queue while the backlog is sent never evict
    stored messages from it: every stored message arrives, once and in stored order."""
    b = start_pg_broker(start_broker, extra=["mqtt.max_mqueue_len = 4", "mqtt.max_inflight = 1"])
    cid, topic = uid("flood"), uid("flood")
    sent = _store_while_away(b, paho, cid, topic, 20)

    pub = paho(b, uid("pub"))
    pub.connect()
    back = paho(b, cid)
    back.connect()
    back.subscribe(topic, 1)
    mids = [pub.publish(topic, f"live {i:03d}".encode(), qos=1, wait=False) for i in range(300)]
    pub.wait_published(mids, timeout=30)
    stored = []
    deadline = time.monotonic() + 30
    while len(stored) < len(sent) and time.monotonic() < deadline:
        stored += [m.payload for m in back.drain(0.5) if m.payload.startswith(b"stored")]
    stored += [m.payload for m in back.drain(0.5) if m.payload.startswith(b"stored")]
    assert stored == sent
