"""The acknowledgement of a stored publish, packet by packet, while PostgreSQL cannot
commit: the invariant the load scenarios check in bulk, here on the exact flows where a
broker can get it wrong.

* A QoS 2 PUBLISH sent again (DUP) after a reconnect while its first copy's row is not
  committed: no PUBREC until the row is committed. Proof by consequence: every message
  that completed (PUBCOMP) is still in mqtt_msg after mqttd is SIGKILLed and
  PostgreSQL thawed.
* A row PostgreSQL refuses (a topic longer than mqtt_msg.topic's varchar(200)) is not
  acknowledged as a success: MQTT 5 gets PUBACK / PUBREC with a failure reason code
  (0x80 or above), MQTT 3.1.1, which has no such codes, gets no PUBACK.
* Held acknowledgements do not stop keep-alive: a publisher whose PUBACK waits for a
  frozen PostgreSQL and that keeps sending PINGREQ keeps its connection.
"""

from __future__ import annotations

import signal
import time

import pytest

import mqtt_raw as raw
from faults_common import Outcome, log_excerpt, pg_lines, pg_signal, start_pg_broker, stored_payloads, uid, wait_for

pytestmark = [pytest.mark.mqttd_only, pytest.mark.slow]


def _collect(c: raw.RawClient, seconds: float) -> list:
    got = []
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return got
        try:
            got.append(c.recv(left))
        except TimeoutError:
            return got


def test_qos2_resend_after_reconnect_waits_for_commit(start_broker, report, private_pg):
    out = Outcome("QoS 2 PUBLISH resent after reconnect while its row is uncommitted")
    private_pg.start()
    b = start_broker(pg_lines(private_pg.port))
    tag = uid("resend")
    cid = f"{tag}-pub"
    topic = f"faults/{tag}"
    n = 10
    c = raw.RawClient(b.host, b.port)
    c.connect(cid, clean=False)
    pg_signal(private_pg, signal.SIGSTOP)
    out.faults += 1
    try:
        for pid in range(1, n + 1):
            c.send(raw.publish(topic, f"{tag}-{pid}", qos=2, pid=pid))
        early = [p for p in _collect(c, 1.0) if p.type == raw.PUBREC]
        c.close()
        c = raw.RawClient(b.host, b.port)
        ack = c.connect(cid, clean=False)
        assert ack.session_present, "the session was not resumed"
        for pid in range(1, n + 1):
            c.send(raw.publish(topic, f"{tag}-{pid}", qos=2, pid=pid, dup=True))
        recs = early + [p for p in _collect(c, 2.0) if p.type == raw.PUBREC]
        for p in recs:
            c.send(raw.pubrel(p.pid))
        comps = {p.pid for p in _collect(c, 1.0) if p.type == raw.PUBCOMP}
        completed = {f"{tag}-{pid}" for pid in comps}
        if recs:
            out.violations.append(f"{len(recs)} PUBREC sent while PostgreSQL was frozen (rows not committed): "
                                  f"packet ids {sorted(p.pid for p in recs)}")
        b.kill()  # before any of the rows could commit
    finally:
        pg_signal(private_pg, signal.SIGCONT)
    c.close()
    out.check_stored(completed, stored_payloads(private_pg.dsn, cid))
    out.notes = {"published": n, "pubrec_while_frozen": len(recs), "pubcomp": len(comps)}
    report.finish(out, log_excerpt(b))


LONG = "x" * 250  # mqtt_msg.topic is varchar(200)


def test_row_refused_by_postgres_is_not_acknowledged(start_broker, report):
    out = Outcome("row refused by PostgreSQL (topic over varchar(200))")
    b = start_pg_broker(start_broker)
    tag = uid("refused")
    topic = f"faults/{tag}/{LONG}"
    # MQTT 5: a failure reason code
    c5 = raw.RawClient(b.host, b.port)
    c5.send(raw.connect(f"{tag}-v5", level=5, props=[]))
    c5.expect(raw.CONNACK)
    c5.send(raw.publish(topic, f"{tag}-q1", qos=1, pid=1, props=[]))
    a1 = c5.expect(raw.PUBACK, timeout=10)
    c5.send(raw.publish(topic, f"{tag}-q2", qos=2, pid=2, props=[]))
    a2 = c5.expect(raw.PUBREC, timeout=10)
    out.notes["v5_puback_reason"] = hex(a1.reason)
    out.notes["v5_pubrec_reason"] = hex(a2.reason)
    if a1.reason < 0x80:
        out.violations.append(f"MQTT 5 QoS 1: PUBACK reason {a1.reason:#04x} for a row PostgreSQL refused")
    if a2.reason < 0x80:
        out.violations.append(f"MQTT 5 QoS 2: PUBREC reason {a2.reason:#04x} for a row PostgreSQL refused")
    c5.close()
    # MQTT 3.1.1: no PUBACK (the connection may be closed)
    c4 = raw.RawClient(b.host, b.port)
    c4.connect(f"{tag}-v4")
    c4.send(raw.publish(topic, f"{tag}-v4", qos=1, pid=3))
    try:
        got = [p for p in _collect(c4, 3.0) if p.type == raw.PUBACK]
    except raw.Closed:
        got = []
    if got:
        out.violations.append("MQTT 3.1.1: PUBACK for a row PostgreSQL refused")
    c4.close()
    acked = {p for p, ok in ((f"{tag}-q1", a1.reason < 0x80), (f"{tag}-q2", a2.reason < 0x80),
                             (f"{tag}-v4", bool(got))) if ok}
    out.check_stored(acked, stored_payloads(None, f"{tag}-%"))
    wait_for(lambda: "refused" in b.log(), timeout=10, what="the refused row in the log")
    report.finish(out, log_excerpt(b, ("refused", "stored", "pgsql")))


def test_held_acks_do_not_stop_keepalive(start_broker, report, private_pg):
    out = Outcome("held PUBACKs with PINGREQs, PostgreSQL frozen beyond keep-alive")
    private_pg.start()
    b = start_broker(pg_lines(private_pg.port))
    tag = uid("ka")
    keepalive = 4
    clients = {}
    for level in (4, 5):
        c = raw.RawClient(b.host, b.port)
        if level == 5:
            c.send(raw.connect(f"{tag}-v5", level=5, keepalive=keepalive, props=[]))
            c.expect(raw.CONNACK)
        else:
            c.connect(f"{tag}-v4", keepalive=keepalive)
        clients[level] = c
    pg_signal(private_pg, signal.SIGSTOP)
    out.faults += 1
    started = time.monotonic()
    try:
        for level, c in clients.items():
            c.send(raw.publish(f"faults/{tag}", f"{tag}-v{level}", qos=1, pid=1,
                               props=[] if level == 5 else None))
        # 4 x keep-alive of PINGREQs every half keep-alive: each must be answered
        while time.monotonic() - started < 4 * keepalive:
            for level, c in clients.items():
                if c.closed:
                    continue
                try:
                    c.send(raw.pingreq())
                    pkts = _collect(c, keepalive / 2)
                except raw.Closed:
                    pkts = None
                if pkts is None or c.closed:
                    out.violations.append(f"MQTT {'5' if level == 5 else '3.1.1'}: connection closed after "
                                          f"{time.monotonic() - started:.1f}s of held PUBACK with PINGREQs")
                elif raw.DISCONNECT in {p.type for p in pkts}:
                    d = next(p for p in pkts if p.type == raw.DISCONNECT)
                    out.violations.append(f"MQTT 5: DISCONNECT {d.reason:#04x} after "
                                          f"{time.monotonic() - started:.1f}s of held PUBACK with PINGREQs")
                    c.close()
                elif raw.PINGRESP not in {p.type for p in pkts}:
                    out.violations.append(f"MQTT {level}: no PINGRESP within half the keep-alive")
    finally:
        pg_signal(private_pg, signal.SIGCONT)
    thawed = time.monotonic()
    for level, c in clients.items():
        if not c.closed:
            try:
                c.expect(raw.PUBACK, timeout=20)
                out.acked += 1
            except (AssertionError, TimeoutError, raw.Closed) as e:
                out.violations.append(f"MQTT {level}: no PUBACK after PostgreSQL was thawed: {e}")
        c.close()
    out.recovered(time.monotonic() - thawed)
    out.stall(thawed - started)
    report.finish(out, log_excerpt(b))
