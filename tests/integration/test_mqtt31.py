"""MQTT 3.1 ("MQIsdp", protocol level 3) clients next to MQTT 3.1.1 clients."""

import mqtt_raw as raw_mqtt


def test_v31_and_v311_exchange_messages_paho(broker, paho):
    old = paho(broker, "v31-client", protocol=3)
    new = paho(broker, "v311-client", protocol=4)
    old.connect()
    new.connect()
    old.subscribe("mix/to31", 2)
    new.subscribe("mix/to311", 2)
    for q in (0, 1, 2):
        new.publish("mix/to31", f"311->31 q{q}".encode(), qos=q)
        old.publish("mix/to311", f"31->311 q{q}".encode(), qos=q)
    got_old = sorted((m.payload, m.qos) for m in old.collect(3))
    got_new = sorted((m.payload, m.qos) for m in new.collect(3))
    assert got_old == [(f"311->31 q{q}".encode(), q) for q in (0, 1, 2)]
    assert got_new == [(f"31->311 q{q}".encode(), q) for q in (0, 1, 2)]


def test_v31_mosquitto_clients(broker, mosq, paho):
    sub31 = mosq.sub(broker, "mix/cli", qos=1, version="mqttv31")
    new = paho(broker, "v311-cli-peer")
    new.connect()
    new.subscribe("mix/cli", 1)
    mosq.pub(broker, "mix/cli", "from 3.1", qos=1, version="mqttv31")
    assert sub31.get().payload == b"from 3.1"
    assert new.get().payload == b"from 3.1"


def test_v31_mqttjs_and_raw(broker, mqttjs, raw):
    js = mqttjs(broker, clientId="js-v31", protocolId="MQIsdp", protocolVersion=3)
    assert js.connect()["returnCode"] == 0
    js.subscribe("mix/js31", 1)
    r = raw(broker)
    assert r.connect("raw-v311").return_code == 0
    r.publish_qos1("mix/js31", b"to 3.1 js", pid=2)
    m = js.get()
    assert (m.payload, m.qos) == (b"to 3.1 js", 1)


def test_v31_persistent_session_and_will(broker, paho, raw):
    """Session and will semantics are the same for a 3.1 client."""
    w = paho(broker, "v31-watch")
    w.connect()
    w.subscribe("v31/#", 1)
    r = raw(broker)
    ack = r.connect("v31-persist", level=3, clean=False, will_topic="v31/will", will_payload=b"bye 3.1")
    assert ack.return_code == 0
    r.subscribe([("v31/q", 1)])
    r.close()
    assert w.get().payload == b"bye 3.1"
    w.publish("v31/q", b"queued for 3.1", qos=1)
    back = paho(broker, "v31-persist", protocol=3, clean_session=False)
    back.connect()
    assert back.get().payload == b"queued for 3.1"


def test_v31_connack_has_no_session_present_flag_and_ids_are_1_to_23_characters(broker, raw):
    """MQTT 3.1: the CONNACK's first byte is reserved (0) even for a resumed session, and a
    client identifier must have 1 to 23 characters (return code 2 otherwise)."""
    first = raw(broker)
    assert first.connect("v31-present", level=3, clean=False).return_code == 0
    first.close()
    again = raw(broker)
    ack = again.connect("v31-present", level=3, clean=False)
    assert ack.return_code == 0
    assert ack.body[0] == 0
    for cid in ("", "x" * 24):
        r = raw(broker)
        assert r.connect(cid, level=3).return_code == 2
        r.expect_closed()
    r = raw(broker)
    assert r.connect("y" * 23, level=3).return_code == 0
