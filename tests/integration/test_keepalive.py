"""Keep-alive (MQTT 3.1.1 section 3.1.2.10) and PINGREQ / PINGRESP (3.12, 3.13)."""

import time

import pytest

import mqtt_raw as raw_mqtt


def _upper_bound(broker, keepalive):
    """Latest acceptable close for a silent client: 1.5 x keep-alive plus 1.5 s of slack.
    mosquitto counts whole seconds and checks keep-alives lazily (it was seen closing a
    keep-alive 2 s client after 4.2 to 5.5 s, later still under load), so it gets more."""
    return 1.5 * keepalive + (4.0 if broker.kind == "mosquitto" else 1.5)


def test_silent_client_disconnected_after_one_and_a_half_keepalive(broker, raw):
    """[MQTT-3.1.2-24]: no packet within 1.5 x keep-alive (2 s -> 3 s): disconnected."""
    r = raw(broker)
    r.connect("ka-silent", keepalive=2)
    t0 = time.monotonic()
    r.expect_closed(timeout=9)
    elapsed = time.monotonic() - t0
    assert 2.5 <= elapsed <= _upper_bound(broker, 2), f"closed after {elapsed:.2f}s"


def test_pings_keep_the_connection_alive(broker, raw, paho):
    """A client that sends PINGREQ every second (keep-alive 2 s) stays connected for 5 s,
    every PINGREQ answered by a PINGRESP (exactly 0xD0 0x00)."""
    r = raw(broker)
    r.connect("ka-pinger", keepalive=2)
    r.subscribe([("ka/t", 0)])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        r.send(raw_mqtt.pingreq())
        pong = r.expect(raw_mqtt.PINGRESP, timeout=2)
        assert pong.flags == 0 and pong.body == b""
        time.sleep(1.0)
    pub = paho(broker, "ka-pub")
    pub.connect()
    pub.publish("ka/t", b"still here")
    assert r.expect(raw_mqtt.PUBLISH).payload == b"still here"


def test_other_traffic_counts_as_activity(broker, raw):
    """Any control packet resets the keep-alive timer, not only PINGREQ."""
    r = raw(broker)
    r.connect("ka-busy", keepalive=2)
    for i in range(5):
        r.send(raw_mqtt.publish("ka/busy", f"{i}", qos=1, pid=i + 1))
        assert r.expect(raw_mqtt.PUBACK).pid == i + 1
        time.sleep(1.0)
    r.ping()


def test_keepalive_zero_means_no_timeout(broker, raw):
    """A keep-alive of 0 turns the mechanism off: silence for 4 s is fine."""
    r = raw(broker)
    r.connect("ka-zero", keepalive=0)
    r.expect_silence(4.0)
    r.ping()


def test_real_clients_ping_and_stay_connected(broker, paho, mqttjs):
    """paho and MQTT.js with a 1 s keep-alive ping by themselves and drop the connection
    if PINGRESP does not come: after 3.5 s both are still connected and served."""
    p = paho(broker, "ka-paho", keepalive=1)
    p.connect()
    p.subscribe("ka/real", 1)
    js = mqttjs(broker, clientId="ka-js", keepalive=1)
    js.connect()
    js.subscribe("ka/real", 1)
    time.sleep(3.5)
    assert not p.disconnected.is_set()
    p.publish("ka/real", b"alive", qos=1)
    assert p.get().payload == b"alive"
    assert js.get().payload == b"alive"
    assert not [e for e in js.events if e["event"] in ("close", "error")], js.events


def test_pingreq_mqtt31(broker, raw):
    r = raw(broker)
    r.connect("ka-v31", level=3, keepalive=2)
    r.ping()
    t0 = time.monotonic()
    r.expect_closed(timeout=9)
    assert 2.5 <= time.monotonic() - t0 <= _upper_bound(broker, 2)


@pytest.mark.mqttd_only
def test_keepalive_backoff_setting(start_broker, raw):
    """mqtt.keepalive_backoff = 1.0 allows 2 x keep-alive (0.75, the default, allows 1.5 x):
    a silent client with keep-alive 2 s is closed after about 4 s, not 3 s."""
    b = start_broker(["mqtt.keepalive_backoff = 1.0"])
    r = raw(b)
    r.connect("ka-backoff", keepalive=2)
    t0 = time.monotonic()
    r.expect_closed(timeout=9)
    elapsed = time.monotonic() - t0
    assert 3.5 <= elapsed <= 5.5, f"closed after {elapsed:.2f}s"
