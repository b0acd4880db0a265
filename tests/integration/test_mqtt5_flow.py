"""MQTT 5 flow control and limits: Receive Maximum, Maximum Packet Size and Topic
Alias, each in both directions, with paho in MQTT 5 mode and raw packets where the
exact bytes matter."""

import pytest

import mqtt_raw as raw_mqtt
from mqtt_raw import DISCONNECT, PUBACK, PUBLISH, PUBREC, SUBACK

pytestmark = pytest.mark.mqttd_only


def test_connack_tells_the_truth(start_broker, paho5):
    b = start_broker(["mqtt.max_inflight = 7", "mqtt.max_packet_size = 64KB", "mqtt.max_topic_alias = 5",
                      "mqtt.max_qos_allowed = 1", "mqtt.retain_available = false",
                      "mqtt.wildcard_subscription = false", "mqtt.shared_subscription = false"])
    c = paho5(b, "flow-connack")
    c.connect()
    p = c.connack_props
    assert p["ReceiveMaximum"] == 7
    assert p["MaximumPacketSize"] == 64 * 1024
    assert p["TopicAliasMaximum"] == 5
    assert p["MaximumQoS"] == 1
    assert p["RetainAvailable"] == 0
    assert p["WildcardSubscriptionAvailable"] == 0
    assert p["SharedSubscriptionAvailable"] == 0
    assert "SubscriptionIdentifierAvailable" not in p  # supported: absent means 1
    # And what it says holds: refused subscriptions say why.
    assert c.subscribe("flow/+", qos=1) == (0xA2,)
    assert c.subscribe("$share/g/flow", qos=1) == (0x9E,)
    assert c.subscribe("flow/x", qos=2) == (1,)


def test_connack_defaults(broker, paho5):
    c = paho5(broker, "flow-defaults")
    c.connect()
    p = c.connack_props
    assert p["ReceiveMaximum"] == 32
    assert p["MaximumPacketSize"] == 1024 * 1024
    assert p["TopicAliasMaximum"] == 100
    for absent in ("MaximumQoS", "RetainAvailable", "WildcardSubscriptionAvailable",
                   "SharedSubscriptionAvailable", "SubscriptionIdentifierAvailable"):
        assert absent not in p


def test_client_receive_maximum_limits_what_is_in_flight(broker, raw, paho5):
    c = raw(broker)
    c.connect("flow-rm", level=5, props=[(raw_mqtt.RECEIVE_MAXIMUM, 2)])
    c.send(raw_mqtt.subscribe5(1, [("flow/rm", 1)]))
    c.expect(SUBACK)
    pub = paho5(broker, "flow-rm-pub")
    pub.connect()
    for i in range(4):
        pub.publish("flow/rm", f"m{i}".encode(), qos=1)
    first = [c.expect(PUBLISH), c.expect(PUBLISH)]
    c.expect_silence(1.5)  # two unacknowledged: the third waits
    c.send(raw_mqtt.ack5(PUBACK, first[0].pid))
    third = c.expect(PUBLISH)
    assert third.payload5 == b"m2"
    c.expect_silence(1.0)
    for p in (first[1], third):
        c.send(raw_mqtt.ack5(PUBACK, p.pid))
    assert c.expect(PUBLISH).payload5 == b"m3"


def test_exceeding_the_broker_receive_maximum_is_disconnect_0x93(start_broker, raw):
    b = start_broker(["mqtt.max_inflight = 3"])
    c = raw(b)
    assert c.connect("flow-rm-over", level=5).props[raw_mqtt.RECEIVE_MAXIMUM] == [3]
    # QoS 2 without PUBREL: each stays unacknowledged, and the fourth is one too many.
    for pid in (1, 2, 3):
        c.send(raw_mqtt.publish("flow/over", b"x", qos=2, pid=pid, props=[]))
        assert c.expect(PUBREC).pid == pid
    c.send(raw_mqtt.publish("flow/over", b"x", qos=2, pid=4, props=[]))
    got = c.expect_closed()
    assert [p.reason for p in got if p.type == DISCONNECT] == [0x93]


def test_max_awaiting_rel_is_quota_exceeded(start_broker, raw):
    b = start_broker(["mqtt.max_awaiting_rel = 2"])
    c = raw(b)
    c.connect("flow-quota", level=5)
    for pid in (1, 2):
        c.send(raw_mqtt.publish("flow/quota", b"x", qos=2, pid=pid, props=[]))
        c.expect(PUBREC)
    c.send(raw_mqtt.publish("flow/quota", b"x", qos=2, pid=3, props=[]))
    got = c.expect_closed()
    assert [p.reason for p in got if p.type == DISCONNECT] == [0x97]


def test_packet_larger_than_the_broker_maximum_is_disconnect_0x95(start_broker, raw):
    b = start_broker(["mqtt.max_packet_size = 1KB"])
    c = raw(b)
    assert c.connect("flow-big", level=5).props[raw_mqtt.MAXIMUM_PACKET_SIZE] == [1024]
    c.send(raw_mqtt.publish("flow/big", b"x" * 2000, qos=0, props=[]))
    got = c.expect_closed()
    assert [p.reason for p in got if p.type == DISCONNECT] == [0x95]


def test_messages_larger_than_the_client_maximum_are_dropped(broker, paho5):
    c = paho5(broker, "flow-cmax", connect_props={"MaximumPacketSize": 64})
    c.connect()
    c.subscribe("flow/cmax", qos=1)
    pub = paho5(broker, "flow-cmax-pub")
    pub.connect()
    pub.publish("flow/cmax", b"." * 32, qos=1)
    pub.publish("flow/cmax", b"." * 64, qos=1)  # would make a packet over 64 bytes
    pub.publish("flow/cmax", b"small", qos=1)
    got = c.collect(2)
    assert [m.payload for m in got] == [b"." * 32, b"small"]
    c.expect_none(1.0)
    # Dropped QoS 1 messages do not hold the window: more still flows.
    for i in range(40):
        pub.publish("flow/cmax", b"." * 100, qos=1, wait=False)
    pub.publish("flow/cmax", b"last", qos=1)
    assert c.get().payload == b"last"


def test_reason_string_never_exceeds_the_client_maximum(start_broker, raw):
    b = start_broker(["mqtt.max_topic_levels = 2"])
    roomy = raw(b)
    roomy.connect("flow-rs-roomy", level=5)
    roomy.send(raw_mqtt.publish("a/b/c", b"", qos=0, props=[]))
    got = roomy.expect_closed()
    d = [p for p in got if p.type == DISCONNECT][0]
    assert d.reason == 0x90 and d.props[raw_mqtt.REASON_STRING]
    tight = raw(b)
    tight.connect("flow-rs-tight", level=5, props=[(raw_mqtt.MAXIMUM_PACKET_SIZE, 20)])  # the CONNACK fits, a Reason String would not
    tight.send(raw_mqtt.publish("a/b/c", b"", qos=0, props=[]))
    got = tight.expect_closed()
    d = [p for p in got if p.type == DISCONNECT][0]
    assert d.reason == 0x90 and raw_mqtt.REASON_STRING not in d.props


def test_inbound_topic_alias(broker, raw, paho5):
    sub = paho5(broker, "flow-alias-sub")
    sub.connect()
    sub.subscribe("flow/alias/#", qos=1)
    c = raw(broker)
    c.connect("flow-alias-in", level=5)
    c.send(raw_mqtt.publish("flow/alias/one", b"1", qos=1, pid=1, props=[(raw_mqtt.TOPIC_ALIAS, 1)]))
    c.expect(PUBACK)
    c.send(raw_mqtt.publish("", b"2", qos=1, pid=2, props=[(raw_mqtt.TOPIC_ALIAS, 1)]))
    c.expect(PUBACK)
    c.send(raw_mqtt.publish("flow/alias/two", b"3", qos=1, pid=3, props=[(raw_mqtt.TOPIC_ALIAS, 1)]))  # remapped
    c.expect(PUBACK)
    c.send(raw_mqtt.publish("", b"4", qos=1, pid=4, props=[(raw_mqtt.TOPIC_ALIAS, 1)]))
    c.expect(PUBACK)
    got = sub.collect(4)
    assert [(m.topic, m.payload) for m in got] == [("flow/alias/one", b"1"), ("flow/alias/one", b"2"),
                                                   ("flow/alias/two", b"3"), ("flow/alias/two", b"4")]
    assert all("TopicAlias" not in m.props for m in got)


def test_inbound_topic_alias_errors(start_broker, raw):
    b = start_broker(["mqtt.max_topic_alias = 2"])
    over = raw(b)
    over.connect("flow-alias-over", level=5)
    over.send(raw_mqtt.publish("t", b"", props=[(raw_mqtt.TOPIC_ALIAS, 3)]))
    assert [p.reason for p in over.expect_closed() if p.type == DISCONNECT] == [0x94]
    zero = raw(b)
    zero.connect("flow-alias-zero", level=5)
    zero.send(raw_mqtt.publish("t", b"", props=[(raw_mqtt.TOPIC_ALIAS, 0)]))
    assert [p.reason for p in zero.expect_closed() if p.type == DISCONNECT] == [0x94]
    unknown = raw(b)
    unknown.connect("flow-alias-unknown", level=5)
    unknown.send(raw_mqtt.publish("", b"", props=[(raw_mqtt.TOPIC_ALIAS, 1)]))
    assert [p.reason for p in unknown.expect_closed() if p.type == DISCONNECT] == [0x82]


def test_inbound_topic_aliases_do_not_outlive_the_connection(broker, raw):
    c = raw(broker)
    c.connect("flow-alias-life", level=5, clean=False, props=[(raw_mqtt.SESSION_EXPIRY, 60)])
    c.send(raw_mqtt.publish("flow/life", b"", qos=1, pid=1, props=[(raw_mqtt.TOPIC_ALIAS, 1)]))
    c.expect(PUBACK)
    c.send(raw_mqtt.disconnect5())
    c.expect_closed()
    again = raw(broker)
    assert again.connect("flow-alias-life", level=5, clean=False, props=[(raw_mqtt.SESSION_EXPIRY, 60)]).session_present
    again.send(raw_mqtt.publish("", b"", qos=1, pid=2, props=[(raw_mqtt.TOPIC_ALIAS, 1)]))
    assert [p.reason for p in again.expect_closed() if p.type == DISCONNECT] == [0x82]


def test_outbound_topic_aliases(broker, paho5):
    """paho 1.6 shows the wire: the first PUBLISH of a topic sets the alias, later ones
    send the alias alone."""
    c = paho5(broker, "flow-alias-out", connect_props={"TopicAliasMaximum": 1})
    c.connect()
    c.subscribe("flow/out/#", qos=2)
    for qos in range(3):
        c.publish("flow/out/a", f"a{qos}".encode(), qos=qos)
    got = c.collect(3)
    assert got[0].topic == "flow/out/a"
    alias = got[0].props["TopicAlias"]
    assert alias == 1
    for m in got[1:]:
        assert m.topic == "" and m.props["TopicAlias"] == alias
    # A second topic takes the only alias over; the first must be named again.
    c.publish("flow/out/b", b"b", qos=1)
    c.publish("flow/out/a", b"a-again", qos=1)
    got = c.collect(2)
    assert [(m.topic, m.props["TopicAlias"]) for m in got] == [("flow/out/b", 1), ("flow/out/a", 1)]


def test_no_outbound_aliases_unless_the_client_allows_them(start_broker, paho5):
    b = start_broker()
    c = paho5(b, "flow-alias-none")
    c.connect()
    c.subscribe("flow/none", qos=1)
    for i in range(3):
        c.publish("flow/none", b"x", qos=1)
    assert all(m.topic == "flow/none" and "TopicAlias" not in m.props for m in c.collect(3))
    off = start_broker(["mqtt.max_topic_alias_out = 0"])
    d = paho5(off, "flow-alias-off", connect_props={"TopicAliasMaximum": 10})
    d.connect()
    d.subscribe("flow/off", qos=1)
    for i in range(2):
        d.publish("flow/off", b"x", qos=1)
    assert all(m.topic == "flow/off" and "TopicAlias" not in m.props for m in d.collect(2))


def test_outbound_aliases_start_afresh_on_a_new_connection(broker, paho5):
    c = paho5(broker, "flow-alias-new", connect_props={"TopicAliasMaximum": 4, "SessionExpiryInterval": 60})
    c.connect()
    c.subscribe("flow/new", qos=1)
    c.publish("flow/new", b"1", qos=1)
    assert c.get().topic == "flow/new"
    c.disconnect()
    again = paho5(broker, "flow-alias-new", clean_start=False,
                  connect_props={"TopicAliasMaximum": 4, "SessionExpiryInterval": 60})
    again.connect()
    again.publish("flow/new", b"2", qos=1)
    m = again.get()
    assert m.topic == "flow/new" and m.props["TopicAlias"] >= 1
