"""mqttd's own limits: topic depth (mqtt.max_topic_levels) and QoS 2 messages awaiting
PUBREL (mqtt.max_awaiting_rel); each refused without disturbing other clients."""

import pytest

import mqtt_raw as raw_mqtt
from mqtt_raw import PUBREC


@pytest.mark.mqttd_only
def test_max_topic_levels(start_broker, raw):
    b = start_broker(["mqtt.max_topic_levels = 3"])
    bystander = raw(b)
    bystander.connect("levels-bystander")
    assert bystander.subscribe([("a/b/c", 1), ("a/b/c/d", 1)]) == [1, 0x80]

    pub = raw(b)
    pub.connect("levels-pub")
    pub.send(raw_mqtt.publish("a/b/c", "fits", qos=0))
    got = bystander.recv()
    assert got.name == "PUBLISH" and got.payload == b"fits"
    pub.send(raw_mqtt.publish("a/b/c/d", "too deep", qos=0))
    pub.expect_closed()
    bystander.ping()


@pytest.mark.mqttd_only
def test_max_awaiting_rel(start_broker, raw):
    b = start_broker(["mqtt.max_awaiting_rel = 2"])
    c = raw(b)
    c.connect("awaiting-rel")
    for pid in (1, 2):
        c.send(raw_mqtt.publish("rel/t", "x", qos=2, pid=pid))
        assert c.expect(PUBREC).pid == pid
    # PUBREL for one of them frees a place.
    c.send(raw_mqtt.pubrel(1))
    assert c.recv().name == "PUBCOMP"
    c.send(raw_mqtt.publish("rel/t", "y", qos=2, pid=3))
    assert c.expect(PUBREC).pid == 3
    # A third one awaiting PUBREL is one too many.
    c.send(raw_mqtt.publish("rel/t", "z", qos=2, pid=4))
    c.expect_closed()

    other = raw(b)
    other.connect("awaiting-rel-other")
    other.ping()
