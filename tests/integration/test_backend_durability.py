"""Nothing acknowledged is lost: under publish_ack = after_commit a PUBACK or PUBREC
means the message's row has committed. A row that cannot be stored gets a failure
reason code (MQTT 5) or no acknowledgement at all (3.1.1: the connection is closed so
that the client sends the message again); a resent QoS 2 PUBLISH waits for the first
copy's commit; a publisher the broker stopped reading from is not timed out for the
broker's own silence."""

from __future__ import annotations

import threading
import time

import pytest

import mqtt_raw as raw
from mqtt_raw import PUBACK, PUBCOMP, PUBLISH, PUBREC, RawClient
from test_backend_sql_actions import action_table, hook  # noqa: F401 (a fixture)
from test_backend_common import (require_pg, scalar, seed_lines, sql, start_pg_broker, started_private_postgres, uid,
                                 wait_for)

pytestmark = [pytest.mark.mqttd_only]

def long_topic(prefix: str) -> str:
    """250 characters: mqtt_msg.topic is varchar(200)."""
    return (prefix + "/" + "x" * 250)[:250]


@pytest.fixture
def frozen_pg():
    """A PostgreSQL of the test's own, to freeze (SIGSTOP) and thaw."""
    pg = started_private_postgres()
    yield pg
    try:
        pg.thaw()
    except (OSError, ValueError):
        pass
    pg.remove()


def sys_value(port: int, name: str, want: str, timeout: float = 10.0) -> None:
    """Waits until $SYS/broker/<name> (published every second) says `want`."""
    c = RawClient("127.0.0.1", port)
    try:
        c.connect(uid("sys"))
        c.subscribe([("$SYS/broker/" + name, 0)])
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = c.expect(PUBLISH, max(0.1, deadline - time.monotonic())).payload.decode()
            if last == want:
                return
        raise AssertionError(f"$SYS/broker/{name} is {last!r}, not {want!r}")
    finally:
        c.close()


def stored(topic: str, dsn: str | None = None) -> list[str]:
    return [r[0] for r in sql("select payload from mqtt_msg where topic = :'t' order by id", dsn, t=topic)]


def test_v5_publish_that_cannot_be_stored_gets_a_failure_code_and_is_not_routed(start_broker):
    """A QoS 1 and a QoS 2 PUBLISH to a topic longer than mqtt_msg.topic: PUBACK/PUBREC
    0x90 (Topic Name invalid), no row, not delivered to a subscriber; the messages
    around them are stored and acknowledged with 0x00, in order."""
    b = start_pg_broker(start_broker, ["sys_interval = 1s"])
    prefix = uid("dur")
    LONG_TOPIC = long_topic(prefix)
    sub = RawClient("127.0.0.1", b.port)
    sub.connect(uid("dsub"), level=5, props=[])
    sub.send(raw.subscribe5(1, [(prefix + "/#", 1)]))
    sub.expect(raw.SUBACK)
    c = RawClient("127.0.0.1", b.port)
    assert c.connect(uid("dpub"), level=5, props=[]).reason == 0
    ok_topic = prefix + "/ok"
    c.send(raw.publish(ok_topic, "before", qos=1, pid=1, props=[]))
    c.send(raw.publish(LONG_TOPIC, "too-long-1", qos=1, pid=2, props=[]))
    c.send(raw.publish(LONG_TOPIC, "too-long-2", qos=2, pid=3, props=[]))
    c.send(raw.publish(ok_topic, "after", qos=1, pid=4, props=[]))
    acks = [c.recv() for _ in range(4)]
    assert [(a.type, a.pid, a.reason) for a in acks] == [
        (PUBACK, 1, 0x00), (PUBACK, 2, 0x90), (PUBREC, 3, 0x90), (PUBACK, 4, 0x00)]
    # The failed PUBREC ended the exchange: the id is free again [MQTT-4.3.3].
    c.send(raw.publish(ok_topic, "q2", qos=2, pid=3, props=[]))
    rec = c.expect(PUBREC)
    assert (rec.pid, rec.reason) == (3, 0x00)
    got = []
    deadline = time.monotonic() + 5
    while len(got) < 3 and time.monotonic() < deadline:
        p = sub.expect(PUBLISH)
        got.append(p.payload5)
        if p.qos:
            sub.send(raw.ack5(PUBACK, p.pid))
    assert got == [b"before", b"after", b"q2"]
    sub.expect_silence(0.5)
    assert stored(ok_topic) == ["before", "after", "q2"]
    assert scalar("select count(*) from mqtt_msg where topic = :'t'", t=LONG_TOPIC) == "0"
    assert "refused: a column of the table is too short" in b.log()
    sys_value(b.port, "pgsql/operations/unfit", "2")  # counted for the operators
    sys_value(b.port, "pgsql/healthy", "1")


def test_v311_publish_that_cannot_be_stored_closes_without_ack(start_broker):
    """3.1.1 has no negative PUBACK [MQTT-3.3.5-2]: the acks before it are sent, then the
    connection is closed without one for the message that cannot be stored."""
    b = start_pg_broker(start_broker)
    c = RawClient("127.0.0.1", b.port)
    assert c.connect(uid("dpub311")).return_code == 0
    prefix = uid("dur")
    ok_topic = prefix + "/ok"
    c.send(raw.publish(ok_topic, "first", qos=1, pid=1))
    c.send(raw.publish(long_topic(prefix), "too-long", qos=1, pid=2))
    got = c.expect_closed(5)
    assert [(p.type, p.pid) for p in got] == [(PUBACK, 1)]
    assert stored(ok_topic) == ["first"]
    assert "could not be stored" in b.log()


def test_no_insert_privilege_is_reported_and_never_acknowledged_as_stored(start_broker):
    """The pool's user may not INSERT into mqtt_msg: the start-up check names the table
    and the privilege, and a QoS 1 PUBLISH gets PUBACK 0x80 (5.0), not 0x00."""
    require_pg()
    role = uid("ro").lower()
    sql(f'create role "{role}" login password \'pw\'')
    sql(f'grant select, insert, update on mqtt_client, mqtt_sub, mqtt_retain, mqtt_acked to "{role}"; '
        f'grant usage on all sequences in schema public to "{role}"; grant select on mqtt_msg to "{role}"')
    try:
        b = start_pg_broker(start_broker, [f"backend.pgsql.pool1.username = {role}",
                                           "backend.pgsql.pool1.password = pw", "sys_interval = 1s"])
        wait_for(lambda: "lacks the privilege INSERT" in b.log(), timeout=10, what="the table check's report")
        assert "table mqtt_msg cannot be used" in b.log()
        c = RawClient("127.0.0.1", b.port)
        assert c.connect(uid("nopriv"), level=5, props=[]).reason == 0
        topic = "t/" + uid("np")
        c.send(raw.publish(topic, "x", qos=1, pid=9, props=[]))
        ack = c.expect(PUBACK, 10)
        assert (ack.pid, ack.reason) == (9, 0x80)
        assert stored(topic) == []
        sys_value(b.port, "pgsql/healthy", "0")
        sys_value(b.port, "pgsql/operations/failed", "1")
        c.close()
        b.stop()
    finally:
        sql(f'drop owned by "{role}"; drop role "{role}"')


def test_resent_qos2_publish_waits_for_the_first_copy_to_commit(start_broker, frozen_pg):
    """A QoS 2 PUBLISH sent while PostgreSQL is frozen, then again with DUP on a new
    connection: no PUBREC until the first copy's row has committed, and one row."""
    b = start_pg_broker(start_broker, port=frozen_pg.port)
    cid = uid("q2resend")
    topic = "t/" + uid("q2")
    c = RawClient("127.0.0.1", b.port)
    assert c.connect(cid, clean=False).return_code == 0
    frozen_pg.freeze()
    c.send(raw.publish(topic, "once", qos=2, pid=7))
    c.expect_silence(1.0)
    c.close()
    c2 = RawClient("127.0.0.1", b.port)
    ack = c2.connect(cid, clean=False)
    assert ack.return_code == 0 and ack.session_present
    c2.send(raw.publish(topic, "once", qos=2, pid=7, dup=True))
    c2.expect_silence(2.0)  # PostgreSQL still frozen: the first copy is not stored
    frozen_pg.thaw()
    rec = c2.expect(PUBREC, 30)
    assert rec.pid == 7
    c2.send(raw.pubrel(7))
    assert c2.expect(raw.PUBCOMP).pid == 7
    assert stored(topic, frozen_pg.dsn) == ["once"]


def test_publisher_held_back_is_not_timed_out_for_the_brokers_silence(start_broker, frozen_pg):
    """Keep-alive 2 s; PostgreSQL frozen for longer than the keep-alive: the broker
    stops reading from the publisher whose acks it holds, and must not close it with
    0x8D (Keep Alive timeout) nor publish its will; once PostgreSQL is back every
    PUBACK comes, 0x00, in order."""
    b = start_pg_broker(start_broker, ["mqtt.max_inflight = 16"], port=frozen_pg.port)  # Receive Maximum 16
    will_topic = "will/" + uid("w")
    watcher = RawClient("127.0.0.1", b.port)
    watcher.connect(uid("watch"))
    watcher.subscribe([(will_topic, 0)])
    c = RawClient("127.0.0.1", b.port, timeout=30)
    assert c.connect(uid("held"), level=5, keepalive=2, props=[], will_topic=will_topic, will_payload=b"gone",
                     will_props=[]).reason == 0
    topic = "t/" + uid("held")
    frozen_pg.freeze()
    n = 16  # the whole Receive Maximum: the broker stops reading at 16 acks held
    for i in range(1, n + 1):
        c.send(raw.publish(topic, f"m{i}", qos=1, pid=i, props=[]))
    c.expect_silence(8.0)  # 4 keep-alive periods
    frozen_pg.thaw()
    acks = [c.expect(PUBACK, 30) for _ in range(n)]
    assert [(a.pid, a.reason) for a in acks] == [(i, 0) for i in range(1, n + 1)]
    assert stored(topic, frozen_pg.dsn) == [f"m{i}" for i in range(1, n + 1)]
    watcher.expect_silence(0.5)
    assert "keep-alive timeout" not in b.log()


def test_held_qos2_publishes_count_once_against_the_receive_maximum(start_broker, frozen_pg):
    """A QoS 2 PUBLISH whose PUBREC waits for its commit counts once against the Receive
    Maximum [MQTT-3.3.4-9], not as a pending ack and again as an unreleased message: a
    client using the whole window (16) is not disconnected with 0x93."""
    b = start_pg_broker(start_broker, ["mqtt.max_inflight = 16"], port=frozen_pg.port)
    c = RawClient("127.0.0.1", b.port, timeout=30)
    assert c.connect(uid("rm2"), level=5, props=[]).props[raw.RECEIVE_MAXIMUM] == [16]
    topic = "t/" + uid("rm2")
    frozen_pg.freeze()
    n = 16
    for i in range(1, n + 1):
        c.send(raw.publish(topic, f"m{i}", qos=2, pid=i, props=[]))
    c.expect_silence(2.0)  # nothing stored yet, so no PUBREC, and no DISCONNECT either
    frozen_pg.thaw()
    recs = [c.expect(PUBREC, 30) for _ in range(n)]
    assert [(r.pid, r.reason) for r in recs] == [(i, 0) for i in range(1, n + 1)]
    for i in range(1, n + 1):
        c.send(raw.pubrel(i))
    assert [c.expect(PUBCOMP).pid for _ in range(n)] == list(range(1, n + 1))
    assert stored(topic, frozen_pg.dsn) == [f"m{i}" for i in range(1, n + 1)]


def test_failing_sql_action_of_message_publish_fails_the_acknowledgement(start_broker, action_table):
    """Under after_commit a message.publish SQL action holds the PUBACK like a built-in
    function: one of its statements failing (a missing table) gives PUBACK 0x80, never
    0x00; the statements after it still run."""
    t = action_table
    b = start_broker(seed_lines(hooks=False) + [
        hook("message.publish", 1, [
            "insert into no_such_table values (${msgid})",
            f"insert into {t}(hook, clientid, msgid) values('publish-second', ${{clientid}}, ${{msgid}})"]),
    ])
    c = RawClient("127.0.0.1", b.port)
    cid = uid("actfail")
    assert c.connect(cid, level=5, props=[]).reason == 0
    c.send(raw.publish("act/fail", "x", qos=1, pid=5, props=[]))
    ack = c.expect(PUBACK, 10)
    assert (ack.pid, ack.reason) == (5, 0x80)
    wait_for(lambda: sql(f"select 1 from {t} where clientid = :'c'", c=cid), what="the statement after the failing one")
    assert "no_such_table" in b.log()


def test_qos2_ack_pointer_moves_at_pubcomp_not_pubrec(start_broker):
    """A QoS 2 message passes the offline ack pointer only when the exchange ends: a
    client may hand it to its application at PUBREL, which a broker killed after PUBREC
    would never send; a pointer moved at PUBREC would lose it for good."""
    b = start_pg_broker(start_broker)
    topic = uid("q2ptr")
    cid = uid("q2sub")
    sub = RawClient("127.0.0.1", b.port)
    sub.connect(cid, clean=False)
    sub.subscribe([(topic, 2)])
    wait_for(lambda: sql("select 1 from mqtt_acked where clientid = :'c'", c=cid), what="the ack pointer")
    pub = RawClient("127.0.0.1", b.port)
    pub.connect(uid("q2pub"))
    pub.publish_qos2(topic, "held by the client until PUBREL", pid=1)
    got = sub.expect(PUBLISH)
    assert got.qos == 2
    row = scalar("select id from mqtt_msg where topic = :'t'", t=topic)

    def pointer():
        return int(scalar("select mid from mqtt_acked where clientid = :'c' and topic = :'t'", c=cid, t=topic))

    sub.send(raw.pubrec(got.pid))
    assert sub.expect(raw.PUBREL).pid == got.pid
    # A later row through the same stream: once it is stored, the ack (had there been
    # one at PUBREC) would have been written before it.
    pub.publish_qos1("other/" + topic, "marker", pid=2)
    assert pointer() < int(row)
    sub.send(raw.pubcomp(got.pid))
    wait_for(lambda: pointer() == int(row), what="the pointer at the message after PUBCOMP")


def sys_latest(port: int, name: str, seconds: float = 2.5) -> str:
    """The last value of $SYS/broker/<name> seen in `seconds` (it is published every second)."""
    c = RawClient("127.0.0.1", port)
    try:
        c.connect(uid("sys"))
        c.subscribe([("$SYS/broker/" + name, 0)])
        last = c.expect(PUBLISH).payload.decode()
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                last = c.expect(PUBLISH, left).payload.decode()
            except TimeoutError:
                break
        return last
    finally:
        c.close()


def test_outage_with_clients_coming_and_going_stays_bounded(start_broker, frozen_pg):
    """PostgreSQL frozen, max_pending 10: 150 clients connect, subscribe and leave. What
    the backend queues for them stays within twice the bound (connect rows, lookups and
    fetches are shed, a disconnect row goes with its connect row), and once PostgreSQL is
    back no client that left is shown online in mqtt_client."""
    b = start_pg_broker(start_broker, ["backend.pgsql.max_pending = 10", "sys_interval = 1s"], port=frozen_pg.port)
    wait_for(lambda: "payload columns" in b.log(), what="the backend's first connection")
    frozen_pg.freeze()
    prefix = uid("churn")
    ids = [f"{prefix}_{i}" for i in range(150)]
    for cid in ids:
        c = RawClient("127.0.0.1", b.port)
        assert c.connect(cid).return_code == 0
        c.subscribe([(f"{prefix}/{cid}", 1)])
        c.send(raw.disconnect())
        c.expect_closed()
    assert int(sys_latest(b.port, "pgsql/operations/pending")) <= 20
    assert int(sys_latest(b.port, "pgsql/operations/refused")) > 0
    frozen_pg.thaw()
    sys_value(b.port, "pgsql/operations/pending", "0", timeout=30)
    online = sql("select clientid from mqtt_client where clientid like :'p' and state = 1", frozen_pg.dsn,
                 p=prefix + "%")
    assert online == []



def test_stored_backlog_arrives_in_order_through_a_live_flood(start_broker, paho):
    """A backlog of 60 stored messages, six times the session queue (mqtt.max_mqueue_len
    = 10, so pages of 5), for a subscriber that was away. It subscribes again and stops
    reading at the first message (its PUBACKs wait), while live messages to the same
    topic fill its queue; then it reads on while a publisher floods the topic. Every
    stored message arrives exactly once and in stored order: the queue never drops one
    for a live message (before, the oldest queued was evicted and fetched again after
    later ones); the first page comes ahead of the live messages queued with it; the
    live ones keep their order; and the ack pointer ends past the stored backlog."""
    b = start_pg_broker(start_broker, ["mqtt.max_mqueue_len = 10", "mqtt.max_inflight = 2"])
    cid, topic = uid("order"), uid("order")
    sub = paho(b, cid)
    sub.connect()
    sub.subscribe(topic, 1)
    wait_for(lambda: sql("select 1 from mqtt_acked where clientid = :'c' and topic = :'t'", c=cid, t=topic),
             what="the ack pointer")
    sub.disconnect()
    pub = paho(b, uid("orderpub"))
    pub.connect()
    stored_sent = [f"stored {i:03d}".encode() for i in range(60)]
    for p in stored_sent:
        pub.publish(topic, p, qos=1)  # waits for the PUBACK: the row has committed
    newest_stored = scalar("select max(id) from mqtt_msg where topic = :'t'", t=topic)

    back = paho(b, cid)
    first_seen, reading = threading.Event(), threading.Event()
    handle = back.c.on_message

    def held(client, userdata, m):
        # paho 1.6 sends the PUBACK once this returns: the broker's window stays full.
        first_seen.set()
        reading.wait(60)
        handle(client, userdata, m)

    back.c.on_message = held
    back.connect()
    back.subscribe(topic, 1)
    assert first_seen.wait(10), "the first page never came"
    live_sent = [f"live {i:04d}".encode() for i in range(400)]
    pub.wait_published([pub.publish(topic, p, qos=1, wait=False) for p in live_sent[:8]], timeout=30)
    reading.set()
    pub.wait_published([pub.publish(topic, p, qos=1, wait=False) for p in live_sent[8:]], timeout=60)
    got: list[bytes] = []
    deadline = time.monotonic() + 60
    while sum(p.startswith(b"stored") for p in got) < len(stored_sent) and time.monotonic() < deadline:
        got += [m.payload for m in back.drain(0.2)]
    got += [m.payload for m in back.drain(0.5)]  # a stored message twice would come now
    assert [p for p in got if p.startswith(b"stored")] == stored_sent
    live_got = [p for p in got if p.startswith(b"live")]
    assert live_got == sorted(set(live_got))
    assert live_got and got.index(b"stored 004") < got.index(live_got[0])
    wait_for(lambda: int(scalar("select mid from mqtt_acked where clientid = :'c' and topic = :'t'",
                                c=cid, t=topic)) >= int(newest_stored),
             what="the pointer past the stored backlog")
