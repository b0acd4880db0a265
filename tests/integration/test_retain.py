"""Retained messages (MQTT 3.1.1 section 3.3.1.3)."""

import mqtt_raw as raw_mqtt


def _publish_retained(broker, paho, items):
    pub = paho(broker, "retainer")
    pub.connect()
    for topic, payload, qos in items:
        pub.publish(topic, payload, qos=qos, retain=True)
    return pub


def test_retained_sent_on_subscribe_with_retain_flag(broker, paho):
    """[MQTT-3.3.1-6], [MQTT-3.3.1-8]: a new subscription gets the retained messages,
    with RETAIN=1, at min(their QoS, the granted QoS)."""
    _publish_retained(broker, paho, [("fromb/qos 0", b"r0", 0), ("fromb/qos 1", b"r1", 1),
                                     ("fromb/qos2", b"r2", 2)])
    sub = paho(broker, "retain-sub")
    sub.connect()
    sub.subscribe("fromb/+", 2)
    got = sorted(sub.collect(3))
    assert [(m.topic, m.payload, m.qos, m.retain) for m in got] == [
        ("fromb/qos 0", b"r0", 0, True), ("fromb/qos 1", b"r1", 1, True), ("fromb/qos2", b"r2", 2, True)]
    sub.expect_none(0.5)

    low = paho(broker, "retain-sub-q0")
    low.connect()
    low.subscribe("fromb/qos2", 0)
    m = low.get()
    assert (m.payload, m.qos, m.retain) == (b"r2", 0, True)


def test_retained_replaced_by_newer(broker, paho, mosq):
    mosq.pub(broker, "ret/replace", "v1", qos=1, retain=True)
    mosq.pub(broker, "ret/replace", "v2", qos=1, retain=True)
    sub = paho(broker, "replace-sub")
    sub.connect()
    sub.subscribe("ret/replace", 1)
    m = sub.get()
    assert (m.payload, m.retain) == (b"v2", True)
    sub.expect_none(0.5)


def test_retained_deleted_by_empty_payload(broker, paho, mosq):
    """[MQTT-3.3.1-10], [MQTT-3.3.1-11]: a zero-byte retained message removes the retained
    message and is not stored; current subscribers still get it like any message."""
    mosq.pub(broker, "ret/del", "keep me?", qos=1, retain=True)
    live = paho(broker, "del-live")
    live.connect()
    live.subscribe("ret/del", 1)
    assert live.get().payload == b"keep me?"
    mosq.pub(broker, "ret/del", None, qos=1, retain=True)  # -n: zero-length payload
    m = live.get()
    assert (m.payload, m.retain) == (b"", False)

    sub = paho(broker, "del-sub")
    sub.connect()
    sub.subscribe("ret/#", 1)
    sub.expect_none(0.8)


def test_retained_deleted_mosquitto_sub_sees_nothing(broker, mosq):
    mosq.pub(broker, "ret/cli/a", "a", retain=True)
    mosq.pub(broker, "ret/cli/b", "b", retain=True)
    mosq.pub(broker, "ret/cli/a", None, retain=True)
    sub = mosq.sub(broker, "ret/cli/+", qos=1)
    m = sub.get()
    assert (m.topic, m.payload, m.retain) == ("ret/cli/b", b"b", True)
    sub.expect_none(0.5)


def test_retained_matched_by_wildcards(broker, paho):
    _publish_retained(broker, paho, [("w/a", b"1", 1), ("w/a/b", b"2", 1), ("w/c/b", b"3", 1),
                                     ("x/y", b"4", 1)])
    expected = {
        "w/+": {"w/a"},
        "w/#": {"w/a", "w/a/b", "w/c/b"},
        "w/+/b": {"w/a/b", "w/c/b"},
        "+/+": {"w/a", "x/y"},
        "#": {"w/a", "w/a/b", "w/c/b", "x/y"},
        "x/y/#": {"x/y"},
    }
    for i, (flt, topics) in enumerate(expected.items()):
        sub = paho(broker, f"wild-retain-{i}")
        sub.connect()
        sub.subscribe(flt, 1)
        got = sub.drain(0.8)
        assert {m.topic for m in got} == topics, flt
        assert len(got) == len(topics), f"{flt}: duplicates in {got}"
        assert all(m.retain for m in got)
        sub.disconnect()


def test_live_message_to_existing_subscriber_has_retain_0(broker, paho, mosq):
    """[MQTT-3.3.1-9]: a message sent because it matches an established subscription has
    RETAIN=0 in 3.1.1, however it was published."""
    sub = paho(broker, "live-sub")
    sub.connect()
    sub.subscribe("ret/live", 1)
    cli = mosq.sub(broker, "ret/live", qos=1)
    mosq.pub(broker, "ret/live", "now", qos=1, retain=True)
    m = sub.get()
    assert (m.payload, m.retain) == (b"now", False)
    c = cli.get()
    assert (c.payload, c.retain) == (b"now", False)
    # ... while a subscription made afterwards gets it as a retained message.
    late = paho(broker, "late-sub")
    late.connect()
    late.subscribe("ret/live", 1)
    assert late.get().retain is True


def test_retained_resent_on_resubscribe(broker, paho):
    """[MQTT-3.8.4-3]: a SUBSCRIBE that replaces an identical subscription re-sends the
    retained messages."""
    _publish_retained(broker, paho, [("ret/again", b"once more", 1)])
    sub = paho(broker, "resub")
    sub.connect()
    sub.subscribe("ret/again", 1)
    assert sub.get().payload == b"once more"
    sub.subscribe("ret/again", 1)
    m = sub.get()
    assert (m.payload, m.retain) == (b"once more", True)


def test_retained_not_sent_to_raw_existing_subscriber_again(broker, raw, paho):
    """Retained messages go out once per new subscription, not on every later PUBLISH."""
    r = raw(broker)
    r.connect("raw-retain")
    r.subscribe([("ret/raw", 0)])
    _publish_retained(broker, paho, [("ret/raw", b"a", 0)])
    p = r.expect(raw_mqtt.PUBLISH)
    assert (p.payload, p.retain) == (b"a", False)
    r.expect_silence(0.5)
    r.subscribe([("ret/other", 0)], pid=2)
    r.expect_silence(0.5)


def test_retained_mqttjs(broker, mqttjs):
    pub = mqttjs(broker, clientId="js-ret-pub", clean=True)
    pub.connect()
    pub.publish("ret/js", "from js", qos=1, retain=True)
    pub.end()
    sub = mqttjs(broker, clientId="js-ret-sub", clean=True)
    sub.connect()
    sub.subscribe("ret/+", 1)
    m = sub.get()
    assert (m.topic, m.payload, m.qos, m.retain) == ("ret/js", b"from js", 1, True)
