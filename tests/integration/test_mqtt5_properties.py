"""MQTT 5 properties passed through and asked for: User Properties, Payload Format
Indicator (checked when 1), Content Type, Response Topic and Correlation Data;
Request Response Information; Request Problem Information and reason strings; AUTH."""

import pytest

import mqtt_raw as raw_mqtt
from mqtt_raw import CONNACK, DISCONNECT, PUBACK, PUBCOMP, PUBREC, PUBREL, SUBACK

pytestmark = pytest.mark.mqttd_only


def test_publish_properties_pass_through_at_every_qos(broker, paho5):
    c = paho5(broker, "props-all")
    c.connect()
    c.subscribe("props/all", qos=2)
    props = {"UserProperty": [("a", "2"), ("c", "3"), ("a", "again")], "PayloadFormatIndicator": 1,
             "ContentType": "application/json", "ResponseTopic": "props/reply", "CorrelationData": b"\x00\x01id"}
    for qos in range(3):
        c.publish("props/all", b'{"qos": %d}' % qos, qos=qos, props=props)
    got = c.collect(3)
    assert sorted(m.qos for m in got) == [0, 1, 2]
    for m in got:
        assert m.props["UserProperty"] == [("a", "2"), ("c", "3"), ("a", "again")]  # order kept
        assert m.props["PayloadFormatIndicator"] == 1
        assert m.props["ContentType"] == "application/json"
        assert m.props["ResponseTopic"] == "props/reply"
        assert m.props["CorrelationData"] == b"\x00\x01id"


def test_retained_message_keeps_its_properties(broker, paho5):
    pub = paho5(broker, "props-ret-pub")
    pub.connect()
    pub.publish("props/ret", b"kept", qos=1, retain=True, props={"UserProperty": [("k", "v")], "ContentType": "t"})
    sub = paho5(broker, "props-ret-sub")
    sub.connect()
    sub.subscribe("props/ret", qos=1)
    m = sub.get()
    assert m.retain and m.props["UserProperty"] == [("k", "v")] and m.props["ContentType"] == "t"


def test_request_response(broker, paho5):
    requester = paho5(broker, "props-requester", connect_props={"RequestResponseInformation": 1})
    requester.connect()
    base = requester.connack_props["ResponseInformation"]
    assert base == "response/props-requester"
    reply_topic = base + "/answers"
    requester.subscribe(reply_topic, qos=1)

    responder = paho5(broker, "props-responder")
    responder.connect()
    assert "ResponseInformation" not in responder.connack_props
    responder.subscribe("props/service", qos=1)

    requester.publish("props/service", b"question", qos=1,
                      props={"ResponseTopic": reply_topic, "CorrelationData": b"req-42"})
    req = responder.get()
    assert req.props["ResponseTopic"] == reply_topic and req.props["CorrelationData"] == b"req-42"
    responder.publish(req.props["ResponseTopic"], b"answer", qos=1,
                      props={"CorrelationData": req.props["CorrelationData"]})
    resp = requester.get()
    assert resp.payload == b"answer" and resp.props["CorrelationData"] == b"req-42"


def test_response_information_never_exceeds_the_client_maximum(broker, raw):
    roomy = raw(broker)
    ack = roomy.connect("props-rri-roomy", level=5, props=[(raw_mqtt.REQUEST_RESPONSE_INFO, 1)])
    assert ack.props[raw_mqtt.RESPONSE_INFO] == ["response/props-rri-roomy"]
    tight = raw(broker)
    ack = tight.connect("props-rri-tight-" + "x" * 40, level=5,
                        props=[(raw_mqtt.REQUEST_RESPONSE_INFO, 1), (raw_mqtt.MAXIMUM_PACKET_SIZE, 40)])
    assert ack.reason == 0 and raw_mqtt.RESPONSE_INFO not in ack.props


def test_payload_format_indicator_checks_utf8(broker, raw, paho5):
    sub = paho5(broker, "props-pfi-sub")
    sub.connect()
    sub.subscribe("props/pfi", qos=2)
    c = raw(broker)
    c.connect("props-pfi", level=5)
    # Well-formed UTF-8 (U+0000 included) passes.
    c.send(raw_mqtt.publish("props/pfi", "ok é\0".encode(), qos=1, pid=1, props=[(raw_mqtt.PFI, 1)]))
    assert c.expect(PUBACK).reason == 0
    assert sub.get().payload == "ok é\0".encode()
    # Not UTF-8: refused in the ack, never delivered.
    c.send(raw_mqtt.publish("props/pfi", b"\xc3\x28", qos=1, pid=2, props=[(raw_mqtt.PFI, 1)]))
    ack = c.expect(PUBACK)
    assert ack.pid == 2 and ack.reason == 0x99 and ack.props[raw_mqtt.REASON_STRING]
    c.send(raw_mqtt.publish("props/pfi", b"\xed\xa0\x80", qos=2, pid=3, props=[(raw_mqtt.PFI, 1)]))
    rec = c.expect(PUBREC)
    assert rec.pid == 3 and rec.reason == 0x99
    # The same bytes without the indicator are just bytes.
    c.send(raw_mqtt.publish("props/pfi", b"\xc3\x28", qos=1, pid=4, props=[]))
    assert c.expect(PUBACK).reason == 0
    assert sub.get().payload == b"\xc3\x28"
    sub.expect_none(0.5)
    # QoS 0 has no ack to refuse with: DISCONNECT 0x99.
    c.send(raw_mqtt.publish("props/pfi", b"\xff", qos=0, props=[(raw_mqtt.PFI, 1)]))
    assert [p.reason for p in c.expect_closed() if p.type == DISCONNECT] == [0x99]
    sub.expect_none(0.5)


def test_payload_format_invalid_with_paho(broker, paho5):
    c = paho5(broker, "props-pfi-paho")
    c.connect()
    c.subscribe("props/pfi-paho", qos=1)
    c.publish("props/pfi-paho", b"\xff\xfe", qos=1, props={"PayloadFormatIndicator": 1})  # acked (0x99)
    c.publish("props/pfi-paho", "ünïcode".encode(), qos=1, props={"PayloadFormatIndicator": 1})
    got = c.collect(1)
    assert got[0].payload == "ünïcode".encode()
    c.expect_none(0.5)


def test_reason_strings_follow_request_problem_information(broker, raw):
    chatty = raw(broker)
    chatty.connect("props-rpi-1", level=5)
    chatty.send(raw_mqtt.ack5(PUBREL, 77))  # an id that is not awaiting PUBREL
    comp = chatty.expect(PUBCOMP)
    assert comp.reason == 0x92 and comp.props[raw_mqtt.REASON_STRING]
    chatty.send(raw_mqtt.subscribe5(1, [("$share/g/t", 0x04 | 1)]))  # No Local on a shared subscription
    assert [p.reason for p in chatty.expect_closed() if p.type == DISCONNECT] == [0x82]

    quiet = raw(broker)
    ack = quiet.connect("props-rpi-0", level=5, props=[(raw_mqtt.REQUEST_PROBLEM_INFO, 0)])
    assert ack.reason == 0
    quiet.send(raw_mqtt.ack5(PUBREL, 77))
    comp = quiet.expect(PUBCOMP)
    assert comp.reason == 0x92 and raw_mqtt.REASON_STRING not in comp.props
    quiet.send(raw_mqtt.publish("props/q", b"\xff", qos=1, pid=5, props=[(raw_mqtt.PFI, 1)]))
    ack = quiet.expect(PUBACK)
    assert ack.reason == 0x99 and not ack.props
    quiet.send(raw_mqtt.subscribe5(2, [("bad/#/filter", 1)]))
    # A malformed filter is a protocol error; the DISCONNECT may still say why.
    got = quiet.expect_closed()
    d = [p for p in got if p.type == DISCONNECT]
    assert d and d[0].reason in (0x81, 0x82, 0x8F)


def test_refused_subscription_explains_itself_unless_asked_not_to(start_broker, raw):
    b = start_broker(["mqtt.wildcard_subscription = false"])
    c = raw(b)
    c.connect("props-suback-rs", level=5)
    c.send(raw_mqtt.subscribe5(1, [("w/+", 1), ("w/x", 1)]))
    ack = c.expect(SUBACK)
    assert ack.reasons5 == [0xA2, 1] and ack.props[raw_mqtt.REASON_STRING]
    q = raw(b)
    q.connect("props-suback-quiet", level=5, props=[(raw_mqtt.REQUEST_PROBLEM_INFO, 0)])
    q.send(raw_mqtt.subscribe5(1, [("w/+", 1)]))
    ack = q.expect(SUBACK)
    assert ack.reasons5 == [0xA2] and not ack.props


def test_connect_with_an_authentication_method_is_refused(broker, raw):
    c = raw(broker)
    ack = c.connect("props-auth", level=5, props=[(raw_mqtt.AUTH_METHOD, "SCRAM-SHA-1"),
                                                  (raw_mqtt.AUTH_DATA, b"client-first")])
    assert ack.type == CONNACK and ack.reason == 0x8C
    c.expect_closed()


def test_auth_without_enhanced_authentication_is_a_protocol_error(broker, raw):
    c = raw(broker)
    assert c.connect("props-auth-late", level=5).reason == 0
    c.send(raw_mqtt.auth(0x19, [(raw_mqtt.AUTH_METHOD, "SCRAM-SHA-1")]))  # re-authenticate
    assert [p.reason for p in c.expect_closed() if p.type == DISCONNECT] == [0x82]


def test_auth_before_connect_closes_the_connection(broker, raw):
    c = raw(broker)
    c.send(raw_mqtt.auth(0x18, [(raw_mqtt.AUTH_METHOD, "SCRAM-SHA-1")]))
    assert c.expect_closed() == []
