"""A client that floods requests and never reads what the broker answers.

What the broker owes such a client (PINGRESP, PUBACK) is bounded: past about 1 MiB of
unwritten output it stops reading from it, so TCP pushes back on the client, and its
memory stays flat. A client that does not drain its output is closed once it has been
stalled for max(keep-alive x 0.75 x 2, 10 s); the other clients are served meanwhile.
"""

import select
import socket
import time

import pytest

import mqtt_raw as raw_mqtt
from conftest import rss_kib

pytestmark = [pytest.mark.mqttd_only, pytest.mark.slow]

KEEPALIVE = 5      # 5 x 0.75 x 2 = 7.5 s, so the 10 s floor applies
STALL_LIMIT = 10.0
CLOSE_GRACE = 5.0  # what a closing connection may take to flush before it ends anyway
MIB = 1024 * 1024


def flooder(broker, client_id: str) -> socket.socket:
    """A connected 3.1.1 client with a small receive buffer (set before connecting, so
    that the window it advertises is small): it never reads after the CONNACK."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(5)
    s.connect((broker.host, broker.port))
    s.sendall(raw_mqtt.connect(client_id, keepalive=KEEPALIVE))
    ack = b""
    while len(ack) < 4:
        chunk = s.recv(4 - len(ack))
        assert chunk, "closed before the CONNACK"
        ack += chunk
    assert ack == b"\x20\x02\x00\x00", ack
    s.setblocking(False)
    return s


class Flood:
    """Pushes `chunk` again and again without blocking; notes when sending progresses."""

    def __init__(self, sock: socket.socket, chunk: bytes):
        self.sock, self.chunk, self.offset = sock, chunk, 0
        self.sent = 0
        self.last_progress = time.monotonic()
        self.reset = False

    def push(self, wait: float) -> int:
        """Sends what the socket takes within `wait` s; returns the bytes sent."""
        if self.reset:
            return 0
        _, writable, _ = select.select([], [self.sock], [], wait)
        if not writable:
            return 0
        try:
            n = self.sock.send(self.chunk[self.offset:])
        except BlockingIOError:
            return 0
        except (ConnectionResetError, BrokenPipeError):
            self.reset = True
            return 0
        self.offset = (self.offset + n) % len(self.chunk)
        self.sent += n
        if n:
            self.last_progress = time.monotonic()
        return n


def served(broker, paho, tag: str) -> None:
    c = paho(broker, f"bystander-{tag}")
    c.connect(timeout=3)
    c.subscribe("bystander/t", 1, timeout=3)
    c.publish("bystander/t", tag.encode(), qos=1, timeout=3)
    assert c.get(timeout=3).payload == tag.encode()
    c.disconnect()


FLOODS = {
    # 2 bytes in, 2 bytes (PINGRESP) out.
    "PINGREQ": raw_mqtt.pingreq() * 32768,
    # QoS 1 to a topic nobody reads: each one answered with a 4-byte PUBACK.
    "QoS 1 PUBLISH": b"".join(raw_mqtt.publish("flood/t", b"p" * 8, qos=1, pid=1 + i % 65535)
                              for i in range(4096)),
}


@pytest.mark.parametrize("kind", list(FLOODS))
def test_a_client_that_never_reads_is_bounded_paused_and_closed(start_broker, paho, kind):
    b = start_broker(["log.level = info"])
    served(b, paho, "before")  # the broker's steady state, threads and buffers warm
    before = rss_kib(b.pid)
    peak = before
    s = flooder(b, f"flooder-{kind.split()[0].lower()}")
    flood = Flood(s, FLOODS[kind])
    try:
        # Push for several seconds. The broker must stop reading: a stretch of 1.5 s in
        # which not a byte more is taken. Without the bound it reads (and answers into
        # its memory) as fast as the client sends, hundreds of MB in this time.
        started = time.monotonic()
        while True:
            flood.push(0.05)
            peak = max(peak, rss_kib(b.pid))
            now = time.monotonic()
            if now - started >= 4.0 and now - flood.last_progress >= 1.5:
                break
            assert not flood.reset, f"closed after {flood.sent} bytes, before the stall"
            assert now - started < 12.0, (f"the broker kept reading: {flood.sent / MIB:.0f} MiB "
                                          f"taken in {now - started:.1f} s")
        stalled_at = flood.last_progress
        stalled_bytes = flood.sent

        # Its thread is not taken by the flooder: others connect, publish and receive.
        served(b, paho, "during")

        # The flooder is closed (RST: the broker has unread bytes of it) once stalled for
        # the limit; in the last seconds the closing connection reads, to discard.
        resumed_at = None
        while not flood.reset:
            n = flood.push(0.05)
            if n and resumed_at is None:
                resumed_at = time.monotonic()
            peak = max(peak, rss_kib(b.pid))
            assert time.monotonic() - stalled_at < STALL_LIMIT + CLOSE_GRACE + 3.0, (
                "the flooding client was not closed")
        closed_after = time.monotonic() - stalled_at
    finally:
        s.close()

    grown = (peak - before) / 1024
    print(f"\n{kind}: {stalled_bytes / MIB:.1f} MiB taken before the stall; RSS {before} -> peak {peak} KiB; "
          f"closed {closed_after:.1f} s after the stall")
    assert grown < 30, f"the broker grew by {grown:.1f} MiB"
    # The broker's write cannot have stuck before the flood began, so reading (to discard,
    # once closing) resumes no sooner than the stall limit after that; the keep-alive
    # (7.5 s) does not end it sooner, since the client was never silent.
    if resumed_at is not None:
        assert resumed_at - started >= STALL_LIMIT, f"reading resumed {resumed_at - started:.1f} s into the flood"
    assert closed_after <= STALL_LIMIT + CLOSE_GRACE + 3.0, f"closed {closed_after:.1f} s after the stall"
    served(b, paho, "after")
