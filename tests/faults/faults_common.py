"""Shared by the fault-injection tests; it holds no tests itself.

The clients, the broker fixture, the private PostgreSQL clusters and the psql helper
are the integration tests' own (tests/integration), imported from there. What this
module adds: publishers and subscribers that remember, per payload, what was
acknowledged and what arrived; the invariant checks run after every fault; the
figures each scenario reports; and the controls of the faults themselves (stopping,
killing and freezing a PostgreSQL cluster, cutting its network without a FIN, filling
its disk).
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
INTEGRATION = HERE.parent / "integration"
if str(INTEGRATION) not in sys.path:
    sys.path.insert(0, str(INTEGRATION))


def _load_integration_conftest():
    """tests/integration/conftest.py under a name of its own (this directory's conftest
    is `conftest` too)."""
    name = "integration_conftest"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, INTEGRATION / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


ic = _load_integration_conftest()

# re-exported for the tests
from test_backend_common import (PG_ENV, PrivatePostgres, private_postgres_available, require_pg,  # noqa: E402,F401
                                 scalar, seed_lines, sql, start_pg_broker, uid, wait_for)

REPO = ic.REPO
IN_CI = ic.IN_CI
missing = ic.missing
SOAK = os.environ.get("MQTTD_FAULTS_SOAK", "").lower() in ("1", "true", "yes")
LOAD_BIN = os.environ.get("MQTTD_LOAD_BIN") or str(REPO / "build" / "bench" / "mqtt_load")
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def soak(ci_value, soak_value):
    """The CI figure, or the soak figure under MQTTD_FAULTS_SOAK=1."""
    return soak_value if SOAK else ci_value


def seeded_rng(name: str) -> random.Random:
    """A RNG for the fault moments; its seed is printed (MQTTD_FAULTS_SEED replays it)."""
    seed = int(os.environ.get("MQTTD_FAULTS_SEED") or random.SystemRandom().randrange(1 << 31))
    print(f"\n[{name}] fault schedule seed: {seed} (MQTTD_FAULTS_SEED={seed} replays it)")
    return random.Random(seed), seed


# ---------------------------------------------------------------------------
# Publishers and subscribers that remember every payload
# ---------------------------------------------------------------------------

class TrackedPublisher:
    """Publishes unique payloads at QoS 1 or 2 from a thread of its own through a
    paho client (MQTT 3.1.1 or 5), and records when each one was sent and when it
    was acknowledged (PUBACK for QoS 1, PUBCOMP for QoS 2).

    rate: messages per second (None: as fast as a window of 20 unacknowledged messages
    lets it).
    """

    WINDOW = 20

    def __init__(self, client, topic: str, qos: int, rate: float | None = None, tag: str | None = None):
        self.c = client
        self.topic = topic
        self.qos = qos
        self.rate = rate
        self.tag = tag or client.client_id
        self.lock = threading.Condition()
        self.sent_at: dict[int, tuple[str, float]] = {}  # mid -> (payload, time sent)
        self.acked_at: dict[int, float] = {}              # mid -> time acknowledged
        self.sent = 0
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        inner = client.c.on_publish

        def on_publish(cl, userdata, mid):
            with self.lock:
                self.acked_at.setdefault(mid, time.monotonic())
                self.lock.notify_all()
            inner(cl, userdata, mid)

        client.c.on_publish = on_publish

    def _run(self):
        i = 0
        next_at = time.monotonic()
        while not self.stop_flag.is_set():
            payload = f"{self.tag}-{i:07d}"
            now = time.monotonic()
            try:
                info = self.c.c.publish(self.topic, payload.encode(), self.qos)
            except Exception:
                break
            if info.rc != 0:
                break  # the connection is gone
            with self.lock:
                self.sent_at[info.mid] = (payload, now)
            i += 1
            self.sent = i
            if i >= 65000:
                break  # paho's packet ids would wrap; a test uses a new client before that
            if self.rate:
                next_at += 1.0 / self.rate
                delay = next_at - time.monotonic()
                if delay > 0:
                    self.stop_flag.wait(delay)
            else:
                # a window of WINDOW messages awaiting their acknowledgement, as paho's
                # inflight limit: no unbounded queue inside paho
                with self.lock:
                    self.lock.wait_for(lambda: self.stop_flag.is_set() or
                                       len(self.sent_at) - len(self.acked_at) < self.WINDOW, timeout=0.5)

    def start(self) -> "TrackedPublisher":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_flag.set()
        self.thread.join(10)

    def acked(self) -> set[str]:
        with self.lock:
            return {p for m, (p, _) in self.sent_at.items() if m in self.acked_at}

    def all_sent(self) -> set[str]:
        with self.lock:
            return {p for p, _ in self.sent_at.values()}

    def unacked_count(self) -> int:
        with self.lock:
            return sum(1 for m in self.sent_at if m not in self.acked_at)

    def ack_times(self) -> list[float]:
        with self.lock:
            return sorted(self.acked_at[m] for m in self.sent_at if m in self.acked_at)

    def longest_stall(self, until: float | None = None) -> float:
        """The longest time during which a publish of this client waited for its
        acknowledgement and no acknowledgement came (0 if it never waited)."""
        with self.lock:
            sends = sorted(t for _, t in self.sent_at.values())
            acks = sorted(self.acked_at[m] for m in self.sent_at if m in self.acked_at)
            pending = [t for m, (_, t) in self.sent_at.items() if m not in self.acked_at]
        if not sends:
            return 0.0
        longest = 0.0
        last = sends[0]  # the clock starts when the first publish waits
        for t in acks:
            longest = max(longest, t - last)
            last = t
        if pending:  # still waiting
            longest = max(longest, (until or time.monotonic()) - max(last, min(pending)))
        return longest

    def all_acked_by(self, sent_before: float) -> float | None:
        """When the last of the publishes sent before `sent_before` was acknowledged
        (None while one is still unacknowledged)."""
        with self.lock:
            latest = 0.0
            for m, (_, t) in self.sent_at.items():
                if t < sent_before:
                    a = self.acked_at.get(m)
                    if a is None:
                        return None
                    latest = max(latest, a)
        return latest


class Receiver:
    """Everything delivered to one client id, across its connections: payload ->
    how often it arrived, and how often within a single connection."""

    def __init__(self, client_id: str, qos: int):
        self.client_id = client_id
        self.qos = qos
        self.lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()
        self.same_connection_dups = 0
        self.connections = 0
        self.client = None

    def attach(self, client) -> None:
        """Counts what `client` (a PahoClient of this client id) receives."""
        seen: set[str] = set()
        self.connections += 1

        def on_message(cl, userdata, m):
            p = bytes(m.payload).decode(errors="replace")
            with self.lock:
                self.counts[p] += 1
                if p in seen:
                    self.same_connection_dups += 1
                seen.add(p)

        client.c.on_message = on_message
        self.client = client

    def received(self) -> set[str]:
        with self.lock:
            return set(self.counts)

    def duplicates(self) -> int:
        with self.lock:
            return sum(n - 1 for n in self.counts.values())


def stored_payloads(dsn: str | None, sender_like: str) -> collections.Counter:
    """payload -> number of mqtt_msg rows, for the senders matching a LIKE pattern."""
    rows = sql("select payload, count(*) from mqtt_msg where sender like :'s' group by payload", dsn, s=sender_like)
    return collections.Counter({r[0]: int(r[1]) for r in rows})


# ---------------------------------------------------------------------------
# Invariants and figures
# ---------------------------------------------------------------------------

def _neighbours(absent: list[str], got: set[str]) -> str:
    """Whether the messages published just before and after the first missing ones
    (payloads TAG-NNNNNNN) arrived: a hole in the middle of a stream, or its end."""
    out = []
    for p in absent[:3]:
        tag, _, n = p.rpartition("-")
        if not n.isdigit():
            continue
        prev, nxt = f"{tag}-{int(n) - 1:07d}", f"{tag}-{int(n) + 1:07d}"
        out.append(f"{p}: previous {'arrived' if prev in got else 'missing'}, "
                   f"next {'arrived' if nxt in got else 'missing'}")
    return "; ".join(out)


class Outcome:
    """The figures of one scenario and the invariants it broke; written to the report
    before the test asserts, so a failing run still leaves its figures."""

    def __init__(self, scenario: str, seed: int | None = None):
        self.scenario = scenario
        self.seed = seed
        self.faults = 0
        self.acked = 0
        self.lost = 0
        self.stored_twice = 0
        self.duplicates = 0
        self.qos2_duplicates = 0
        self.max_stall_s = 0.0
        self.recovery_s = 0.0
        self.violations: list[str] = []
        self.notes: dict = {}
        self.started = time.monotonic()

    def check_stored(self, acked: set[str], stored: collections.Counter, what: str = "") -> None:
        """Every acknowledged message is in mqtt_msg, and no message is there twice."""
        lost = acked - set(stored)
        twice = {p: n for p, n in stored.items() if n > 1}
        self.acked += len(acked)
        self.lost += len(lost)
        self.stored_twice += len(twice)
        if lost:
            self.violations.append(f"{len(lost)} of {len(acked)} acknowledged messages{what} are not in mqtt_msg, "
                                   f"e.g. {sorted(lost)[:5]}")
        if twice:
            self.violations.append(f"{len(twice)} messages{what} are stored more than once, "
                                   f"e.g. {sorted(twice.items())[:5]}")

    def check_received(self, acked: set[str], rx: Receiver, allow_dups: bool) -> None:
        """Every acknowledged message reached the subscriber; duplicates are counted,
        and are violations where they are not allowed."""
        got = rx.received()
        absent = acked - got
        dups = rx.duplicates()
        self.duplicates += dups
        if rx.qos == 2:
            self.qos2_duplicates += dups
        if absent:
            self.violations.append(f"subscriber {rx.client_id}: {len(absent)} of {len(acked)} acknowledged messages "
                                   f"never arrived, e.g. {sorted(absent)[:5]}; {_neighbours(sorted(absent), got)}")
        if dups and not allow_dups:
            self.violations.append(f"subscriber {rx.client_id} (QoS {rx.qos}): {dups} duplicate deliveries "
                                   f"({rx.same_connection_dups} within one connection)")
        if rx.same_connection_dups and rx.qos == 2:
            self.violations.append(f"subscriber {rx.client_id}: a QoS 2 message arrived twice on one connection")

    def stall(self, seconds: float) -> None:
        self.max_stall_s = max(self.max_stall_s, seconds)

    def recovered(self, seconds: float) -> None:
        self.recovery_s = max(self.recovery_s, seconds)

    def record(self) -> dict:
        return {"scenario": self.scenario, "soak": SOAK, "seed": self.seed, "faults": self.faults,
                "acked": self.acked, "lost": self.lost, "stored_twice": self.stored_twice,
                "duplicates": self.duplicates, "qos2_duplicates": self.qos2_duplicates,
                "max_puback_stall_s": round(self.max_stall_s, 3), "recovery_s": round(self.recovery_s, 3),
                "duration_s": round(time.monotonic() - self.started, 1), "violations": self.violations,
                **({"notes": self.notes} if self.notes else {})}


class Report:
    """JSON lines of every scenario's figures, at MQTTD_FAULTS_REPORT or in the
    session's tmp dir."""

    def __init__(self, path: Path):
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, outcome: Outcome) -> None:
        rec = outcome.record()
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(f"\n[{outcome.scenario}] {json.dumps(rec)}")

    def finish(self, outcome: Outcome, log_excerpt: str = "") -> None:
        """Writes the figures, then fails on any broken invariant."""
        self.write(outcome)
        if outcome.violations:
            import pytest
            msg = "\n".join(outcome.violations)
            if outcome.seed is not None:
                msg += f"\n(fault schedule seed {outcome.seed}: MQTTD_FAULTS_SEED={outcome.seed})"
            if log_excerpt:
                msg += "\n--- broker log excerpt ---\n" + log_excerpt
            pytest.fail(msg, pytrace=False)


def log_excerpt(broker, needles=("pgsql", "error", "warn", "DISCONNECT", "keep"), n: int = 40) -> str:
    lines = [l for l in broker.log().splitlines() if any(k in l for k in needles)]
    return "\n".join(lines[-n:])


# ---------------------------------------------------------------------------
# The load generator
# ---------------------------------------------------------------------------

class LoadGenerator:
    """bench's mqtt_load in the background; result() is its JSON line."""

    def __init__(self, broker, *args: str, timeout: float = 120):
        if not os.access(LOAD_BIN, os.X_OK):
            missing(f"the load generator ({LOAD_BIN}; set MQTTD_LOAD_BIN)")
        self.args = [LOAD_BIN, "--port", str(broker.port), "--timeout", str(int(timeout)), *args]
        self.timeout = timeout
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(self) -> dict:
        out, err = self.proc.communicate(timeout=self.timeout + 30)
        self.stderr = err
        lines = [l for l in out.strip().splitlines() if l.startswith("{")]
        assert lines, f"mqtt_load printed no result (exit {self.proc.returncode}): {err[-2000:]}"
        return json.loads(lines[-1])

    killed = False

    def kill(self) -> None:
        self.killed = True
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


# ---------------------------------------------------------------------------
# PostgreSQL faults
# ---------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def postmaster_pid(pg: PrivatePostgres) -> int:
    return int((pg.data / "postmaster.pid").read_text().splitlines()[0])


def cluster_pids(pg: PrivatePostgres) -> list[int]:
    """The postmaster and every process it started."""
    pm = postmaster_pid(pg)
    return [pm] + _children(pm)


def pg_signal(pg: PrivatePostgres, sig: int) -> list[int]:
    pids = cluster_pids(pg)
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass
    return pids


def pg_crash(pg: PrivatePostgres) -> None:
    """SIGKILL to the postmaster and all its processes at once: a crash. The next
    start() runs crash recovery."""
    pids = pg_signal(pg, signal.SIGKILL)
    wait_for(lambda: not any(Path(f"/proc/{p}").exists() and "zombie" not in _state(p) for p in pids),
             timeout=10, what="the PostgreSQL processes gone")
    # A killed postmaster that nobody reaps stays a zombie, and PostgreSQL takes the
    # zombie's pid in its lock files for a running server: remove the stale ones.
    (pg.data / "postmaster.pid").unlink(missing_ok=True)
    (pg.data / f".s.PGSQL.{pg.port}.lock").unlink(missing_ok=True)
    pg.running = False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"


def pg_alive(dsn: str) -> bool:
    cp = subprocess.run(["psql", dsn, "-X", "-qAt", "-c", "select 1"], capture_output=True, text=True,
                        timeout=15, env=PG_ENV)
    return cp.returncode == 0


def private_pg_or_missing() -> None:
    require_pg()
    if not private_postgres_available():
        missing("PostgreSQL 15 server binaries (/usr/lib/postgresql/15/bin)")


def pg_lines(pg_port_or_host, hooks: bool = True, host: str = "127.0.0.1") -> list[str]:
    """The shipped backend configuration pointed at host:port."""
    out = []
    for line in seed_lines(pg_port_or_host, hooks):
        if line.startswith("backend.pgsql.pool1.server"):
            line = f"backend.pgsql.pool1.server = {host}:{pg_port_or_host}"
        out.append(line)
    return out


# ---------------------------------------------------------------------------
# A broker on a PostgreSQL that fails, under load
# ---------------------------------------------------------------------------

# After a long stall the held publishes arrive in a burst; a subscriber that falls
# further behind than mqtt.max_mqueue_len (default 1000) loses the oldest of its queue
# by design. The scenarios under load lift that bound so that what they check is the
# backend's durability, not the queue policy (docs/reliability.md has the figures with
# the default bound).
UNBOUNDED_QUEUE = ["mqtt.max_mqueue_len = 0"]


class LoadRun:
    """Load on a broker whose PostgreSQL is about to fail: per QoS a paho publisher
    (MQTT 3.1.1) and a persistent subscriber that stays connected throughout, an MQTT 5
    QoS 1 publisher, and (load=True) bench's mqtt_load with p2p QoS 1 pairs.

    The broker stays up, so nothing entitles anyone to a duplicate at QoS 2; QoS 1
    subscribers may see one if the broker sends a message again (MQTT allows it).
    """

    def __init__(self, broker, paho, paho5, tag: str, rate: float = 100, keepalive: int = 60,
                 load_seconds: float = 0, dsn: str | None = None, inflight: int = 20):
        self.b = broker
        self.tag = tag
        self.dsn = dsn
        self.topic = f"faults/{tag}"
        self.rx = {}
        self.subs = {}
        for qos in (1, 2):
            rx = Receiver(f"{tag}-sub{qos}", qos)
            s = paho(broker, rx.client_id, clean_session=False, keepalive=keepalive)
            rx.attach(s)
            s.connect(timeout=10)
            s.subscribe(f"{self.topic}/q{qos}", qos, timeout=10)
            self.rx[qos], self.subs[qos] = rx, s
        self.pubs: list[TrackedPublisher] = []
        for name, factory, qos in (("p1", paho, 1), ("p2", paho, 2), ("p5", paho5, 1)):
            cid = f"{tag}-{name}"
            c = factory(broker, cid, keepalive=keepalive)
            c.c.max_inflight_messages_set(inflight)
            c.connect(timeout=10)
            self.pubs.append(TrackedPublisher(c, f"{self.topic}/q{qos}", qos, rate=rate, tag=cid))
        self.load = None
        if load_seconds:
            self.load = LoadGenerator(broker, "--scenario", "p2p", "--publishers", "4", "--qos", "1",
                                      "--rate", str(int(rate)), "--warmup", "0.2", "--duration", str(load_seconds),
                                      "--id-prefix", f"{tag}-load", "--topic-prefix", f"{self.topic}/load",
                                      "--keepalive", str(keepalive), "--inflight", str(max(32, inflight)),
                                      timeout=load_seconds + 120)

    def start(self) -> "LoadRun":
        for p in self.pubs:
            p.start()
        wait_for(lambda: all(p.acked() for p in self.pubs), timeout=20, what="the first acknowledgements")
        return self

    def acked_count(self) -> int:
        return sum(len(p.acked()) for p in self.pubs)

    def wait_recovered(self, out: "Outcome", fault_end: float, timeout: float) -> bool:
        """Waits until every publish sent before the fault ended is acknowledged; the
        time that took is the recovery time."""
        def done():
            ts = [p.all_acked_by(fault_end) for p in self.pubs if not p.c.disconnected.is_set()]
            return ts and all(t is not None for t in ts) and max(ts)
        try:
            t = wait_for(done, timeout=timeout, what="the acknowledgements held by the fault", interval=0.05)
        except AssertionError as e:
            out.violations.append(f"not recovered within {timeout}s after the fault ended: {e}")
            return False
        out.recovered(max(0.0, t - fault_end))
        return True

    def finish(self, out: "Outcome", settle: float = 60) -> None:
        """Stops the load and checks the invariants into `out`."""
        for p in self.pubs:
            p.stop()
        ok = lambda: all(p.unacked_count() == 0 for p in self.pubs if not p.c.disconnected.is_set())  # noqa: E731
        try:
            wait_for(ok, timeout=settle, what="every publish acknowledged")
        except AssertionError:
            pending = {p.tag: p.unacked_count() for p in self.pubs}
            out.violations.append(f"publishes still unacknowledged {settle}s after the load stopped: {pending}")
        now = time.monotonic()
        for p in self.pubs:
            out.stall(p.longest_stall(until=now))
            if p.c.disconnected.is_set():
                out.violations.append(f"publisher {p.tag} was disconnected during the fault "
                                      f"(paho rc/reason {p.c.disconnect_rc})")
        for qos, s in self.subs.items():
            if s.disconnected.is_set():
                out.violations.append(f"subscriber {s.client_id} was disconnected (paho rc {s.disconnect_rc})")
        stored = stored_payloads(self.dsn, f"{self.tag}-p%")
        for qos, rx in self.rx.items():
            acked = set().union(*(p.acked() for p in self.pubs if p.qos == qos))
            try:
                wait_for(lambda: acked <= rx.received(), timeout=20, what=f"QoS {qos} deliveries")
            except AssertionError:
                pass  # counted below
            out.check_received(acked, rx, allow_dups=(qos == 1))
        out.check_stored(set().union(*(p.acked() for p in self.pubs)), stored)
        out.notes["paho_sent"] = sum(p.sent for p in self.pubs)
        if self.load is not None:
            self.finish_load(out)

    def finish_load(self, out: "Outcome") -> None:
        if self.load.killed:
            out.notes["load"] = "stopped after the scenario had failed"
            return
        r = self.load.result()
        published = int(r.get("expected_total", 0))
        out.notes["load"] = {k: r.get(k) for k in ("complete", "expected_total", "delivered_total", "lost",
                                                   "unexpected_closes", "error") if k in r}
        if not r.get("complete"):
            out.violations.append(f"mqtt_load did not complete: {r.get('error')}")
        if r.get("lost"):
            out.violations.append(f"mqtt_load: {r['lost']} of {published} messages not delivered")
        if r.get("unexpected_closes"):
            out.violations.append(f"mqtt_load: {r['unexpected_closes']} connections closed by the broker")
        like = f"{self.tag}-load-%"
        count = lambda: int(scalar("select count(*) from mqtt_msg where sender like :'s'", self.dsn, s=like))  # noqa
        try:
            wait_for(lambda: count() >= published, timeout=30, what="mqtt_load's messages stored")
        except AssertionError:
            pass
        n, distinct = (int(x) for x in sql("select count(*), count(distinct payload) from mqtt_msg "
                                           "where sender like :'s'", self.dsn, s=like)[0])
        # every message mqtt_load published was acknowledged or still queued when it
        # disconnected; under after_commit each ends up stored, once
        out.notes["load"]["stored"] = n
        if n < published:
            out.lost += published - n
            out.violations.append(f"mqtt_load: {published - n} of {published} published messages not in mqtt_msg")
        if n != distinct:
            out.stored_twice += n - distinct
            out.violations.append(f"mqtt_load: {n - distinct} messages stored twice")
