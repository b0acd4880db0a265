"""Malformed packets and protocol violations, sent byte for byte from a raw socket.

MQTT 3.1.1 section 4.8: on a protocol violation the server MUST close the network
connection. Each case also checks that the broker goes on serving a well-behaved
client connected before the bad one, and a new one connected after it.
"""

import socket
import struct

import pytest

import mqtt_raw as m

MAX_PACKET = 64 * 1024

# name -> (send a valid CONNECT first?, the offending bytes)
CASES = {
    # 3.1.0-1: the first packet from the client must be CONNECT.
    "first packet PINGREQ": (False, m.pingreq()),
    "first packet PUBLISH": (False, m.publish("a/b", b"x")),
    "first packet SUBSCRIBE": (False, m.subscribe(1, [("a/b", 0)])),
    # [MQTT-3.1.0-2]: a second CONNECT is a protocol violation.
    "second CONNECT": (True, m.connect("again")),
    # [MQTT-2.2.2-2]: reserved fixed-header flags.
    "SUBSCRIBE flags 0000": (True, m.subscribe(1, [("a/b", 0)], flags=0)),
    "SUBSCRIBE flags 0011": (True, m.subscribe(1, [("a/b", 0)], flags=3)),
    "UNSUBSCRIBE flags 0000": (True, m.unsubscribe(1, ["a/b"], flags=0)),
    "PUBREL flags 0000": (True, m.pubrel(1, flags=0)),
    "PINGREQ flags 0001": (True, m.pingreq(flags=1)),
    # 2.2.1: packet types 0 and 15 are reserved; CONNACK only goes server -> client.
    "packet type 0": (True, m.packet(0, 0, b"")),
    "packet type 15": (True, m.packet(15, 0, b"")),
    "CONNACK from a client": (True, m.packet(m.CONNACK, 0, b"\x00\x00")),
    # 2.2.3: a remaining length of at most 4 bytes.
    "remaining length 5 bytes": (True, b"\x30\xff\xff\xff\xff\x7f"),
    # [MQTT-3.3.1-4]: QoS 3.
    "PUBLISH QoS 3": (True, m.packet(m.PUBLISH, 0b0110, m.encode_str("a/b") + b"\x00\x01x")),
    # [MQTT-3.3.2-2]: no wildcards in a topic name.
    "wildcard + in topic name": (True, m.publish("a/+/c", b"x")),
    "wildcard # in topic name": (True, m.publish("a/#", b"x")),
    # [MQTT-4.7.3-1]: topic names are at least one character long.
    "empty topic name": (True, m.publish("", b"x")),
    # [MQTT-1.5.3-1], [MQTT-1.5.3-2]: well-formed UTF-8, no surrogates, no U+0000.
    "bad UTF-8 in topic": (True, m.publish(b"a/\xc3\x28", b"x")),
    "UTF-16 surrogate in topic": (True, m.publish(b"a/\xed\xa0\x80", b"x")),
    "U+0000 in topic": (True, m.publish(b"a/\x00b", b"x")),
    "bad UTF-8 in topic filter": (True, m.subscribe(1, [(b"a/\xff", 0)])),
    # [MQTT-2.3.1-1]: QoS > 0 needs a non-zero packet identifier.
    "PUBLISH QoS 1 packet id 0": (True, m.publish("a/b", b"x", qos=1, pid=0)),
    "SUBSCRIBE packet id 0": (True, m.subscribe(0, [("a/b", 0)])),
    # [MQTT-3.8.3-3], [MQTT-3.10.3-2]: at least one topic filter.
    "SUBSCRIBE without filters": (True, m.packet(m.SUBSCRIBE, 2, b"\x00\x01")),
    "UNSUBSCRIBE without filters": (True, m.packet(m.UNSUBSCRIBE, 2, b"\x00\x01")),
    # [MQTT-3.8.3-4]: requested QoS 3.
    "SUBSCRIBE requested QoS 3": (True, m.subscribe(1, [("a/b", 3)])),
    # A string whose length runs past the end of the packet.
    "topic length past end of packet": (True, m.packet(m.PUBLISH, 0, b"\x00\x10a/b")),
    # [MQTT-3.1.2-3]: CONNECT reserved flag bit 0.
    "CONNECT reserved flag": (False, m.connect("rsv", flags_override=0x03)),
    # [MQTT-3.1.2-13], [MQTT-3.1.2-14]: will QoS without will flag; will QoS 3.
    "CONNECT will QoS without will flag": (False, m.connect("wq", flags_override=0x02 | 0x08)),
    "CONNECT will QoS 3": (False, m.connect("wq3", will_topic="w", will_qos=3)),
    # [MQTT-3.1.2-22]: a password without a user name.
    "CONNECT password without user name": (False, m.connect("pw", password="secret")),
    # Larger than mqtt.max_packet_size.
    "oversized PUBLISH": (True, m.publish("a/b", b"z" * (MAX_PACKET + 4096))),
    "oversized length in header only": (True, b"\x30" + m.encode_varint(64 * 1024 * 1024)),
}

# Where mosquitto 2.0.11 departs from MQTT 3.1.1, the case is mqttd_only.
MOSQUITTO_DIFFERS = {
    "PINGREQ flags 0001": "mosquitto ignores the reserved flags of PINGREQ and answers",
}


def _param(name):
    marks = [pytest.mark.mqttd_only] if name in MOSQUITTO_DIFFERS else []
    return pytest.param(name, marks=marks, id=name)


@pytest.fixture
def bounded_broker(start_broker):
    return start_broker([f"mqtt.max_packet_size = {MAX_PACKET // 1024}KB"])


def _still_serving(broker, paho, witness, tag):
    """The witness (connected before the bad client) and a new client both work."""
    after = paho(broker, f"after-{tag}")
    after.connect()
    after.subscribe("witness/#", 1)
    after.publish("witness/after", b"after " + tag.encode(), qos=1)
    for c in (witness, after):
        got = c.get(timeout=5)
        assert (got.topic, got.payload) == ("witness/after", b"after " + tag.encode())


@pytest.mark.parametrize("case", [_param(n) for n in CASES])
def test_protocol_violation_closes_connection(bounded_broker, raw, paho, case):
    connect_first, bad = CASES[case]
    witness = paho(bounded_broker, "witness")
    witness.connect()
    witness.subscribe("witness/#", 1)

    r = raw(bounded_broker)
    if connect_first:
        assert r.connect("bad-client").return_code == 0
    try:
        r.send(bad)
    except m.Closed:
        pass  # closed while we were still sending (an oversized packet): fine
    got = r.expect_closed(timeout=5)
    assert got == [], f"no answer expected to a protocol violation, got {got}"
    _still_serving(bounded_broker, paho, witness, "x")


def test_packet_just_under_the_limit_is_accepted(bounded_broker, raw, paho):
    sub = paho(bounded_broker, "big-sub")
    sub.connect()
    sub.subscribe("big/t", 1)
    r = raw(bounded_broker)
    r.connect("big-pub")
    payload = b"y" * (MAX_PACKET - 1024)
    r.publish_qos1("big/t", payload, pid=1)
    got = sub.get(timeout=5)
    assert got.payload == payload
    r.ping()


def test_oversized_publish_is_not_delivered(bounded_broker, raw, paho):
    sub = paho(bounded_broker, "big2-sub")
    sub.connect()
    sub.subscribe("big2/#", 1)
    r = raw(bounded_broker)
    r.connect("big2-pub")
    try:
        r.send(m.publish("big2/t", b"z" * (MAX_PACKET + 1), qos=1, pid=3))
    except m.Closed:
        pass
    assert r.expect_closed(5) == []
    sub.expect_none(0.8)


def test_invalid_topic_filter_refused(broker, raw, paho):
    """A filter with `#` not last or a wildcard not alone in its level ([MQTT-4.7.1-2],
    [MQTT-4.7.1-3]) is never granted: either SUBACK 0x80 or the connection is closed."""
    for i, flt in enumerate(["a/#/b", "a/b#", "a+/b", "#/a"]):
        r = raw(broker)
        r.connect(f"badfilter-{i}")
        r.send(m.subscribe(5, [(flt, 1)]))
        try:
            ack = r.recv(timeout=5)
        except m.Closed:
            continue
        assert ack.type == m.SUBACK and ack.pid == 5, ack
        assert ack.granted == [0x80], f"{flt!r} granted {ack.granted}"
    _still_serving(broker, paho, _witness(broker, paho), "filters")


def test_wrong_protocol_name_not_accepted(broker, raw, paho):
    """[MQTT-3.1.2-1]: a CONNECT whose protocol name is not MQTT (level 4) is not accepted
    as MQTT 3.1.1: the server closes, possibly after a refusing CONNACK."""
    r = raw(broker)
    r.send(m.connect("wrong-name", name="MQTX", level=4))
    got = r.expect_closed(timeout=5)
    assert all(p.type == m.CONNACK and p.return_code != 0 for p in got), got
    _still_serving(broker, paho, _witness(broker, paho), "name")


def test_garbage_then_disconnect_mid_packet(broker, paho):
    """A connection that dies in the middle of a packet does not upset the broker."""
    witness = _witness(broker, paho)
    for data in (b"\x10", b"\x10\x20\x00\x04MQ", m.connect("half")[:-3], b"\xff" * 64):
        with socket.create_connection((broker.host, broker.port), timeout=5) as s:
            s.sendall(data)
    _still_serving(broker, paho, witness, "mid")


def test_many_packets_in_one_segment_and_one_packet_in_many(broker, raw, paho):
    """Framing: several packets in one TCP write, and a packet split into 1-byte writes."""
    witness = _witness(broker, paho)
    r = raw(broker)
    burst = m.connect("framing") + m.subscribe(1, [("frame/t", 1)]) + m.pingreq()
    r.send(burst)
    assert r.expect(m.CONNACK).return_code == 0
    assert r.expect(m.SUBACK).granted == [1]
    r.expect(m.PINGRESP)
    pkt = m.publish("witness/frame", b"dribbled", qos=1, pid=0x0102)
    for i in range(len(pkt)):
        r.sock.sendall(pkt[i:i + 1])
    assert r.expect(m.PUBACK).pid == 0x0102
    assert witness.get().payload == b"dribbled"


def _witness(broker, paho):
    w = paho(broker, "witness")
    w.connect()
    w.subscribe("witness/#", 1)
    return w


def test_mqtt_raw_self_check():
    """The hand-written encoder against byte strings worked out from the specification."""
    assert m.encode_varint(0) == b"\x00"
    assert m.encode_varint(127) == b"\x7f"
    assert m.encode_varint(128) == b"\x80\x01"
    assert m.encode_varint(16383) == b"\xff\x7f"
    assert m.encode_varint(16384) == b"\x80\x80\x01"
    assert m.encode_varint(268_435_455) == b"\xff\xff\xff\x7f"
    # 3.1.1 figure 3.6 style CONNECT: name MQTT, level 4, flags clean, keep-alive 10.
    assert m.connect("id", keepalive=10) == (
        b"\x10\x0e" + b"\x00\x04MQTT" + b"\x04\x02\x00\x0a" + b"\x00\x02id")
    assert m.publish("a/b", b"hi", qos=1, pid=10) == b"\x32\x09\x00\x03a/b\x00\x0ahi"
    assert m.subscribe(1, [("a", 2)]) == b"\x82\x06\x00\x01\x00\x01a\x02"
    assert m.pubrel(5) == b"\x62\x02\x00\x05"
    assert m.pingreq() == b"\xc0\x00"
    assert m.disconnect() == b"\xe0\x00"
    assert struct.unpack("!H", m.encode_str("\u00e9")[:2])[0] == 2


def test_oversized_publish_from_paho_disconnects_only_that_client(bounded_broker, paho, mqttjs):
    """The same limit hit by real clients: paho's connection is closed, the MQTT.js
    subscriber next to it keeps being served."""
    js = mqttjs(bounded_broker, clientId="big-js")
    js.connect()
    js.subscribe("bigp/#", 1)
    big = paho(bounded_broker, "big-paho")
    big.connect()
    big.publish("bigp/t", b"q" * (MAX_PACKET * 2), qos=0, wait=False)
    assert big.wait_disconnected(5), "the broker must close the oversized client's connection"
    js.expect_none(0.5)
    js.publish("bigp/t", "small", qos=1)
    assert js.get().payload == b"small"
