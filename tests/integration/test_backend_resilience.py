"""The backend when things go wrong: PostgreSQL stopped and restarted under publish
load, mqttd killed under load, mqttd started while PostgreSQL is down, publish_ack =
async with back-pressure, bad hook configuration, and unloading/loading the backend
at runtime with signals."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from test_backend_common import (scalar, seed_lines, sql, start_pg_broker, started_private_postgres, uid, wait_for,
                                 _missing)

pytestmark = [pytest.mark.mqttd_only, pytest.mark.slow]


@pytest.fixture(scope="module")
def private_pg():
    """A PostgreSQL of this module's own, to stop and start."""
    pg = started_private_postgres()
    yield pg
    pg.remove()


class Publisher:
    """Publishes QoS 1 messages with unique payloads from a thread, as fast as paho's
    inflight window (20) lets it; remembers which ones were PUBACKed."""

    def __init__(self, client, topic: str, rate: float | None = None):
        self.c = client
        self.topic = topic
        self.rate = rate
        self.mids: dict[int, bytes] = {}
        self.mids_lock = threading.Lock()  # acked() reads while _run adds
        self.sent = 0
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        i = 0
        while not self.stop_flag.is_set():
            payload = f"load-{i:06d}".encode()
            try:
                mid = self.c.publish(self.topic, payload, qos=1, wait=False)
            except AssertionError:
                break  # the client is gone (broker killed)
            with self.mids_lock:
                self.mids[mid] = payload
            i += 1
            self.sent = i
            if self.rate:
                time.sleep(1.0 / self.rate)
            elif i % 20 == 0:
                time.sleep(0.001)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_flag.set()
        self.thread.join(10)

    def acked(self) -> set[bytes]:
        with self.c._cond:
            done = set(self.c._published)
        with self.mids_lock:
            mids = list(self.mids.items())
        return {p for m, p in mids if m in done}


def stored_counts(dsn: str | None, sender: str) -> dict[str, int]:
    return {r[0]: int(r[1]) for r in sql(
        "select payload, count(*) from mqtt_msg where sender = :'s' group by payload", dsn, s=sender)}


def test_postgres_restart_under_publish_load(start_broker, paho, private_pg):
    """PostgreSQL goes away for two seconds while a client publishes QoS 1: every
    PUBACKed message is in mqtt_msg afterwards, none twice, and the publisher resumes."""
    private_pg.start()
    b = start_broker(seed_lines(private_pg.port))
    sender = uid("loadpub")
    c = paho(b, sender)
    c.connect()
    pub = Publisher(c, uid("load"), rate=400).start()
    time.sleep(1.0)
    private_pg.stop()
    time.sleep(2.0)
    during = len(pub.acked())
    private_pg.start()
    time.sleep(1.5)
    pub.stop()
    wait_for(lambda: len(pub.acked()) == pub.sent, timeout=25, what="every publish acknowledged")
    counts = stored_counts(private_pg.dsn, sender)
    acked = {p.decode() for p in pub.acked()}
    missing = acked - set(counts)
    pg_lines = [line for line in b.log().splitlines() if "pgsql" in line][-30:]
    assert not missing, (f"{len(missing)} PUBACKed messages are not in mqtt_msg: {sorted(missing)[:5]}; "
                         "the backend said:\n" + "\n".join(pg_lines))
    twice = {p: n for p, n in counts.items() if n != 1}
    assert not twice, f"stored more than once: {list(twice.items())[:5]}"
    assert len(counts) == pub.sent
    print(f"\n{pub.sent} messages, {during} acknowledged before the outage ended; all stored once")
    assert "pgsql pool1" in b.log()


def test_sigkill_under_after_commit_load(start_broker, paho):
    """mqttd killed with SIGKILL while a client publishes QoS 1: under after_commit
    every message the client got a PUBACK for is in mqtt_msg."""
    b = start_pg_broker(start_broker)
    sender = uid("killpub")
    c = paho(b, sender)
    c.connect()
    pub = Publisher(c, uid("kill")).start()
    wait_for(lambda: len(pub.acked()) > 500, timeout=20, what="some acknowledged publishes")
    b.kill()
    pub.stop()
    time.sleep(0.3)
    acked = {p.decode() for p in pub.acked()}
    counts = stored_counts(None, sender)
    missing = acked - set(counts)
    assert not missing, f"{len(missing)} of {len(acked)} PUBACKed messages are not in mqtt_msg"
    assert all(n == 1 for n in counts.values())
    print(f"\n{len(acked)} acknowledged before SIGKILL, {len(counts)} stored")


def test_start_while_postgres_is_down(start_broker, paho, private_pg):
    """mqttd starts while PostgreSQL is down: it serves MQTT, logs the error, holds the
    PUBACK of stored publishes (after_commit) and stores them once PostgreSQL is up."""
    private_pg.stop()
    b = start_broker(seed_lines(private_pg.port))
    wait_for(lambda: "[error] pgsql pool1" in b.log(), what="the connection error in the log")
    sub = paho(b, uid("sub"))
    sub.connect()
    sub.subscribe("down/#", 1)
    sender = uid("downpub")
    c = paho(b, sender)
    c.connect()
    c.publish("down/q0", b"zero", qos=0)
    assert sub.get().payload == b"zero"
    mid = c.publish("down/q1", b"one", qos=1, wait=False)
    assert sub.get().payload == b"one"  # routed at once
    time.sleep(1.0)
    assert mid not in c._published, "PUBACK sent before the message was stored"
    private_pg.start()
    c.wait_published([mid], timeout=20)
    assert stored_counts(private_pg.dsn, sender) == {"one": 1}
    assert scalar("select state from mqtt_client where clientid = :'c'", private_pg.dsn, c=sender) == "1"


def test_async_publish_ack_with_back_pressure(start_broker, paho, private_pg):
    """publish_ack = async acknowledges at once, until the queue reaches max_pending:
    then the publisher is held back. Nothing queued is dropped."""
    private_pg.stop()
    b = start_broker(seed_lines(private_pg.port) + ["backend.pgsql.publish_ack = async",
                                                    "backend.pgsql.max_pending = 10"])
    sender = uid("asyncpub")
    c = paho(b, sender)
    c.connect()
    mids = [c.publish("async/x", f"a{i}".encode(), qos=1, wait=False) for i in range(15)]
    time.sleep(1.0)
    with c._cond:
        early = len(set(mids) & c._published)
    assert 3 <= early <= 10, f"{early} acknowledged while the queue was over its bound"
    private_pg.start()
    c.wait_published(mids, timeout=20)
    assert stored_counts(private_pg.dsn, sender) == {f"a{i}": 1 for i in range(15)}


BAD_HOOKS = [
    ("unknown function", '{"action": {"function": "on_nothing"}, "pool": "pool1"}', "unknown function"),
    ("bad JSON", '{"action": {"function": "on_client_connected"}, "pool": "pool1"', "JSON"),
    ("unknown pool", '{"action": {"function": "on_client_connected"}, "pool": "pool9"}', "pool9"),
    ("unknown variable", '{"action": {"sql": ["insert into t values (${nope})"]}, "pool": "pool1"}', "nope"),
]


@pytest.mark.parametrize("what,value,needle", BAD_HOOKS, ids=[b[0] for b in BAD_HOOKS])
def test_bad_hook_is_a_startup_error(tmp_path, what, value, needle):
    binary = os.environ.get("MQTTD_BIN") or str(Path(__file__).resolve().parents[2] / "build" / "mqttd")
    if not os.access(binary, os.X_OK):
        _missing(f"the mqttd binary ({binary})")
    lines = ["listener.tcp.external = 127.0.0.1:18999"] + seed_lines(5432)
    lines.append(f"backend.pgsql.hook.client.connected.7 = {value}")
    conf = tmp_path / "bad.conf"
    conf.write_text("\n".join(lines) + "\n")
    cp = subprocess.run([binary, "-c", str(conf)], capture_output=True, text=True, timeout=10)
    assert cp.returncode == 2, f"{what}: exit {cp.returncode}\n{cp.stdout}{cp.stderr}"
    assert f"{conf}:{len(lines)}" in cp.stderr, cp.stderr
    assert needle in cp.stderr, cp.stderr


def test_unload_and_load_at_runtime(start_broker, paho):
    """SIGUSR1 unloads the backend's hooks (nothing stored, the broker keeps serving),
    SIGUSR2 loads them again."""
    b = start_pg_broker(start_broker)
    sender = uid("signals")
    c = paho(b, sender)
    c.connect()
    c.publish("sig/a", b"stored 1", qos=1)
    os.kill(b.pid, signal.SIGUSR1)
    wait_for(lambda: "backend detached" in b.log(), what="the backend detached")
    c.publish("sig/a", b"not stored", qos=1)
    os.kill(b.pid, signal.SIGUSR2)
    wait_for(lambda: b.log().count("backend attached") >= 2, what="the backend attached again")
    c.publish("sig/a", b"stored 2", qos=1)
    assert sorted(stored_counts(None, sender)) == ["stored 1", "stored 2"]
