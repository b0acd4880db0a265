"""MQTT.js with protocolVersion 5 against mqttd: sessions and expiry, properties,
subscription options and identifiers, topic aliases both ways, flow control, shared
subscriptions, wills with a delay, and the broker's DISCONNECT reason codes."""

import time

import pytest

pytestmark = pytest.mark.mqttd_only


def js5(mqttjs, broker, client_id, **options):
    props = options.pop("properties", {})
    c = mqttjs(broker, clientId=client_id, protocolVersion=5, properties=props, **options)
    return c


def test_mqttjs5_connack_and_session(broker, mqttjs):
    c = js5(mqttjs, broker, "js5-session", clean=True, properties={"sessionExpiryInterval": 60})
    ev = c.connect()
    assert ev["sessionPresent"] is False
    props = ev["properties"]
    assert props["receiveMaximum"] == 32
    assert props["maximumPacketSize"] == 1024 * 1024
    assert props["topicAliasMaximum"] == 100
    c.subscribe("js5/session", qos=1)
    c.end()

    pub = js5(mqttjs, broker, "js5-session-pub")
    pub.connect()
    pub.publish("js5/session", "queued", qos=1)

    back = js5(mqttjs, broker, "js5-session", clean=False, properties={"sessionExpiryInterval": 60})
    assert back.connect()["sessionPresent"] is True
    assert back.get().payload == b"queued"


def test_mqttjs5_assigned_client_identifier(broker, mqttjs):
    c = mqttjs(broker, clientId="", protocolVersion=5)
    ev = c.connect()
    assert ev["properties"]["assignedClientIdentifier"].startswith("mqttd-")


def test_mqttjs5_properties_reach_paho5_and_back(broker, mqttjs, paho5):
    p = paho5(broker, "js5-props-paho")
    p.connect()
    p.subscribe("js5/props/to-paho", qos=1)
    js = js5(mqttjs, broker, "js5-props")
    js.connect()
    js.subscribe("js5/props/to-js", qos=1)
    js.publish("js5/props/to-paho", "hello", qos=1,
               properties={"userProperties": {"from": "js"}, "contentType": "text/plain",
                           "responseTopic": "js5/props/to-js", "correlationData": "c-7",
                           "payloadFormatIndicator": True, "messageExpiryInterval": 100})
    m = p.get()
    assert m.props["UserProperty"] == [("from", "js")]
    assert m.props["ContentType"] == "text/plain"
    assert m.props["ResponseTopic"] == "js5/props/to-js"
    assert m.props["CorrelationData"] == b"c-7"
    assert m.props["PayloadFormatIndicator"] == 1
    assert 90 <= m.props["MessageExpiryInterval"] <= 100
    p.publish(m.props["ResponseTopic"], b"reply", qos=1,
              props={"CorrelationData": m.props["CorrelationData"], "UserProperty": [("from", "paho")]})
    r = js.get()
    assert r.payload == b"reply"
    assert r.props["correlationData"] == "c-7"
    assert r.props["userProperties"] == {"from": "paho"}


def test_mqttjs5_topic_aliases_both_ways(broker, mqttjs, paho5):
    js = js5(mqttjs, broker, "js5-alias", properties={"topicAliasMaximum": 3})
    js.connect()
    js.subscribe("js5/alias/#", qos=1)
    pub = paho5(broker, "js5-alias-pub")
    pub.connect()
    topics = ["js5/alias/a", "js5/alias/b", "js5/alias/a", "js5/alias/c", "js5/alias/d", "js5/alias/a"]
    for i, t in enumerate(topics):
        pub.publish(t, f"m{i}".encode(), qos=1)
    got = js.collect(len(topics))
    # MQTT.js resolves the broker's aliases: every topic arrives whole and right.
    assert [m.topic for m in got] == topics
    assert [m.props["topicAlias"] for m in got[:3]] == [1, 2, 1]
    assert all(1 <= m.props["topicAlias"] <= 3 for m in got)

    # The client's own alias, to the broker.
    js.publish("js5/alias/in", "named", qos=1, properties={"topicAlias": 1})
    js.publish("", "by alias", qos=1, properties={"topicAlias": 1})
    got = js.collect(2)
    assert [(m.topic, m.payload) for m in got] == [("js5/alias/in", b"named"), ("js5/alias/in", b"by alias")]


def test_mqttjs5_subscription_options_and_identifier(broker, mqttjs):
    js = js5(mqttjs, broker, "js5-subopts")
    js.connect()
    js.publish("js5/opts/r", "retained", qos=1, retain=True)
    js.subscribe("js5/opts/#", qos=1, nl=True, rap=True, rh=0, properties={"subscriptionIdentifier": 12})
    m = js.get()
    assert (m.payload, m.retain) == (b"retained", True)
    assert m.props["subscriptionIdentifier"] == 12
    js.publish("js5/opts/self", "mine", qos=1)
    js.expect_none(1.0)  # No Local
    js.subscribe("js5/opts/#", qos=1, rh=1)  # exists already: no retained message
    js.expect_none(1.0)


def test_mqttjs5_receive_maximum(broker, mqttjs, raw):
    import mqtt_raw as raw_mqtt
    js = js5(mqttjs, broker, "js5-rm", properties={"receiveMaximum": 2})
    js.connect()
    js.subscribe("js5/rm", qos=1)
    pub = raw(broker)
    pub.connect("js5-rm-pub", level=5)
    for i in range(20):
        pub.send(raw_mqtt.publish("js5/rm", f"m{i}", qos=1, pid=i + 1, props=[]))
        pub.expect(raw_mqtt.PUBACK)
    got = js.collect(20, timeout=10.0)
    assert [m.payload for m in got] == [f"m{i}".encode() for i in range(20)]


def test_mqttjs5_shared_subscription_with_paho5(broker, mqttjs, paho5):
    js = js5(mqttjs, broker, "js5-share")
    js.connect()
    js.subscribe("$share/mix/js5/share", qos=1)
    p = paho5(broker, "js5-share-paho")
    p.connect()
    p.subscribe("$share/mix/js5/share", qos=1)
    pub = paho5(broker, "js5-share-pub")
    pub.connect()
    for i in range(8):
        pub.publish("js5/share", f"m{i}".encode(), qos=1)
    a = js.collect(4, timeout=5.0)
    b = p.collect(4, timeout=5.0)
    js.expect_none(0.5)
    assert sorted(m.payload for m in a + b) == sorted(f"m{i}".encode() for i in range(8))


def test_mqttjs5_will_delay(broker, mqttjs, paho5):
    watcher = paho5(broker, "js5-will-watch")
    watcher.connect()
    watcher.subscribe("js5/will", qos=1)
    js = js5(mqttjs, broker, "js5-will", properties={"sessionExpiryInterval": 60},
             will={"topic": "js5/will", "payload": "js gone", "qos": 1,
                   "properties": {"willDelayInterval": 2, "userProperties": {"w": "1"}}})
    js.connect()
    js.kill()
    start = time.monotonic()
    m = watcher.get(8.0)
    assert m.payload == b"js gone" and m.props["UserProperty"] == [("w", "1")]
    assert time.monotonic() - start >= 1.5


def test_mqttjs5_is_told_session_taken_over(broker, mqttjs):
    first = js5(mqttjs, broker, "js5-takeover")
    first.connect()
    second = js5(mqttjs, broker, "js5-takeover")
    second.connect()
    ev = first.wait_event("disconnect", 5.0)
    assert ev["reasonCode"] == 0x8E
    assert ev["properties"].get("reasonString")


def test_mqttjs5_is_told_server_shutting_down(start_broker, mqttjs):
    b = start_broker()
    js = js5(mqttjs, b, "js5-shutdown")
    js.connect()
    b.stop()
    assert js.wait_event("disconnect", 5.0)["reasonCode"] == 0x8B
