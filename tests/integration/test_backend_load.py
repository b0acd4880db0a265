"""A load check of the backend (numbers printed, not asserted): persisted QoS 1
messages per second under publish_ack = after_commit with batching, against one row
per round trip (batch_size = 1) over the same pool, and against QoS 1 without
persistence. Publishers are raw sockets keeping a window of PUBLISHes in flight."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from test_backend_common import require_pg, scalar, seed_lines, uid

pytestmark = [pytest.mark.mqttd_only, pytest.mark.slow]

CONNECTIONS = 4
WINDOW = 200
DURATION = 3.0
PAYLOAD = b"x" * 40


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _connect_packet(cid: str) -> bytes:
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + struct.pack("!H", len(cid)) + cid.encode()
    return b"\x10" + _varint(len(body)) + body


def _publisher(port: int, cid: str, topic: str, stop: threading.Event, counts: list, idx: int):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(_connect_packet(cid))
    buf = b""
    while len(buf) < 4:
        buf += s.recv(4 - len(buf))
    assert buf[0] == 0x20 and buf[3] == 0, f"CONNACK {buf!r}"
    t = topic.encode()
    head = struct.pack("!H", len(t)) + t
    rem = _varint(len(head) + 2 + len(PAYLOAD))

    def pub(pid: int) -> bytes:
        return b"\x32" + rem + head + struct.pack("!H", pid) + PAYLOAD

    next_pid = 1
    out = []
    for _ in range(WINDOW):
        out.append(pub(next_pid))
        next_pid = next_pid % 65535 + 1
    s.sendall(b"".join(out))
    inflight = WINDOW
    acked = 0
    pending = b""
    s.settimeout(10)
    while inflight:
        data = s.recv(65536)
        if not data:
            break
        pending += data
        n = len(pending) // 4  # PUBACKs are 4 bytes each
        pending = pending[n * 4:]
        acked += n
        inflight -= n
        if not stop.is_set():
            more = []
            for _ in range(n):
                more.append(pub(next_pid))
                next_pid = next_pid % 65535 + 1
            inflight += n
            s.sendall(b"".join(more))
    counts[idx] = acked
    s.sendall(b"\xe0\x00")
    s.close()


def measure(broker, tag: str) -> tuple[int, float]:
    stop = threading.Event()
    counts = [0] * CONNECTIONS
    topic = uid(f"load/{tag}")
    threads = [threading.Thread(target=_publisher, args=(broker.port, uid(f"{tag}{i}"), topic, stop, counts, i))
               for i in range(CONNECTIONS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(DURATION)
    stop.set()
    for t in threads:
        t.join(30)
    elapsed = time.monotonic() - t0
    return sum(counts), elapsed


def test_persisted_qos1_throughput(start_broker, capsys):
    require_pg()
    results = {}
    scenarios = [
        ("after_commit, batched", seed_lines(), True),
        ("after_commit, batch_size = 1 (one row per round trip)", seed_lines() + ["backend.pgsql.batch_size = 1"], True),
        ("async, batched", seed_lines() + ["backend.pgsql.publish_ack = async"], True),
        ("not persisted (no backend)", [], False),
    ]
    for name, lines, persisted in scenarios:
        b = start_broker(lines + ["log.level = warning"])
        n, secs = measure(b, "lt")
        if persisted:
            # Every acknowledged message is a row (after_commit; async: once flushed).
            b.stop()
        results[name] = (n, secs)
    with capsys.disabled():
        print(f"\nQoS 1 publishes acknowledged per second ({CONNECTIONS} publishers, {WINDOW} in flight each, "
              f"{PAYLOAD.__len__()}-byte payloads):")
        for name, (n, secs) in results.items():
            print(f"  {name:55s} {n / secs:10.0f} msg/s  ({n} in {secs:.1f} s)")
    for name, (n, _) in results.items():
        assert n > 0, name
