"""PostgreSQL fails under publish load while mqttd stays up: it is restarted (a clean
fast shutdown), SIGKILLed with all its processes (crash recovery on the next start),
and frozen with SIGSTOP for longer than the clients' keep-alive.

Load: paho publishers (QoS 1, QoS 2, and MQTT 5 QoS 1), a persistent subscriber per QoS
that stays connected, and bench's mqtt_load (p2p, QoS 1). Checked after each fault:
every PUBACKed / PUBCOMPed message is in mqtt_msg once and reached its subscriber,
QoS 2 without duplicates; no client was disconnected; every message mqtt_load
published was stored once and delivered. Figures: the longest wait for a PUBACK, and
the recovery time from the end of the fault to the last held acknowledgement.
"""

from __future__ import annotations

import signal
import time

import pytest

from faults_common import (UNBOUNDED_QUEUE, LoadRun, Outcome, log_excerpt, pg_crash, pg_lines, pg_signal, seeded_rng,
                           soak, uid)

pytestmark = [pytest.mark.mqttd_only, pytest.mark.slow]


def _run_fault(start_broker, paho, paho5, report, pg, name, inject, heal, rounds, down_s, keepalive=60,
               recovery_timeout=60, inflight=20):
    rng, seed = seeded_rng(name)
    out = Outcome(name, seed)
    pg.start()
    b = start_broker(pg_lines(pg.port) + UNBOUNDED_QUEUE)
    tag = uid("pgf")
    total = rounds * (down_s[1] + 4) + 2
    run = LoadRun(b, paho, paho5, tag, keepalive=keepalive, load_seconds=total, dsn=pg.dsn,
                  inflight=inflight).start()
    for _ in range(rounds):
        before = run.acked_count()
        time.sleep(rng.uniform(0.3, 1.5))  # the fault schedule: when the fault starts
        inject()
        out.faults += 1
        time.sleep(rng.uniform(*down_s))   # ... and how long it lasts
        heal()
        fault_end = time.monotonic()
        if not run.wait_recovered(out, fault_end, recovery_timeout):
            break
        assert run.acked_count() > before
    if run.load is not None and out.violations:
        run.load.kill()
    run.finish(out)
    report.finish(out, log_excerpt(b))


def test_postgres_restart_under_load(start_broker, paho, paho5, report, private_pg):
    _run_fault(start_broker, paho, paho5, report, private_pg, "PostgreSQL restarted under load",
               inject=private_pg.stop, heal=private_pg.start, rounds=soak(3, 30), down_s=(1.0, 3.0))


def test_postgres_sigkill_crash_recovery_under_load(start_broker, paho, paho5, report, private_pg):
    _run_fault(start_broker, paho, paho5, report, private_pg, "PostgreSQL SIGKILLed (crash recovery) under load",
               inject=lambda: pg_crash(private_pg), heal=private_pg.start, rounds=soak(3, 30), down_s=(0.5, 2.0))


def test_postgres_frozen_longer_than_keepalive(start_broker, paho, paho5, report, private_pg):
    """SIGSTOP for 35 s (soak: 90 s) with the clients' keep-alive at 20 s, and 32
    publishes of each publisher awaiting their acknowledgement (mqttd's default
    mqtt.max_inflight, the Receive Maximum it announces to MQTT 5 clients):
    the clients keep their connections (mqttd answers their PINGREQs and reads their
    publishes while it holds the acknowledgements), and everything held is
    acknowledged after SIGCONT."""
    _run_fault(start_broker, paho, paho5, report, private_pg, "PostgreSQL frozen (SIGSTOP) beyond keep-alive",
               inject=lambda: pg_signal(private_pg, signal.SIGSTOP),
               heal=lambda: pg_signal(private_pg, signal.SIGCONT),
               rounds=1, down_s=soak((35.0, 36.0), (90.0, 95.0)), keepalive=20, inflight=32)
