"""MQTT 5 subscriptions: No Local, Retain As Published, Retain Handling, Subscription
Identifiers, shared subscriptions for 3.1.1 and 5.0 members, and 3.1.1 and 5.0 clients
on the same topics."""

import pytest

import mqtt_raw as raw_mqtt
from mqtt_raw import PUBACK, PUBLISH, SUBACK

pytestmark = pytest.mark.mqttd_only


def test_no_local(broker, paho5):
    a = paho5(broker, "sub-nl-a")
    a.connect()
    b = paho5(broker, "sub-nl-b")
    b.connect()
    a.subscribe("sub/nl", qos=1, no_local=True)
    b.subscribe("sub/nl", qos=1, no_local=True)
    a.publish("sub/nl", b"from a", qos=1)
    assert b.get().payload == b"from a"
    a.expect_none(1.0)
    # Without No Local the publisher gets its own message.
    a.subscribe("sub/nl", qos=1)
    a.publish("sub/nl", b"again", qos=1)
    assert a.get().payload == b"again"


def test_retain_as_published(broker, paho5):
    c = paho5(broker, "sub-rap")
    c.connect()
    c.subscribe("sub/rap", qos=1, retain_as_published=True)
    d = paho5(broker, "sub-rap-plain")
    d.connect()
    d.subscribe("sub/rap", qos=1)
    c.publish("sub/rap", b"not retained", qos=1)
    c.publish("sub/rap", b"retained", qos=1, retain=True)
    assert [(m.payload, m.retain) for m in c.collect(2)] == [(b"not retained", False), (b"retained", True)]
    assert [(m.payload, m.retain) for m in d.collect(2)] == [(b"not retained", False), (b"retained", False)]
    # A retained message sent because of the subscription is always flagged.
    late = paho5(broker, "sub-rap-late")
    late.connect()
    late.subscribe("sub/rap", qos=1)
    m = late.get()
    assert m.payload == b"retained" and m.retain


def test_retain_handling(broker, paho5):
    pub = paho5(broker, "sub-rh-pub")
    pub.connect()
    for qos in range(3):
        pub.publish(f"sub/rh/{qos}", f"r{qos}".encode(), qos=qos, retain=True)

    c = paho5(broker, "sub-rh")
    c.connect()
    c.subscribe("sub/rh/+", qos=2, retain_handling=1)  # new subscription: sent
    assert sorted(m.qos for m in c.collect(3)) == [0, 1, 2]
    c.subscribe("sub/rh/+", qos=2, retain_handling=1)  # existed: not sent
    c.expect_none(1.0)
    c.subscribe("sub/rh/+", qos=2, retain_handling=0)  # always sent
    assert len(c.collect(3)) == 3

    never = paho5(broker, "sub-rh-2")
    never.connect()
    never.subscribe("sub/rh/+", qos=2, retain_handling=2)
    never.expect_none(1.0)
    pub.publish("sub/rh/0", b"live", qos=1)
    assert never.get().payload == b"live"


def test_subscription_identifiers(broker, paho5):
    c = paho5(broker, "sub-ids")
    c.connect()
    c.subscribe("sub/ids/+", qos=1, sub_id=2)
    c.subscribe("sub/ids/x", qos=1, sub_id=268435455)
    c.subscribe("sub/ids/#", qos=1)  # no identifier
    c.publish("sub/ids/x", b"both", qos=1)
    m = c.get()
    assert sorted(m.props["SubscriptionIdentifier"]) == [2, 268435455]
    c.expect_none(0.5)  # one copy for the overlapping subscriptions
    c.publish("sub/ids/y", b"one", qos=1)
    assert c.get().props["SubscriptionIdentifier"] == [2]
    # The publisher's own identifiers never travel.
    other = paho5(broker, "sub-ids-plain")
    other.connect()
    other.subscribe("sub/ids/x", qos=1)
    c.publish("sub/ids/x", b"plain", qos=1)
    assert "SubscriptionIdentifier" not in other.get().props


def test_subscription_identifier_on_retained_messages(broker, paho5):
    pub = paho5(broker, "sub-ids-ret-pub")
    pub.connect()
    pub.publish("sub/idsret", b"r", qos=1, retain=True)
    c = paho5(broker, "sub-ids-ret")
    c.connect()
    c.subscribe("sub/idsret", qos=1, sub_id=9)
    assert c.get().props["SubscriptionIdentifier"] == [9]


def test_subscription_identifier_zero_is_a_protocol_error(broker, raw):
    c = raw(broker)
    c.connect("sub-ids-zero", level=5)
    c.send(raw_mqtt.subscribe5(1, [("t", 1)], props=[(raw_mqtt.SUBSCRIPTION_ID, 0)]))
    assert [p.reason for p in c.expect_closed() if p.type == raw_mqtt.DISCONNECT] == [0x82]


def test_unsuback_reason_codes(broker, paho5):
    c = paho5(broker, "sub-unsuback")
    c.connect()
    c.subscribe("sub/u", qos=1)
    assert c.unsubscribe("sub/u") == (0x00,)
    assert c.unsubscribe("sub/u") == (0x11,)


# ---------------------------------------------------------------- shared subscriptions

def test_shared_subscription_round_robin_across_versions(broker, paho, paho5):
    v5 = paho5(broker, "share-v5")
    v5.connect()
    v5.subscribe("$share/grp/share/rr", qos=1)
    v3 = paho(broker, "share-v311")
    v3.connect()
    v3.subscribe("$share/grp/share/rr", qos=1)
    plain = paho5(broker, "share-plain")
    plain.connect()
    plain.subscribe("share/rr", qos=1)

    pub = paho5(broker, "share-pub")
    pub.connect()
    for i in range(10):
        pub.publish("share/rr", f"m{i}".encode(), qos=1)
    assert len(plain.collect(10)) == 10  # an ordinary subscription gets everything
    a = v5.drain(1.5)
    b = v3.drain(0.5)
    assert len(a) == 5 and len(b) == 5, (a, b)
    assert sorted(m.payload for m in a + b) == sorted(f"m{i}".encode() for i in range(10))


def test_shared_subscription_gets_no_retained_messages(broker, paho5):
    pub = paho5(broker, "share-ret-pub")
    pub.connect()
    pub.publish("share/ret", b"retained", qos=1, retain=True)
    c = paho5(broker, "share-ret")
    c.connect()
    assert c.subscribe("$share/g/share/ret", qos=1) == (1,)
    c.expect_none(1.0)
    pub.publish("share/ret", b"live", qos=1)
    assert c.get().payload == b"live"


def test_shared_subscription_with_no_local_is_a_protocol_error(broker, raw):
    c = raw(broker)
    c.connect("share-nl", level=5)
    c.send(raw_mqtt.subscribe5(1, [("$share/g/share/nl", 0x04 | 1)]))
    assert [p.reason for p in c.expect_closed() if p.type == raw_mqtt.DISCONNECT] == [0x82]


def test_shared_member_that_disconnects_hands_unacknowledged_messages_over(broker, raw):
    """Messages sent to a member that never acknowledged them, and messages still queued
    for it, go to the other member when it disconnects; acknowledged ones do not."""
    members = {}
    for name in ("slow", "steady"):
        c = raw(broker)
        c.connect(f"share-{name}", level=5, props=[(raw_mqtt.RECEIVE_MAXIMUM, 1), (raw_mqtt.SESSION_EXPIRY, 60)])
        c.send(raw_mqtt.subscribe5(1, [("$share/ho/share/ho", 1)]))
        c.expect(SUBACK)
        members[name] = c
    slow, steady = members["slow"], members["steady"]

    pub = raw(broker)
    pub.connect("share-ho-pub")
    for i in range(6):  # each acknowledged, so routed, before the next
        pub.publish_qos1("share/ho", f"m{i}".encode(), pid=i + 1)
    # Windows of 1, neither acknowledging: each member has one in flight, two queued.
    first = slow.expect(PUBLISH)
    slow.send(raw_mqtt.ack5(PUBACK, first.pid))
    held = slow.expect(PUBLISH)  # never acknowledged
    slow.close()  # the network goes away: "held" and the one queued behind it move

    got_steady = []
    for _ in range(5):  # its own three and the two handed over
        m = steady.expect(PUBLISH)
        got_steady.append(m.payload5)
        steady.send(raw_mqtt.ack5(PUBACK, m.pid))
    steady.expect_silence(1.0)
    assert held.payload5 in got_steady
    assert first.payload5 not in got_steady
    assert sorted(got_steady + [first.payload5]) == sorted(f"m{i}".encode() for i in range(6))


def test_shared_member_with_a_full_window_is_passed_over(broker, raw, paho5):
    """A member whose Receive Maximum is used up gets no more while another has room:
    the messages do not wait in its queue."""
    slow = raw(broker)
    slow.connect("share-full", level=5, props=[(raw_mqtt.RECEIVE_MAXIMUM, 2)])
    slow.send(raw_mqtt.subscribe5(1, [("$share/full/share/full", 1)]))
    slow.expect(SUBACK)
    steady = paho5(broker, "share-room")
    steady.connect()
    steady.subscribe("$share/full/share/full", qos=1)

    pub = paho5(broker, "share-full-pub")
    pub.connect()
    for i in range(20):
        pub.publish("share/full", f"m{i}".encode(), qos=1)
    got_slow = [slow.expect(PUBLISH) for _ in range(2)]
    got_steady = steady.collect(18)
    slow.expect_silence(1.0)
    for m in got_slow:  # acknowledged: nothing was queued behind them
        slow.send(raw_mqtt.ack5(PUBACK, m.pid))
    slow.expect_silence(1.0)
    steady.expect_none(0.5)
    payloads = [m.payload5 for m in got_slow] + [m.payload for m in got_steady]
    assert sorted(payloads) == sorted(f"m{i}".encode() for i in range(20))


def test_shared_member_alone_keeps_its_messages(broker, raw, paho5):
    """With no other connected member, nothing is handed over: the session keeps them."""
    c = raw(broker)
    c.connect("share-alone", level=5, props=[(raw_mqtt.SESSION_EXPIRY, 60)])
    c.send(raw_mqtt.subscribe5(1, [("$share/al/share/al", 1)]))
    c.expect(SUBACK)
    pub = paho5(broker, "share-al-pub")
    pub.connect()
    pub.publish("share/al", b"kept", qos=1)
    first = c.expect(PUBLISH)
    c.close()
    pub.ping()
    back = raw(broker)
    assert back.connect("share-alone", level=5, clean=False, props=[(raw_mqtt.SESSION_EXPIRY, 60)]).session_present
    again = back.expect(PUBLISH)
    assert again.dup and again.payload5 == first.payload5 == b"kept"


def test_shared_subscription_for_mqtt311_clients(broker, paho):
    a = paho(broker, "share311-a")
    a.connect()
    a.subscribe("$share/g311/share/311", qos=1)
    b = paho(broker, "share311-b")
    b.connect()
    b.subscribe("$share/g311/share/311", qos=1)
    for i in range(4):
        a.publish("share/311", f"m{i}".encode(), qos=1)
    got_a = a.drain(1.5)
    got_b = b.drain(0.5)
    assert len(got_a) == 2 and len(got_b) == 2


# ---------------------------------------------------------------- 3.1.1 and 5.0 together

def test_mqtt311_and_mqtt5_clients_on_the_same_topics(broker, paho, paho5):
    v3 = paho(broker, "mix-v311")
    v3.connect()
    v3.subscribe("mix/#", qos=2)
    v5 = paho5(broker, "mix-v5", connect_props={"TopicAliasMaximum": 5})
    v5.connect()
    v5.subscribe("mix/#", qos=2, sub_id=5)

    v5.publish("mix/a", b"from 5", qos=1, props={"UserProperty": [("k", "v")], "MessageExpiryInterval": 60})
    m3 = v3.get()
    assert (m3.topic, m3.payload, m3.qos) == ("mix/a", b"from 5", 1)
    m5 = v5.get()
    assert m5.props["UserProperty"] == [("k", "v")] and m5.props["SubscriptionIdentifier"] == [5]

    v3.publish("mix/b", b"from 3.1.1", qos=2)
    m5 = v5.get()
    assert (m5.payload, m5.qos) == (b"from 3.1.1", 2)
    assert "UserProperty" not in m5.props and "MessageExpiryInterval" not in m5.props
    assert v3.get().payload == b"from 3.1.1"
    v3.publish("mix/b", b"again", qos=0)
    m5 = v5.get()
    assert m5.topic == "" and m5.props["TopicAlias"] >= 1  # the alias set by the message before
