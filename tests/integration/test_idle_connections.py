"""10,000 concurrent idle MQTT connections held by one broker, and what each costs in
memory (resident set growth divided by the number of connections, printed)."""

import resource
import selectors
import socket
import time

import pytest

import mqtt_raw as raw_mqtt
from conftest import rss_kib

CONNECTIONS = 10_000


@pytest.mark.slow
@pytest.mark.mqttd_only
def test_ten_thousand_idle_connections(start_broker):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = CONNECTIONS + 200
    assert hard >= need, f"the open-file hard limit {hard} is below {need}"
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))

    b = start_broker(["sys_interval = 0", "log.level = warning"])
    probe = raw_mqtt.RawClient(b.host, b.port)
    probe.connect("idle-probe")
    probe.ping()
    before = rss_kib(b.pid)

    sel = selectors.DefaultSelector()
    socks = []
    started = time.monotonic()
    try:
        for i in range(CONNECTIONS):
            s = socket.create_connection((b.host, b.port), timeout=10)
            s.sendall(raw_mqtt.connect(f"idle-{i}", keepalive=0))
            s.setblocking(False)
            socks.append(s)
            sel.register(s, selectors.EVENT_READ, bytearray())
        acked = 0
        deadline = time.monotonic() + 60
        while acked < CONNECTIONS and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                data = key.fileobj.recv(16)
                assert data, "a connection was closed instead of accepted"
                buf = key.data
                buf += data
                if len(buf) >= 4:
                    assert buf[:4] == b"\x20\x02\x00\x00", f"unexpected CONNACK {bytes(buf)!r}"
                    sel.unregister(key.fileobj)
                    acked += 1
        elapsed = time.monotonic() - started
        assert acked == CONNECTIONS, f"only {acked} CONNACKs in 60 s"

        time.sleep(1)
        after = rss_kib(b.pid)
        per_conn = (after - before) * 1024 / CONNECTIONS
        print(f"\n{CONNECTIONS} idle connections in {elapsed:.1f} s; broker RSS {before} KiB -> {after} KiB; "
              f"{per_conn:.0f} bytes per connection")
        # The broker still serves while holding them all.
        probe.ping()
        # A generous ceiling; bench/ compares the figure with mosquitto's.
        assert per_conn < 64 * 1024
    finally:
        for s in socks:
            s.close()
        probe.close()
