"""Will messages (MQTT 3.1.1 section 3.1.2.5): published when the connection ends
without DISCONNECT, never after a clean DISCONNECT."""

import time

import pytest

import mqtt_raw as raw_mqtt


def _watcher(broker, paho, topic="will/#", qos=2, name="will-watch"):
    w = paho(broker, name)
    w.connect()
    w.subscribe(topic, qos)
    return w


def test_will_on_network_loss_raw(broker, raw, paho):
    w = _watcher(broker, paho)
    r = raw(broker)
    r.connect("will-raw", will_topic="will/raw", will_payload=b"raw gone", will_qos=1)
    w.expect_none(0.3)  # nothing while connected
    r.close()
    m = w.get(timeout=5)
    assert (m.topic, m.payload, m.qos, m.retain) == ("will/raw", b"raw gone", 1, False)
    w.expect_none(0.5)  # exactly once


def test_will_on_killed_mosquitto_sub(broker, mosq, paho):
    w = _watcher(broker, paho)
    s = mosq.sub(broker, "unrelated", will={"topic": "will/cli", "payload": "cli died", "qos": 2})
    s.kill()
    m = w.get(timeout=5)
    assert (m.topic, m.payload, m.qos) == ("will/cli", b"cli died", 2)


def test_will_on_killed_mqttjs_process(broker, mqttjs, mosq):
    w = mosq.sub(broker, "will/#", qos=1)
    js = mqttjs(broker, clientId="will-js", clean=True,
                will={"topic": "will/js", "payload": "js died", "qos": 1, "retain": False})
    js.connect()
    js.kill()
    m = w.get(timeout=5)
    assert (m.topic, m.payload, m.qos) == ("will/js", b"js died", 1)


def test_will_on_paho_connection_drop(broker, paho):
    w = _watcher(broker, paho)
    c = paho(broker, "will-paho", will={"topic": "will/paho", "payload": b"dropped", "qos": 0})
    c.connect()
    c.drop()
    m = w.get(timeout=5)
    assert (m.topic, m.payload, m.qos) == ("will/paho", b"dropped", 0)


def test_will_on_keepalive_timeout(broker, raw, paho):
    w = _watcher(broker, paho)
    r = raw(broker)
    t0 = time.monotonic()
    r.connect("will-ka", keepalive=1, will_topic="will/ka", will_payload=b"timed out")
    # Silent from now on: 1.5 x 1 s, plus the broker's timer granularity.
    m = w.get(timeout=8)
    assert (m.topic, m.payload) == ("will/ka", b"timed out")
    assert time.monotonic() - t0 >= 1.4, "will sent before the keep-alive ran out"
    r.expect_closed(2)


PROTOCOL_ERRORS = {
    "wildcard in topic name": raw_mqtt.publish("will/+", b"x"),
    "SUBSCRIBE flags 0000": raw_mqtt.subscribe(1, [("a", 0)], flags=0),
    "bad UTF-8 in topic": raw_mqtt.publish(b"will/\xc3\x28", b"x"),
    "second CONNECT": raw_mqtt.connect("will-err"),
}


@pytest.mark.parametrize("error", [
    "wildcard in topic name",
    "SUBSCRIBE flags 0000",
    "bad UTF-8 in topic",
    # mosquitto 2.0 closes the connection on a second CONNECT but drops the will.
    pytest.param("second CONNECT", marks=pytest.mark.mqttd_only),
])
def test_will_on_protocol_error(broker, raw, paho, error):
    """3.1.2.5: the will is published when the server closes the connection because of a
    protocol error."""
    w = _watcher(broker, paho)
    r = raw(broker)
    r.connect("will-err", will_topic="will/err", will_payload=b"protocol error")
    r.send(PROTOCOL_ERRORS[error])
    r.expect_closed(5)
    m = w.get(timeout=5)
    assert (m.topic, m.payload) == ("will/err", b"protocol error")


def test_will_on_takeover(broker, raw, paho):
    """The first connection's will is published when a second connection with the same
    client id takes the session over (the old connection did not DISCONNECT)."""
    w = _watcher(broker, paho)
    first = raw(broker)
    first.connect("will-takeover", will_topic="will/takeover", will_payload=b"taken over")
    second = raw(broker)
    second.connect("will-takeover")
    first.expect_closed(5)
    m = w.get(timeout=5)
    assert (m.topic, m.payload) == ("will/takeover", b"taken over")
    second.ping()


def test_no_will_after_clean_disconnect(broker, paho, raw, mosq, mqttjs):
    """[MQTT-3.1.2-10]: DISCONNECT removes the will, whatever the client."""
    w = _watcher(broker, paho)
    c = paho(broker, "nowill-paho", will={"topic": "will/paho", "payload": b"must not"})
    c.connect()
    c.disconnect()
    r = raw(broker)
    r.connect("nowill-raw", will_topic="will/raw", will_payload=b"must not")
    r.send(raw_mqtt.disconnect())
    r.expect_closed(5)
    s = mosq.sub(broker, "unrelated", will={"topic": "will/cli", "payload": "must not"},
                 exit_after_subscribe=True)
    assert s.wait(10) == 0  # exited with a clean DISCONNECT
    js = mqttjs(broker, clientId="nowill-js", will={"topic": "will/js", "payload": "must not"})
    js.connect()
    js.end()
    w.expect_none(1.5)
    # The watcher itself is fine and a real will still gets through afterwards.
    r2 = raw(broker)
    r2.connect("will-after", will_topic="will/after", will_payload=b"yes")
    r2.close()
    assert w.get(timeout=5).topic == "will/after"


def test_will_retain_flag_honoured(broker, raw, paho):
    r = raw(broker)
    r.connect("will-retained", will_topic="will/retained", will_payload=b"last words",
              will_qos=1, will_retain=True)
    r.close()
    time.sleep(0.3)
    late = paho(broker, "late-will-sub")
    late.connect()
    late.subscribe("will/retained", 1)
    m = late.get(timeout=5)
    assert (m.payload, m.qos, m.retain) == (b"last words", 1, True)


def test_will_without_retain_not_retained(broker, raw, paho):
    r = raw(broker)
    r.connect("will-plain", will_topic="will/plain", will_payload=b"gone", will_qos=1)
    live = _watcher(broker, paho, "will/plain", 1, "will-plain-live")
    r.close()
    assert live.get(timeout=5).payload == b"gone"
    late = paho(broker, "late-plain-sub")
    late.connect()
    late.subscribe("will/plain", 1)
    late.expect_none(0.8)


def test_will_qos_downgraded_to_subscription(broker, raw, paho):
    w = _watcher(broker, paho, "will/q", 1, "will-q-watch")
    r = raw(broker)
    r.connect("will-q2", will_topic="will/q", will_payload=b"q2 will", will_qos=2)
    r.close()
    m = w.get(timeout=5)
    assert (m.payload, m.qos) == (b"q2 will", 1)
