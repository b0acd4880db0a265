"""The built-in functions of the PostgreSQL backend, one by one, with the real mqttd,
real MQTT clients and the real tables; and the seed document's example queries, which
must return what the document shows."""

from __future__ import annotations

import time

import pytest

from test_backend_common import scalar, seed_lines, sql, start_pg_broker, uid, wait_for

pytestmark = pytest.mark.mqttd_only

MSG_COLUMNS = ["id", "msgid", "sender", "topic", "qos", "retain", "payload", "arrived"]


def columns(table: str) -> list[str]:
    return [r[0] for r in sql(
        "SELECT column_name FROM information_schema.columns WHERE table_name = :'t' ORDER BY ordinal_position",
        t=table)]


def test_client_connected_and_disconnected(start_broker, paho):
    """on_client_connected / on_client_disconnected: the seed's "is client 'test'
    online" query shows state 1 with the node name, then state 0 with offline_at."""
    b = start_pg_broker(start_broker)
    cid = uid("test")
    c = paho(b, cid)
    c.connect()
    query = "select * from mqtt_client where clientid = :'c'"
    rows = wait_for(lambda: sql(query, c=cid), what="the mqtt_client row")
    assert columns("mqtt_client") == ["id", "clientid", "state", "node", "online_at", "offline_at", "created"]
    _id, clientid, state, node, online_at, offline_at, created = rows[0]
    assert (clientid, state, node) == (cid, "1", "mqttd@test")
    assert online_at is not None and created is not None and offline_at is None

    c.disconnect()
    rows = wait_for(lambda: [r for r in sql(query, c=cid) if r[2] == "0"], what="state 0")
    _id, _, state, node, online_at2, offline_at, created2 = rows[0]
    assert (state, node) == ("0", "mqttd@test")
    assert offline_at is not None and offline_at >= online_at
    assert (online_at2, created2) == (online_at, created)

    # Connecting again: online, offline_at cleared, created kept.
    c2 = paho(b, cid)
    c2.connect()
    rows = wait_for(lambda: [r for r in sql(query, c=cid) if r[2] == "1"], what="state 1 again")
    assert rows[0][5] is None and rows[0][6] == created


def test_takeover_late_disconnect_keeps_new_connection_online(start_broker, paho):
    """A second connection with the same client id takes over; the first one's
    client.disconnected comes late and must not mark the new connection offline."""
    b = start_pg_broker(start_broker)
    cid = uid("takeover")
    first = paho(b, cid)
    first.connect()
    wait_for(lambda: scalar("select state from mqtt_client where clientid = :'c'", c=cid) == "1")
    for _ in range(3):
        nxt = paho(b, cid)
        nxt.connect()
        assert first.wait_disconnected(5), "the first connection was not taken over"
        first = nxt
    time.sleep(0.5)
    assert scalar("select state from mqtt_client where clientid = :'c'", c=cid) == "1"
    first.disconnect()
    wait_for(lambda: scalar("select state from mqtt_client where clientid = :'c'", c=cid) == "0")


def test_subscribe_lookup_seed_example(start_broker, paho):
    """on_subscribe_lookup: the seed's "client 'test' subscribes to test_topic1 (QoS 1)
    and test_topic2 (QoS 2)" rows make the client subscribed when it connects."""
    b = start_pg_broker(start_broker)
    cid = uid("test")
    t1, t2 = uid("test_topic1"), uid("test_topic2")
    sql("insert into mqtt_sub(clientid, topic, qos) values(:'c', :'t1', 1);"
        "insert into mqtt_sub(clientid, topic, qos) values(:'c', :'t2', 2);", c=cid, t1=t1, t2=t2)
    rows = sql("select * from mqtt_sub where clientid = :'c' order by id", c=cid)
    assert [(r[1], r[2], r[3]) for r in rows] == [(cid, t1, "1"), (cid, t2, "2")]

    c = paho(b, cid)
    c.connect()
    # The restored QoS > 0 subscriptions create their ack pointers (on_message_fetch).
    wait_for(lambda: scalar("select count(*) from mqtt_acked where clientid = :'c'", c=cid) == "2",
             what="the restored subscriptions")
    pub = paho(b, uid("pub"))
    pub.connect()
    pub.publish(t1, b"one", qos=1)
    pub.publish(t2, b"two", qos=2)
    got = sorted(c.collect(2), key=lambda m: m.topic)
    assert [(m.topic, m.payload, m.qos) for m in got] == sorted([(t1, b"one", 1), (t2, b"two", 2)])


def test_message_publish_seed_example(start_broker, paho):
    """on_message_publish: QoS 1 and 2 messages are rows of mqtt_msg (the seed's
    "messages published by client 'test'" query); QoS 0 and the deletion of a
    retained message are not. Under after_commit the row exists once PUBACK is in."""
    b = start_pg_broker(start_broker)
    sender = uid("test")
    hello, world = uid("hello"), uid("world")
    c = paho(b, sender)
    c.connect()
    c.publish(hello, b"hello", qos=1)
    c.publish(world, b"world", qos=2)
    c.publish(world, b"not stored", qos=0)
    c.publish(world, b"", qos=1, retain=True)
    rows = sql("select * from mqtt_msg where sender = :'s' order by id", s=sender)
    assert columns("mqtt_msg") == MSG_COLUMNS
    assert [(r[2], r[3], r[4], r[5], r[6]) for r in rows] == [
        (sender, hello, "1", "0", "hello"), (sender, world, "2", "0", "world")]
    for r in rows:
        assert r[1] and len(r[1]) <= 60  # msgid
        assert r[7] is not None  # arrived
    assert rows[0][1] != rows[1][1]


def test_message_retain_and_retain_delete_seed_example(start_broker, paho):
    """on_message_retain / on_retain_delete: the seed's retained-message query."""
    b = start_pg_broker(start_broker)
    sender = uid("test")
    topic = uid("retain")
    c = paho(b, sender)
    c.connect()
    c.publish(topic, b"www", qos=1, retain=True)
    rows = sql("select * from mqtt_retain where topic = :'t'", t=topic)
    assert columns("mqtt_retain") == ["id", "topic", "msgid", "sender", "qos", "payload", "arrived"]
    assert len(rows) == 1
    _id, t, msgid, s, qos, payload, arrived = rows[0]
    assert (t, s, qos, payload) == (topic, sender, "1", "www")
    assert msgid and arrived
    # A retained message is also a message (on_message_publish stores it, retain = 1).
    assert scalar("select retain from mqtt_msg where msgid = :'m'", m=msgid) == "1"

    c.publish(topic, b"replaced", qos=0, retain=True)
    wait_for(lambda: scalar("select payload from mqtt_retain where topic = :'t'", t=topic) == "replaced")
    assert scalar("select qos from mqtt_retain where topic = :'t'", t=topic) == "0"

    c.publish(topic, b"", qos=1, retain=True)
    assert sql("select * from mqtt_retain where topic = :'t'", t=topic) == []


def test_retain_lookup_served_from_postgresql(start_broker, paho):
    """on_retain_lookup: retained messages come from mqtt_retain (a row an application
    inserted too), for wildcard filters as well, once each, with the retain flag."""
    b = start_pg_broker(start_broker)
    base = uid("rl")
    sql("insert into mqtt_retain(topic, msgid, sender, qos, payload, arrived) "
        "values(:'t', 'app-1', 'app', 1, 'from the database', now())", t=f"{base}/db")
    pub = paho(b, uid("pub"))
    pub.connect()
    pub.publish(f"{base}/mqtt", b"via mqtt", qos=1, retain=True)
    pub.publish(f"{base}/deep/er", b"deeper", qos=0, retain=True)
    wait_for(lambda: scalar("select count(*) from mqtt_retain where topic like :'p'", p=f"{base}/%") == "3")

    exact = paho(b, uid("exact"))
    exact.connect()
    exact.subscribe(f"{base}/db", 1)
    m = exact.get()
    assert (m.topic, m.payload, m.retain, m.qos) == (f"{base}/db", b"from the database", True, 1)
    exact.expect_none(0.5)

    wild = paho(b, uid("wild"))
    wild.connect()
    wild.subscribe(f"{base}/+", 1)
    got = sorted((m.topic, m.payload, m.retain) for m in wild.collect(2))
    assert got == [(f"{base}/db", b"from the database", True), (f"{base}/mqtt", b"via mqtt", True)]
    wild.expect_none(0.7)  # not sent a second time from the broker's memory

    everything = paho(b, uid("all"))
    everything.connect()
    everything.subscribe(f"{base}/#", 2)
    assert len(everything.collect(3)) == 3
    everything.expect_none(0.5)


def test_retain_lookup_honours_retain_handling(start_broker, paho, paho5):
    """on_retain_lookup with MQTT 5.0 subscription options: Retain Handling 0 sends the
    retained message at every SUBSCRIBE, 1 only when the subscription is new, 2 never;
    a shared subscription gets none."""
    b = start_pg_broker(start_broker)
    topic, marker = uid("rh"), uid("rh_marker")
    pub = paho(b, uid("pub"))
    pub.connect()
    pub.publish(topic, b"kept", qos=1, retain=True)
    pub.publish(marker, b"marker", qos=1, retain=True)
    c = paho5(b, uid("sub"))
    c.connect()

    def subscribe(filter_, rh):
        assert c.subscribe(filter_, qos=1, retain_handling=rh) == (1,)

    def retained_sent():
        """What the subscriptions before got: the lookups run in order, so once the
        marker's retained message is in, theirs would be too."""
        subscribe(marker, 0)
        got = []
        while True:
            m = c.get(10)
            if m.topic == marker:
                return [(m.topic, m.payload, m.retain) for m in got]
            got.append(m)

    subscribe(topic, 2)
    assert retained_sent() == []
    subscribe(topic, 1)  # the subscription exists
    assert retained_sent() == []
    c.unsubscribe(topic)
    subscribe(topic, 1)  # new again
    assert retained_sent() == [(topic, b"kept", True)]
    subscribe(topic, 0)  # exists, but 0 sends all the same
    assert retained_sent() == [(topic, b"kept", True)]
    subscribe(f"$share/g/{topic}", 0)
    assert retained_sent() == []


def test_message_store_stores_qos0(start_broker, paho):
    """on_message_store (the seed's commented publish.4 line, with on_message_fetch
    disabled as its warning says): every QoS is stored, QoS 0 included."""
    lines = [l for l in seed_lines() if "on_message_fetch" not in l and "on_message_publish" not in l]
    lines.append('backend.pgsql.hook.message.publish.4     = {"topic": "#", "action": '
                 '{"function": "on_message_store"}, "pool": "pool1"}')
    b = start_broker(lines)
    sender = uid("store")
    c = paho(b, sender)
    c.connect()
    for q in (0, 1, 2):
        c.publish(f"store/{sender}", f"q{q}".encode(), qos=q)
    rows = wait_for(lambda: sql("select qos, payload from mqtt_msg where sender = :'s' order by id", s=sender)
                    if scalar("select count(*) from mqtt_msg where sender = :'s'", s=sender) == "3" else None)
    assert rows == [["0", "q0"], ["1", "q1"], ["2", "q2"]]


def test_hook_topic_filter(start_broker, paho):
    """A hook's "topic" filter: a message hook runs only for matching topics."""
    lines = seed_lines(hooks=False) + [
        'backend.pgsql.hook.message.publish.1 = {"topic": "only/+/here", "action": '
        '{"function": "on_message_publish"}, "pool": "pool1"}']
    b = start_broker(lines)
    sender = uid("filter")
    c = paho(b, sender)
    c.connect()
    c.publish("only/x/here", b"yes", qos=1)
    c.publish("only/x/there", b"no", qos=1)
    c.publish("elsewhere", b"no", qos=1)
    assert sql("select topic from mqtt_msg where sender = :'s'", s=sender) == [["only/x/here"]]


def test_injection_attempts_are_stored_literally(start_broker, paho):
    """Client ids, topics and payloads are bound parameters, never SQL text."""
    b = start_pg_broker(start_broker)
    cid = "x'); DROP TABLE mqtt_msg;--" + uid("")
    topic = "t/'; DROP TABLE mqtt_retain;--/" + uid("")
    payload = "'); DELETE FROM mqtt_client; --".encode()
    c = paho(b, cid)
    c.connect()
    c.publish(topic, payload, qos=1, retain=True)
    c.publish(topic + "/$1 \\ %", b"$1::text", qos=1)
    rows = sql("select sender, topic, payload from mqtt_msg where sender = :'s' order by id", s=cid)
    assert rows == [[cid, topic, payload.decode()], [cid, topic + "/$1 \\ %", "$1::text"]]
    assert scalar("select payload from mqtt_retain where topic = :'t'", t=topic) == payload.decode()
    assert scalar("select state from mqtt_client where clientid = :'c'", c=cid) == "1"
    for table in ("mqtt_msg", "mqtt_retain", "mqtt_client", "mqtt_sub", "mqtt_acked"):
        assert scalar("select to_regclass(:'t') is not null", t=table) == "t"
    assert int(scalar("select count(*) from mqtt_client")) >= 1
