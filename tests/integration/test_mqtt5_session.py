"""MQTT 5 sessions with paho in MQTT 5 mode: Clean Start, Session Expiry Interval (at
CONNECT and at DISCONNECT), Assigned Client Identifier, Server Keep Alive, Message
Expiry Interval, and wills: Will Delay Interval, will properties, and the will on
takeover."""

import time

import pytest

import mqtt_raw as raw_mqtt
from mqtt_raw import CONNACK, DISCONNECT, PUBLISH

pytestmark = pytest.mark.mqttd_only


def test_clean_start_and_session_expiry_at_connect(broker, paho5):
    sub = paho5(broker, "s5-expiry", clean_start=True, connect_props={"SessionExpiryInterval": 60})
    assert sub.connect() == (0, False)
    sub.subscribe("s5/expiry", qos=1)
    sub.disconnect()

    pub = paho5(broker, "s5-expiry-pub")
    pub.connect()
    pub.publish("s5/expiry", b"while away", qos=1)

    back = paho5(broker, "s5-expiry", clean_start=False, connect_props={"SessionExpiryInterval": 60})
    assert back.connect() == (0, True)
    assert back.get().payload == b"while away"
    back.disconnect()

    # Clean Start discards the session (and its subscription).
    fresh = paho5(broker, "s5-expiry", clean_start=True)
    assert fresh.connect() == (0, False)
    pub.publish("s5/expiry", b"nobody", qos=1)
    fresh.expect_none(1.0)


def test_session_expiry_capped_by_the_broker_is_announced(start_broker, paho5):
    b = start_broker(["mqtt.session_expiry_interval = 1m"])
    capped = paho5(b, "s5-capped", connect_props={"SessionExpiryInterval": 0xFFFFFFFF})
    capped.connect()
    assert capped.connack_props["SessionExpiryInterval"] == 60
    within = paho5(b, "s5-within", connect_props={"SessionExpiryInterval": 30})
    within.connect()
    assert "SessionExpiryInterval" not in within.connack_props  # the client's own stands


def test_session_expiry_zero_ends_the_session_at_disconnect(broker, paho5):
    c = paho5(broker, "s5-zero", connect_props={"SessionExpiryInterval": 0})
    c.connect()
    c.subscribe("s5/zero", qos=1)
    c.disconnect()
    again = paho5(broker, "s5-zero", clean_start=False)
    assert again.connect() == (0, False)


def test_session_expires_after_its_interval(broker, paho5):
    c = paho5(broker, "s5-short", connect_props={"SessionExpiryInterval": 2})
    c.connect()
    c.subscribe("s5/short", qos=1)
    c.disconnect()
    still = paho5(broker, "s5-short", clean_start=False, connect_props={"SessionExpiryInterval": 2})
    assert still.connect() == (0, True)
    still.disconnect()
    time.sleep(4.0)  # past the 2 s interval, with room for the broker's sweep
    gone = paho5(broker, "s5-short", clean_start=False)
    assert gone.connect() == (0, False)


def test_session_expiry_changed_at_disconnect(broker, paho5):
    c = paho5(broker, "s5-change", connect_props={"SessionExpiryInterval": 1})
    c.connect()
    c.subscribe("s5/change", qos=1)
    c.disconnect(props={"SessionExpiryInterval": 60})  # extended at DISCONNECT
    time.sleep(2.5)
    again = paho5(broker, "s5-change", clean_start=False, connect_props={"SessionExpiryInterval": 1})
    assert again.connect() == (0, True)
    again.disconnect(props={"SessionExpiryInterval": 0})  # ended at DISCONNECT
    last = paho5(broker, "s5-change", clean_start=False)
    assert last.connect() == (0, False)


def test_session_expiry_cannot_be_set_at_disconnect_when_it_was_zero(broker, raw):
    """[MQTT-3.14.2-2]: 0 at CONNECT, non-zero at DISCONNECT is a Protocol Error."""
    c = raw(broker)
    assert c.connect("s5-zero-then", level=5).reason == 0
    c.send(raw_mqtt.disconnect5(0, [(raw_mqtt.SESSION_EXPIRY, 30)]))
    got = c.expect_closed()
    assert [p.reason for p in got if p.type == DISCONNECT] == [0x82]


def test_assigned_client_identifier(broker, paho5):
    c = paho5(broker, "")
    assert c.connect() == (0, False)
    assigned = c.connack_props.get("AssignedClientIdentifier")
    assert assigned, c.connack_props
    other = paho5(broker, "")
    other.connect()
    assert other.connack_props["AssignedClientIdentifier"] != assigned
    # The assigned id is the session's: a client may use it.
    c.subscribe("s5/assigned", qos=1)
    other.publish("s5/assigned", b"to the assigned id", qos=1)
    assert c.get().payload == b"to the assigned id"


def test_server_keep_alive(start_broker, paho5, raw):
    b = start_broker(["mqtt.server_keepalive = 2", "mqtt.keepalive_backoff = 1.0"])
    c = paho5(b, "s5-ska", keepalive=120)
    c.connect()
    assert c.connack_props.get("ServerKeepAlive") == 2
    # The broker holds a client to its own keep-alive: silent for 2 x 2 s, it is closed
    # with 0x8D, whatever the client asked for.
    silent = raw(b)
    ack = silent.connect("s5-ska-raw", level=5, keepalive=120)
    assert ack.props[raw_mqtt.SERVER_KEEP_ALIVE] == [2]
    start = time.monotonic()
    got = silent.expect_closed(10.0)
    assert [p.reason for p in got if p.type == DISCONNECT] == [0x8D]
    assert 3.0 <= time.monotonic() - start <= 8.0


def test_no_server_keep_alive_by_default(broker, paho5):
    c = paho5(broker, "s5-no-ska", keepalive=30)
    c.connect()
    assert "ServerKeepAlive" not in c.connack_props


def test_message_expiry_remaining_time_and_offline_queue(broker, paho5):
    sub = paho5(broker, "s5-msgexp", connect_props={"SessionExpiryInterval": 60})
    sub.connect()
    sub.subscribe("s5/msgexp", qos=1)
    sub.disconnect()

    pub = paho5(broker, "s5-msgexp-pub")
    pub.connect()
    pub.publish("s5/msgexp", b"short", qos=1, props={"MessageExpiryInterval": 1})
    pub.publish("s5/msgexp", b"long", qos=1, props={"MessageExpiryInterval": 60})
    pub.publish("s5/msgexp", b"forever", qos=1)
    time.sleep(2.5)  # "short" expires in the offline queue

    back = paho5(broker, "s5-msgexp", clean_start=False, connect_props={"SessionExpiryInterval": 60})
    assert back.connect() == (0, True)
    got = back.collect(2)
    assert [m.payload for m in got] == [b"long", b"forever"]
    # The remaining lifetime is sent, not the original one.
    assert 50 <= got[0].props["MessageExpiryInterval"] < 60
    assert "MessageExpiryInterval" not in got[1].props
    back.expect_none(1.0)


def test_expired_retained_message_is_not_sent(broker, paho5):
    pub = paho5(broker, "s5-retexp-pub")
    pub.connect()
    pub.publish("s5/retexp", b"brief", qos=1, retain=True, props={"MessageExpiryInterval": 1})
    time.sleep(2.5)
    sub = paho5(broker, "s5-retexp-sub")
    sub.connect()
    sub.subscribe("s5/retexp", qos=1)
    sub.expect_none(1.0)


# ---------------------------------------------------------------- wills

WILL_PROPS = {
    "PayloadFormatIndicator": 1,
    "ContentType": "text/plain",
    "ResponseTopic": "s5/will/reply",
    "CorrelationData": b"corr-1",
    "UserProperty": [("who", "will-client")],
    "MessageExpiryInterval": 300,
}


def test_will_properties_are_passed_on(broker, paho5):
    watcher = paho5(broker, "s5-will-watch")
    watcher.connect()
    watcher.subscribe("s5/will", qos=1)
    c = paho5(broker, "s5-will-props", will={"topic": "s5/will", "payload": b"gone", "qos": 1},
              will_props=WILL_PROPS)
    c.connect()
    c.drop()
    m = watcher.get(5.0)
    assert m.payload == b"gone"
    assert m.props["PayloadFormatIndicator"] == 1
    assert m.props["ContentType"] == "text/plain"
    assert m.props["ResponseTopic"] == "s5/will/reply"
    assert m.props["CorrelationData"] == b"corr-1"
    assert m.props["UserProperty"] == [("who", "will-client")]
    assert 290 <= m.props["MessageExpiryInterval"] <= 300
    assert "WillDelayInterval" not in m.props


def test_will_delay_interval(broker, paho5):
    watcher = paho5(broker, "s5-wd-watch")
    watcher.connect()
    watcher.subscribe("s5/wd", qos=1)
    c = paho5(broker, "s5-wd", will={"topic": "s5/wd", "payload": b"late"}, will_props={"WillDelayInterval": 3},
              connect_props={"SessionExpiryInterval": 30})
    c.connect()
    c.drop()
    start = time.monotonic()
    watcher.expect_none(2.0)
    m = watcher.get(6.0)
    assert m.payload == b"late"
    assert 2.5 <= time.monotonic() - start <= 6.5


def test_will_delay_longer_than_session_expiry_publishes_at_session_end(broker, paho5):
    watcher = paho5(broker, "s5-wd-se-watch")
    watcher.connect()
    watcher.subscribe("s5/wd-se", qos=1)
    c = paho5(broker, "s5-wd-se", will={"topic": "s5/wd-se", "payload": b"session over"},
              will_props={"WillDelayInterval": 30}, connect_props={"SessionExpiryInterval": 2})
    c.connect()
    c.drop()
    start = time.monotonic()
    assert watcher.get(8.0).payload == b"session over"
    assert 1.5 <= time.monotonic() - start <= 6.0


def test_will_delay_with_session_ending_at_disconnect_publishes_at_once(broker, paho5):
    watcher = paho5(broker, "s5-wd-now-watch")
    watcher.connect()
    watcher.subscribe("s5/wd-now", qos=1)
    c = paho5(broker, "s5-wd-now", will={"topic": "s5/wd-now", "payload": b"now"},
              will_props={"WillDelayInterval": 30})  # Session Expiry Interval 0
    c.connect()
    c.drop()
    assert watcher.get(3.0).payload == b"now"


def test_will_delay_cancelled_by_reconnecting_to_the_session(broker, paho5):
    watcher = paho5(broker, "s5-wd-cancel-watch")
    watcher.connect()
    watcher.subscribe("s5/wd-cancel", qos=1)
    c = paho5(broker, "s5-wd-cancel", will={"topic": "s5/wd-cancel", "payload": b"never"},
              will_props={"WillDelayInterval": 3}, connect_props={"SessionExpiryInterval": 60})
    c.connect()
    c.drop()
    back = paho5(broker, "s5-wd-cancel", clean_start=False, connect_props={"SessionExpiryInterval": 60})
    assert back.connect() == (0, True)
    watcher.expect_none(5.0)  # well past the delay
    back.disconnect()
    watcher.expect_none(1.0)


def test_will_delay_and_a_clean_start_reconnect_publish_the_will(broker, paho5):
    """Clean Start ends the old session, so its will is due (spec 3.1.3.2.2)."""
    watcher = paho5(broker, "s5-wd-clean-watch")
    watcher.connect()
    watcher.subscribe("s5/wd-clean", qos=1)
    c = paho5(broker, "s5-wd-clean", will={"topic": "s5/wd-clean", "payload": b"old session"},
              will_props={"WillDelayInterval": 30}, connect_props={"SessionExpiryInterval": 60})
    c.connect()
    c.drop()
    watcher.expect_none(1.0)
    fresh = paho5(broker, "s5-wd-clean", clean_start=True)
    fresh.connect()
    assert watcher.get(3.0).payload == b"old session"


def test_takeover_of_a_session_with_will_delay_keeps_the_will_back(broker, raw, paho5):
    """The new connection continues the session: the old connection's delayed will is
    not published (spec 3.1.2.5, 3.1.3.2.2), and the old one is told 0x8E."""
    watcher = paho5(broker, "s5-to-watch")
    watcher.connect()
    watcher.subscribe("s5/takeover", qos=1)
    old = raw(broker)
    assert old.connect("s5-takeover", level=5, clean=True, props=[(raw_mqtt.SESSION_EXPIRY, 60)],
                       will_topic="s5/takeover", will_payload=b"old",
                       will_props=[(raw_mqtt.WILL_DELAY, 2)]).reason == 0
    new = raw(broker)
    ack = new.connect("s5-takeover", level=5, clean=False, props=[(raw_mqtt.SESSION_EXPIRY, 60)])
    assert ack.reason == 0 and ack.session_present
    got = old.expect_closed()
    assert [p.reason for p in got if p.type == DISCONNECT] == [0x8E]
    watcher.expect_none(4.0)
    new.ping()


def test_clean_start_takeover_publishes_a_delayed_will(broker, raw, paho5):
    """A Clean Start takeover ends the session, so even a delayed will is due at once."""
    watcher = paho5(broker, "s5-tocs-watch")
    watcher.connect()
    watcher.subscribe("s5/takeover-clean", qos=1)
    old = raw(broker)
    old.connect("s5-takeover-clean", level=5, props=[(raw_mqtt.SESSION_EXPIRY, 60)],
                will_topic="s5/takeover-clean", will_payload=b"ended", will_props=[(raw_mqtt.WILL_DELAY, 30)])
    new = raw(broker)
    assert not new.connect("s5-takeover-clean", level=5, clean=True).session_present
    assert [p.reason for p in old.expect_closed() if p.type == DISCONNECT] == [0x8E]
    assert watcher.get(3.0).payload == b"ended"


def test_takeover_without_will_delay_publishes_the_will(broker, raw, paho5):
    watcher = paho5(broker, "s5-to0-watch")
    watcher.connect()
    watcher.subscribe("s5/takeover0", qos=1)
    old = raw(broker)
    old.connect("s5-takeover0", level=5, props=[(raw_mqtt.SESSION_EXPIRY, 60)],
                will_topic="s5/takeover0", will_payload=b"taken over")
    new = raw(broker)
    new.connect("s5-takeover0", level=5, clean=False, props=[(raw_mqtt.SESSION_EXPIRY, 60)])
    assert watcher.get(3.0).payload == b"taken over"
    old.expect_closed()


def test_disconnect_with_will_message(broker, paho5):
    watcher = paho5(broker, "s5-dww-watch")
    watcher.connect()
    watcher.subscribe("s5/dww", qos=1)
    c = paho5(broker, "s5-dww", will={"topic": "s5/dww", "payload": b"asked for"})
    c.connect()
    c.disconnect(reason=0x04)
    assert watcher.get(3.0).payload == b"asked for"
    d = paho5(broker, "s5-dww2", will={"topic": "s5/dww", "payload": b"not this"})
    d.connect()
    d.disconnect()
    watcher.expect_none(1.0)


def test_disconnect_with_an_error_reason_keeps_the_will(broker, raw, paho5):
    """[MQTT-3.1.2-10]: only DISCONNECT 0x00 discards the will."""
    watcher = paho5(broker, "s5-dwe-watch")
    watcher.connect()
    watcher.subscribe("s5/dwe", qos=1)
    c = raw(broker)
    c.connect("s5-dwe", level=5, will_topic="s5/dwe", will_payload=b"client error")
    c.send(raw_mqtt.disconnect5(0x80))
    c.expect_closed()
    assert watcher.get(3.0).payload == b"client error"


def test_will_with_invalid_utf8_and_payload_format_indicator_is_refused(broker, raw):
    c = raw(broker)
    ack = c.connect("s5-will-pfi", level=5, will_topic="s5/will-pfi", will_payload=b"\xff\xfe",
                    will_props=[(raw_mqtt.PFI, 1)])
    assert ack.type == CONNACK and ack.reason == 0x99
    c.expect_closed()


def test_shutdown_tells_mqtt5_clients(start_broker, raw):
    b = start_broker()
    c = raw(b)
    c.connect("s5-shutdown", level=5)
    b.stop()
    got = c.expect_closed()
    assert [p.reason for p in got if p.type == DISCONNECT] == [0x8B]
    assert not [p for p in got if p.type == PUBLISH]


@pytest.mark.mqttd_only
def test_shared_subscription_keeps_a_sent_qos2_message_with_its_member(broker, raw):
    """A member of a shared subscription received a QoS 2 PUBLISH and left before
    PUBREC: the message stays with it [MQTT-4.3.3] (it may have it; a second member
    getting it too would be a duplicate QoS 2 forbids) and comes again, with DUP, when
    it returns; a QoS 1 message it had not acknowledged goes to the other member."""
    expiry = [(raw_mqtt.SESSION_EXPIRY, 300)]
    first = raw(broker)
    first.connect("share-q2-a", level=5, clean=False, props=expiry)
    first.send(raw_mqtt.subscribe5(1, [("$share/g/q2/t", 2)]))
    first.expect(raw_mqtt.SUBACK)
    pub = raw(broker)
    pub.connect("share-q2-pub", level=5, props=[])
    pub.send(raw_mqtt.publish("q2/t", "exactly-once", qos=2, pid=1, props=[]))
    pub.expect(raw_mqtt.PUBREC)
    got = first.expect(PUBLISH)
    assert (got.qos, got.payload5) == (2, b"exactly-once")
    pub.send(raw_mqtt.publish("q2/t", "at-least-once", qos=1, pid=2, props=[]))
    pub.expect(raw_mqtt.PUBACK)
    assert first.expect(PUBLISH).payload5 == b"at-least-once"

    second = raw(broker)
    second.connect("share-q2-b", level=5, props=[])
    second.send(raw_mqtt.subscribe5(1, [("$share/g/q2/t", 2)]))
    second.expect(raw_mqtt.SUBACK)
    first.close()  # neither PUBREC nor PUBACK sent
    moved = second.expect(PUBLISH, 5)
    assert moved.payload5 == b"at-least-once"
    second.send(raw_mqtt.ack5(raw_mqtt.PUBACK, moved.pid))
    second.expect_silence(1.0)

    back = raw(broker)
    ack = back.connect("share-q2-a", level=5, clean=False, props=expiry)
    assert ack.session_present
    again = back.expect(PUBLISH)
    assert (again.qos, again.dup, again.payload5) == (2, True, b"exactly-once")
