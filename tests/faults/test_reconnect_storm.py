"""Clients that come and go while the backend serves them.

Storm: subscribers whose unread messages wait in mqtt_msg reconnect all at once (each
SUBSCRIBE starts an offline fetch), and a random half of them drop their connection
while the fetches run and reconnect at once, round after round, while a publisher keeps
publishing and bench's mqtt_load opens a crowd of connections beside them. In the end
each subscriber must have received every acknowledged message; duplicates are allowed
(QoS 1, and each reconnect is a new session: what was delivered but whose ack pointer
had not moved yet is fetched again).

Takeover: connections with one client id race each other, one with a clean session and
one resuming the session, while messages are published to its subscription. The broker
must survive, the last connection must be recorded online in mqtt_client, and a final
session must get every acknowledged message that no earlier connection acknowledged.
"""

from __future__ import annotations

import threading
import time

import pytest

from faults_common import (LoadGenerator, Outcome, Receiver, TrackedPublisher, log_excerpt, scalar, seeded_rng, soak,
                           start_pg_broker, stored_payloads, uid, wait_for)

pytestmark = [pytest.mark.mqttd_only, pytest.mark.slow]


def _parallel(fns):
    errors = []

    def wrap(fn):
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def test_reconnect_storm_while_fetches_run(start_broker, paho, report):
    rng, seed = seeded_rng("storm")
    out = Outcome("reconnect storm while offline fetches run", seed)
    b = start_pg_broker(start_broker)
    tag = uid("storm")
    topic = f"faults/{tag}"
    n_subs, rounds, backlog = soak(40, 200), soak(4, 20), soak(500, 5000)

    rxs = [Receiver(f"{tag}-s{i}", 1) for i in range(n_subs)]
    current: dict[str, object] = {}

    def connect(rx, subscribe=True):
        c = paho(b, rx.client_id, clean_session=True)
        rx.attach(c)
        c.connect(timeout=20)
        if subscribe:
            c.subscribe(topic, 1, timeout=20)
        current[rx.client_id] = c

    # the ack pointers, then an offline backlog
    for e in _parallel([lambda rx=rx: connect(rx) for rx in rxs]):
        raise e
    for c in current.values():
        c.disconnect()
    pc = paho(b, f"{tag}-pub")
    pc.connect()
    pub = TrackedPublisher(pc, topic, 1, tag=f"{tag}-pub").start()
    wait_for(lambda: len(pub.acked()) >= backlog, timeout=60, what="the offline backlog")
    pub.stop()
    wait_for(lambda: pub.unacked_count() == 0, timeout=30, what="the backlog acknowledged")
    backlog_acked = pub.acked()
    pub = TrackedPublisher(pc, topic, 1, rate=100, tag=f"{tag}-pub2")
    pub.start()

    crowd = LoadGenerator(b, "--scenario", "storm", "--connections", str(soak(400, 2000)),
                          "--connect-concurrency", "32", "--id-prefix", f"{tag}-crowd", timeout=120)
    storm_started = time.monotonic()
    for e in _parallel([lambda rx=rx: connect(rx) for rx in rxs]):
        out.violations.append(f"reconnect failed: {e}")
    for _ in range(rounds):
        time.sleep(rng.uniform(0.0, 0.3))  # the fault schedule: into the fetches
        victims = rng.sample(rxs, n_subs // 2)
        for rx in victims:
            current[rx.client_id].drop()
        out.faults += len(victims)
        errs = _parallel([lambda rx=rx: connect(rx) for rx in victims])
        out.violations += [f"reconnect failed: {e}" for e in errs]
    storm_end = time.monotonic()
    pub.stop()
    acked = pub.acked() | backlog_acked
    try:
        wait_for(lambda: all(acked <= rx.received() for rx in rxs), timeout=30,
                 what="every subscriber has every acknowledged message")
    except AssertionError:
        pass
    out.recovered(time.monotonic() - storm_end)
    out.stall(pub.longest_stall())
    r = crowd.result()
    out.notes = {"subscribers": n_subs, "rounds": rounds, "backlog": backlog,
                 "crowd": {k: r.get(k) for k in ("connects", "connect_failures", "complete")},
                 "storm_s": round(storm_end - storm_started, 2)}
    if r.get("connect_failures"):
        out.violations.append(f"mqtt_load storm: {r['connect_failures']} connect failures")
    out.check_stored(acked, stored_payloads(None, f"{tag}-pub%"))
    acked_n = out.acked
    for rx in rxs:
        out.check_received(acked, rx, allow_dups=True)
    out.acked = acked_n
    report.finish(out, log_excerpt(b))


def test_clean_start_reconnects_race_a_takeover(start_broker, paho, report):
    rng, seed = seeded_rng("takeover")
    out = Outcome("clean-start reconnects racing a takeover", seed)
    b = start_pg_broker(start_broker)
    tag = uid("race")
    topic = f"faults/{tag}"
    cid = f"{tag}-sub"
    rx = Receiver(cid, 1)
    conns = []

    def connect(clean: bool):
        c = paho(b, cid, clean_session=clean)
        rx.attach(c)
        conns.append(c)
        rc, present = c.connect(timeout=10)
        if not present:
            # the other connection may take the client id over before the SUBACK: the
            # race is lost then, not a failure
            res, mid = c.c.subscribe(topic, 1)
            wait_for(lambda: res != 0 or mid in c._subacks or c.disconnected.is_set(), timeout=10,
                     what="SUBACK or the takeover")

    connect(True)  # the ack pointer
    pc = paho(b, f"{tag}-pub")
    pc.connect()
    pub = TrackedPublisher(pc, topic, 1, rate=200, tag=f"{tag}-pub").start()
    races = soak(25, 300)
    for _ in range(races):
        time.sleep(rng.uniform(0.0, 0.2))
        order = [True, False]
        rng.shuffle(order)
        errs = _parallel([lambda clean=clean: connect(clean) for clean in order])
        out.faults += 1
        # the loser is closed by the broker (takeover)
        out.violations += [f"race: {e}" for e in errs]
    pub.stop()
    wait_for(lambda: pub.unacked_count() == 0, timeout=30, what="every publish acknowledged")
    # the last connection standing
    wait_for(lambda: sum(1 for c in conns if not c.disconnected.is_set()) <= 1, timeout=10,
             what="one connection left")
    alive = [c for c in conns if not c.disconnected.is_set()]
    if not b.alive():
        out.violations.append("mqttd died")
    if alive:
        try:
            wait_for(lambda: scalar("select state from mqtt_client where clientid = :'c'", None, c=cid) == "1",
                     timeout=10, what="the client recorded online")
        except AssertionError as e:
            out.violations.append(f"mqtt_client: {e}")
    for c in conns:
        c.close()
    # a final clean session: the backend's fetch brings everything not acknowledged
    end = time.monotonic()
    connect(True)
    acked = pub.acked()
    try:
        wait_for(lambda: acked <= rx.received(), timeout=30, what="every acknowledged message at the client")
    except AssertionError:
        pass
    out.recovered(time.monotonic() - end)
    out.stall(pub.longest_stall())
    out.check_stored(acked, stored_payloads(None, f"{tag}-pub%"))
    out.check_received(acked, rx, allow_dups=True)
    out.notes = {"connections": len(conns)}
    report.finish(out, log_excerpt(b))
