"""The broker process itself: clean shutdown on SIGTERM with clients connected, restart
on the same port, and a crash (SIGKILL) seen from the clients."""

import time

import mqtt_raw as raw_mqtt


def test_sigterm_with_busy_clients_exits_cleanly(broker, paho, raw):
    """SIGTERM with clients connected, a persistent session holding unacknowledged
    messages and a half-sent packet: exit code 0 within 5 s."""
    subs = [paho(broker, f"busy-{i}") for i in range(5)]
    for s in subs:
        s.connect()
        s.subscribe("busy/#", 1)
    r = raw(broker)
    r.connect("busy-raw", clean=False)
    r.subscribe([("busy/#", 2)])
    for i in range(10):
        subs[0].publish("busy/t", f"{i}".encode(), qos=1)
    half = raw(broker)
    half.send(raw_mqtt.connect("half")[:5])
    t0 = time.monotonic()
    assert broker.stop() == 0
    assert time.monotonic() - t0 < 5
    r.expect_closed(3)
    for s in subs:
        assert s.wait_disconnected(3)


def test_restart_on_same_port(broker, paho):
    a = paho(broker, "restart-a")
    a.connect()
    port, pid = broker.port, broker.pid
    broker.restart()
    assert broker.port == port and broker.pid != pid
    assert a.wait_disconnected(5), "clients of the old process are disconnected"
    b = paho(broker, "restart-b")
    b.connect()
    b.subscribe("restart/t", 1)
    b.publish("restart/t", b"after restart", qos=1)
    assert b.get().payload == b"after restart"


def test_kill_drops_clients(broker, raw):
    r = raw(broker)
    r.connect("kill-me")
    broker.kill()
    r.expect_closed(3)
    assert not broker.alive()
