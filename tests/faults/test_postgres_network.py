"""The connection to PostgreSQL cut without a FIN, and the disk under PostgreSQL full.

Cut: PostgreSQL runs in a network namespace of its own, reached over a veth pair. Every
packet of its port is dropped on both ends (no FIN, no RST: the backend hears nothing).
When the cut ends, new connections get through, but the connections that were open
stay black-holed, as when a NAT or a firewall forgot them: the backend must notice by
itself (its health check and query timeout) and reconnect.

Disk full: PostgreSQL's directory is a small tmpfs; a filler file takes every free byte
while publishers keep publishing. No PUBACK may be given for a message that is not
stored. Then the filler is removed (and PostgreSQL started again if it gave up), and
every held message must be stored and acknowledged.
"""

from __future__ import annotations

import time

import pytest

from faults_common import (UNBOUNDED_QUEUE, LoadRun, Outcome, log_excerpt, pg_alive, pg_lines, seeded_rng, soak, uid,
                           wait_for)

pytestmark = [pytest.mark.mqttd_only, pytest.mark.slow]

# The backend's own bounds: a query waits at most 60 s, an idle connection is checked
# every 30 s; recovery from a black-holed connection may take that long.
CUT_RECOVERY_TIMEOUT = 120


def test_postgres_connection_cut_without_fin(start_broker, paho, paho5, report, netns_pg):
    rng, seed = seeded_rng("cut")
    out = Outcome("PostgreSQL connection cut without FIN (black-holed)", seed)
    b = start_broker(pg_lines(netns_pg.port, host=netns_pg.pg_addr) + UNBOUNDED_QUEUE)
    wait_for(lambda: netns_pg.connections(), timeout=20, what="the backend's connections to PostgreSQL")
    tag = uid("cut")
    rounds = soak(1, 5)
    down = soak((5.0, 8.0), (20.0, 60.0))
    run = LoadRun(b, paho, paho5, tag, dsn=netns_pg.dsn,
                  load_seconds=rounds * (down[1] + CUT_RECOVERY_TIMEOUT / 2) + 5).start()
    for _ in range(rounds):
        time.sleep(rng.uniform(0.3, 1.5))
        old = netns_pg.connections()
        netns_pg.cut()
        out.faults += 1
        time.sleep(rng.uniform(*down))
        netns_pg.heal(keep_cut=old)
        fault_end = time.monotonic()
        if not run.wait_recovered(out, fault_end, CUT_RECOVERY_TIMEOUT):
            break
    out.notes["black_holed_connections"] = len(old)
    netns_pg.heal()
    if out.violations and run.load is not None:
        run.load.kill()
    run.finish(out)
    report.finish(out, log_excerpt(b))


def _server_log(pg) -> str:
    try:
        return (pg.data / "server.log").read_text(errors="replace")
    except OSError:
        return ""


def test_postgres_disk_full_then_freed(start_broker, paho, paho5, report, tmpfs_pg):
    rng, seed = seeded_rng("disk-full")
    out = Outcome("disk under PostgreSQL full, then freed", seed)
    b = start_broker(pg_lines(tmpfs_pg.port) + UNBOUNDED_QUEUE)
    tag = uid("disk")
    # no mqtt_load here: its QoS 1 publishers would wait out the whole fault without
    # adding anything the paho publishers do not check
    run = LoadRun(b, paho, paho5, tag, dsn=tmpfs_pg.dsn).start()
    rounds = soak(1, 5)
    for _ in range(rounds):
        time.sleep(rng.uniform(0.3, 1.5))
        log_before = len(_server_log(tmpfs_pg))
        filled = tmpfs_pg.fill()
        out.faults += 1
        out.notes["filler_mb"] = round(filled / 2 ** 20, 1)
        wait_for(lambda: "No space left on device" in _server_log(tmpfs_pg)[log_before:], timeout=60,
                 what="PostgreSQL failing its writes")
        acked_when_full = run.acked_count()
        time.sleep(rng.uniform(*soak((3.0, 5.0), (10.0, 30.0))))  # how long the disk stays full
        out.notes["acked_while_full"] = run.acked_count() - acked_when_full
        tmpfs_pg.free()
        fault_end = time.monotonic()
        if not pg_alive(tmpfs_pg.dsn):
            try:
                wait_for(lambda: pg_alive(tmpfs_pg.dsn), timeout=10, what="PostgreSQL back by itself", interval=0.5)
            except AssertionError:
                # it gave up (a PANIC while writing WAL ends in a shutdown when crash
                # recovery cannot write either): start it again, as an operator would
                out.notes["postgres_restarted"] = out.notes.get("postgres_restarted", 0) + 1
                tmpfs_pg.running = True
                tmpfs_pg.stop()
                tmpfs_pg.start()
        if not run.wait_recovered(out, fault_end, 60):
            break
    run.finish(out)
    report.finish(out, log_excerpt(b))
