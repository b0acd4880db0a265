"""Many concurrent connections from one process."""

import time

import pytest

import mqtt_raw as raw_mqtt

N = 1000


@pytest.mark.slow
def test_thousand_concurrent_connections(broker, raw, paho):
    """1,000 raw MQTT 3.1.1 connections at once: all get CONNACK 0 and SUBACK, all
    receive one fanned-out message, all answer PINGREQ, and the broker still serves a
    normal client; all within 20 s."""
    # paho 1.6 waits with select(), which cannot watch a descriptor numbered 1024 or
    # more: its client connects before the crowd takes the low numbers of this process.
    pub = paho(broker, "load-pub")
    pub.connect()
    t0 = time.monotonic()
    conns = []
    for i in range(N):
        c = raw(broker, timeout=10)
        c.send(raw_mqtt.connect(f"load-{i:04d}", keepalive=60))
        conns.append(c)
    for c in conns:
        ack = c.expect(raw_mqtt.CONNACK, timeout=10)
        assert ack.return_code == 0
        c.send(raw_mqtt.subscribe(1, [("load/all", 0)]))
    for c in conns:
        assert c.expect(raw_mqtt.SUBACK, timeout=10).granted == [0]

    pub.publish("load/all", b"to everyone", qos=1)
    for c in conns:
        p = c.expect(raw_mqtt.PUBLISH, timeout=10)
        assert (p.topic, p.payload) == ("load/all", b"to everyone")

    for c in conns:
        c.send(raw_mqtt.pingreq())
    for c in conns:
        c.expect(raw_mqtt.PINGRESP, timeout=10)

    # A takeover in the middle of the crowd, and an ordinary client, still work.
    again = raw(broker)
    assert again.connect("load-0500").return_code == 0
    conns[500].expect_closed(5)
    pub.subscribe("load/check", 1)
    pub.publish("load/check", b"ok", qos=1)
    assert pub.get().payload == b"ok"

    for c in conns:
        if not c.closed:
            c.send(raw_mqtt.disconnect())
        c.close()
    elapsed = time.monotonic() - t0
    assert elapsed < 20, f"took {elapsed:.1f}s"
