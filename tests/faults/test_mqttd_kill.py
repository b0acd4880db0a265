"""mqttd SIGKILLed under QoS 1 and QoS 2 publish load, again and again, at random
moments; after every kill it is started again on the same port and the same
PostgreSQL. Publishers are new clients after each kill (a publish that was not
acknowledged is not sent again); one persistent subscriber per QoS comes back after
each restart and subscribes again, so what it missed comes from the backend's offline
fetch.

Checked at the end: every PUBACKed / PUBCOMPed message is in mqtt_msg exactly once, and
reached the subscriber. The subscriber may see a message twice: a crash loses the
broker's session state (CONNACK session present = 0), so a message it had received but
whose ack pointer had not committed yet is fetched again, at either QoS.
"""

from __future__ import annotations

import time

import pytest

from faults_common import (Outcome, Receiver, TrackedPublisher, log_excerpt, seeded_rng, soak, start_pg_broker,
                           stored_payloads, uid, wait_for)

pytestmark = [pytest.mark.mqttd_only, pytest.mark.slow]

PUBLISHERS = 2


@pytest.mark.parametrize("qos", [1, 2])
def test_sigkill_under_publish_load(start_broker, paho, report, qos):
    rng, seed = seeded_rng(f"sigkill-qos{qos}")
    kills = soak(20, 200)
    out = Outcome(f"mqttd SIGKILL under QoS {qos} publish load", seed)
    b = start_pg_broker(start_broker)
    tag = uid(f"kill{qos}")
    topic = f"faults/{tag}"
    rx = Receiver(f"{tag}-sub", qos)
    pubs: list[TrackedPublisher] = []

    def subscriber():
        s = paho(b, rx.client_id, clean_session=False)
        rx.attach(s)
        s.connect(timeout=10)
        s.subscribe(topic, qos, timeout=10)
        return s

    restarted_at = None
    for k in range(kills):
        sub = subscriber()
        round_pubs = []
        for j in range(PUBLISHERS):
            cid = f"{tag}-p{k}-{j}"
            c = paho(b, cid)
            c.connect(timeout=10)
            round_pubs.append(TrackedPublisher(c, topic, qos, tag=cid).start())
        pubs += round_pubs
        wait_for(lambda: all(p.acked() for p in round_pubs), timeout=30,
                 what=f"acknowledgements after restart {k}")
        if restarted_at is not None:
            out.recovered(min(p.ack_times()[0] for p in round_pubs) - restarted_at)
        time.sleep(rng.uniform(0.05, 1.5))  # the fault schedule: the moment of the kill
        killed_at = time.monotonic()
        b.kill()
        out.faults += 1
        for p in round_pubs:
            p.stop()
            out.stall(p.longest_stall(until=killed_at))
            p.c.close()
        sub.close()
        restarted_at = time.monotonic()
        b.start(keep_port=True)

    sub = subscriber()
    acked = set().union(*(p.acked() for p in pubs))
    try:
        wait_for(lambda: acked <= rx.received(), timeout=30, what="every acknowledged message at the subscriber")
    except AssertionError:
        pass  # counted below
    out.check_stored(acked, stored_payloads(None, f"{tag}-p%"))
    out.check_received(acked, rx, allow_dups=True)
    out.notes = {"sent": sum(p.sent for p in pubs), "subscriber_connections": rx.connections}
    report.finish(out, log_excerpt(b))
