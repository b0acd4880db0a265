"""SUBSCRIBE / SUBACK, UNSUBSCRIBE / UNSUBACK (MQTT 3.1.1 sections 3.8 to 3.11) and
overlapping subscriptions (3.3.5)."""

import pytest

import mqtt_raw as raw_mqtt


def test_suback_one_code_per_filter_in_order(broker, raw):
    """[MQTT-3.8.4-1], [MQTT-3.8.4-5]: SUBACK carries the SUBSCRIBE's packet id and one
    return code per filter, in order."""
    r = raw(broker)
    r.connect("suback")
    r.send(raw_mqtt.subscribe(0x4242, [("s/a", 0), ("s/b", 1), ("s/c", 2), ("s/+/d", 1)]))
    ack = r.expect(raw_mqtt.SUBACK)
    assert ack.flags == 0
    assert ack.pid == 0x4242
    assert ack.granted == [0, 1, 2, 1]


def test_resubscribe_replaces_qos(broker, paho):
    """[MQTT-3.8.4-3]: an identical filter replaces the subscription (and its QoS);
    the client is not subscribed twice."""
    sub = paho(broker, "resub-qos")
    sub.connect()
    assert sub.subscribe("rq/t", 2) == (2,)
    assert sub.subscribe("rq/t", 0) == (0,)
    pub = paho(broker, "resub-pub")
    pub.connect()
    pub.publish("rq/t", b"x", qos=2)
    got = sub.drain(0.8)
    assert [(m.payload, m.qos) for m in got] == [(b"x", 0)]


def test_overlapping_subscriptions_one_copy(broker, paho, mqttjs):
    """3.3.5: a message matching several of a client's filters is delivered respecting
    the highest QoS; mqttd (like mosquitto) sends one copy only, not one per filter."""
    sub = paho(broker, "overlap")
    sub.connect()
    assert sub.subscribe([("TopicA/#", 2), ("TopicA/+", 1), ("TopicA/C", 0)]) == (2, 1, 0)
    js = mqttjs(broker, clientId="overlap-js")
    js.connect()
    js.subscribe("TopicA/#", 1)
    js.subscribe("+/C", 1)
    pub = paho(broker, "overlap-pub")
    pub.connect()
    pub.publish("TopicA/C", b"overlapping topic filters", qos=2)
    assert len(sub.drain(1.0)) == 1
    assert len(js.collect(1)) == 1
    js.expect_none(0.3)


@pytest.mark.mqttd_only
@pytest.mark.parametrize("order", ["high first", "high last"])
def test_overlapping_subscriptions_highest_qos(broker, paho, order):
    """[MQTT-3.3.5-1]: the one copy goes at the maximum QoS of the matching subscriptions.
    (mosquitto 2.0 uses the QoS of one matching subscription, not the maximum: its
    issue 3319.)"""
    sub = paho(broker, "overlap-max")
    sub.connect()
    filters = [("TopicA/#", 2), ("TopicA/+", 1), ("+/C", 0)]
    if order == "high last":
        filters.reverse()
    sub.subscribe(filters)
    pub = paho(broker, "overlap-max-pub")
    pub.connect()
    pub.publish("TopicA/C", b"max", qos=2)
    pub.publish("TopicA/C", b"one", qos=1)
    got = sub.drain(1.0)
    # Sorted: paho hands a QoS 2 message to the application only at PUBREL, after the
    # QoS 1 one; what matters here is one copy each, at the highest matching QoS.
    assert sorted((m.payload, m.qos) for m in got) == [(b"max", 2), (b"one", 1)]


def test_unsubscribe_stops_delivery_paho(broker, paho):
    sub = paho(broker, "unsub")
    sub.connect()
    sub.subscribe([("u/a", 1), ("u/b", 1)])
    pub = paho(broker, "unsub-pub")
    pub.connect()
    pub.publish("u/a", b"1", qos=1)
    assert sub.get().payload == b"1"
    sub.unsubscribe("u/a")
    pub.publish("u/a", b"2", qos=1)
    pub.publish("u/b", b"3", qos=1)
    assert [m.payload for m in sub.drain(0.8)] == [b"3"]


def test_unsubscribe_stops_delivery_mqttjs(broker, mqttjs):
    js = mqttjs(broker, clientId="unsub-js")
    js.connect()
    js.subscribe("uj/t", 1)
    js.publish("uj/t", "before", qos=1)
    assert js.get().payload == b"before"
    js.unsubscribe("uj/t")
    js.publish("uj/t", "after", qos=1)
    js.expect_none(0.8)


def test_unsubscribe_one_of_overlapping_keeps_the_other(broker, paho):
    sub = paho(broker, "unsub-overlap")
    sub.connect()
    sub.subscribe([("uo/#", 1), ("uo/b", 1)])
    sub.unsubscribe("uo/b")
    pub = paho(broker, "uo-pub")
    pub.connect()
    pub.publish("uo/b", b"via #", qos=1)
    assert [m.payload for m in sub.drain(0.8)] == [b"via #"]


def test_unsuback_for_unknown_filters(broker, raw):
    """[MQTT-3.10.4-4], [MQTT-3.10.4-5]: UNSUBACK with the same packet id even when
    nothing matched; the filter is compared character by character, not as a pattern."""
    r = raw(broker)
    r.connect("unsuback")
    r.subscribe([("x/+", 0)])
    r.send(raw_mqtt.unsubscribe(7, ["never/subscribed"]))
    ack = r.expect(raw_mqtt.UNSUBACK)
    assert ack.pid == 7 and ack.flags == 0 and len(ack.body) == 2
    r.send(raw_mqtt.unsubscribe(8, ["x/y", "x/#"]))  # neither is the filter "x/+"
    assert r.expect(raw_mqtt.UNSUBACK).pid == 8
    # "x/+" is still in place.
    r2 = raw(broker)
    r2.connect("unsuback-pub")
    r2.send(raw_mqtt.publish("x/y", b"still"))
    p = r.expect(raw_mqtt.PUBLISH)
    assert p.payload == b"still"


def test_unsubscribe_several_filters_at_once(broker, paho):
    sub = paho(broker, "unsub-many")
    sub.connect()
    sub.subscribe([("um/a", 0), ("um/b", 1), ("um/c", 2)])
    sub.unsubscribe(["um/a", "um/c"])
    pub = paho(broker, "um-pub")
    pub.connect()
    for t in ("um/a", "um/b", "um/c"):
        pub.publish(t, t.encode(), qos=1)
    assert [m.topic for m in sub.drain(0.8)] == ["um/b"]
