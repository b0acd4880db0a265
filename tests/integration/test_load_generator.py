"""The benchmark's load generator (bench/mqtt_load) against the real mqttd: what the
report's numbers rest on. A storm launches more clients than may be under way at once,
so every handshake after the first few is started by the completion of an earlier one."""

from __future__ import annotations

import json
import os
import subprocess

from conftest import REPO, missing

LOAD = os.environ.get("MQTTD_LOAD_BIN") or str(REPO / "build" / "bench" / "mqtt_load")


def run_load(broker, *args: str) -> dict:
    if not os.access(LOAD, os.X_OK):
        missing(f"the load generator ({LOAD}; set MQTTD_LOAD_BIN)")
    out = subprocess.run([LOAD, "--port", str(broker.port), "--broker-pid", str(broker.pid), "--timeout", "30",
                          *args], capture_output=True, text=True, timeout=40)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_storm_connects_every_client_with_bounded_concurrency(broker):
    r = run_load(broker, "--scenario", "storm", "--connections", "600", "--connect-concurrency", "20")
    assert r["complete"] is True
    assert r["connects"] == 600
    assert r["connect_failures"] == 0
    assert r["connect_latency_us"]["count"] == 600
    assert r["connects_per_s"] > 0


def test_p2p_delivers_every_message(broker):
    r = run_load(broker, "--scenario", "p2p", "--publishers", "20", "--qos", "1", "--window", "8",
                 "--warmup", "0.5", "--duration", "1")
    assert r["complete"] is True
    assert r["published"] > 0
    assert r["lost"] == 0
    assert r["delivered_total"] == r["expected_total"]
