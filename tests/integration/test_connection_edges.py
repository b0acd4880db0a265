"""The protocol edges the connection's rules decide, against the real binary: wrong
acknowledgements, a CONNACK that must fit the client's Maximum Packet Size, the
keep-alive cap, the byte bound of inbound topic aliases, closing so that the client can
read why, and takeovers racing SUBSCRIBE and deliveries."""

import socket
import struct
import threading
import time

import pytest

import mqtt_raw as raw_mqtt
from conftest import rss_kib
from mqtt_raw import CONNACK, DISCONNECT, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL

pytestmark = pytest.mark.mqttd_only


def read_until_closed(s: socket.socket) -> bytes:
    """What arrives until the broker closes (FIN or reset)."""
    data = b""
    try:
        while chunk := s.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def wire_size(p: raw_mqtt.Packet) -> int:
    return 1 + len(raw_mqtt.encode_varint(len(p.body))) + len(p.body)


# ----------------------------------------------------------------- wrong acknowledgements

WRONG_ACKS = {
    # name: (QoS of the delivery, the ack the client answers with)
    "PUBREC for QoS 1": (1, PUBREC),
    "PUBCOMP for QoS 1": (1, PUBCOMP),
    "PUBACK for QoS 2": (2, PUBACK),
    "PUBCOMP before PUBREL": (2, PUBCOMP),
}


@pytest.mark.parametrize("level", [4, 5])
@pytest.mark.parametrize("case", list(WRONG_ACKS))
def test_a_wrong_acknowledgement_closes_the_connection(broker, raw, paho, case, level):
    """[MQTT-4.3.2, 4.3.3]: an ack of the wrong kind for the message's QoS, or out of the
    exchange's order, is a Protocol Error: 5.0 gets DISCONNECT 0x82, 3.1.1 is closed."""
    qos, ack = WRONG_ACKS[case]
    sub = raw(broker)
    sub.connect(f"edge-ack-{qos}-{ack}-{level}", level=level)
    if level == 5:
        sub.send(raw_mqtt.subscribe5(1, [("edge/ack", qos)]))
    else:
        sub.send(raw_mqtt.subscribe(1, [("edge/ack", qos)]))
    sub.expect(raw_mqtt.SUBACK)
    pub = paho(broker, f"edge-ack-pub-{qos}-{ack}-{level}")
    pub.connect()
    pub.publish("edge/ack", b"m", qos=qos)
    p = sub.expect(PUBLISH)
    assert p.qos == qos
    # An ack for an id nobody sent is ignored: the connection stays.
    answer = (lambda pid: raw_mqtt.ack5(ack, pid)) if level == 5 else (lambda pid: raw_mqtt.packet(ack, 0, struct.pack("!H", pid)))
    sub.send(answer(p.pid + 100) + raw_mqtt.pingreq())
    reply = sub.recv()
    if ack == PUBREC:  # answered, as an exchange the broker already finished [MQTT-4.3.3]
        assert reply.type == PUBREL and reply.pid == p.pid + 100
        reply = sub.recv()
    assert reply.type == raw_mqtt.PINGRESP, reply
    sub.send(answer(p.pid))
    got = sub.expect_closed()
    if level == 5:
        assert [x.reason for x in got if x.type == DISCONNECT] == [0x82]
    else:
        assert not got


def test_pubrel_for_an_unknown_id_is_answered_not_fatal(broker, raw):
    """A PUBREL the session does not know gets PUBCOMP (5.0: reason 0x92) [MQTT-4.3.3]:
    after a reconnect a client may release what the broker already completed."""
    v5 = raw(broker)
    v5.connect("edge-rel-5", level=5)
    v5.send(raw_mqtt.ack5(PUBREL, 7))
    comp = v5.expect(PUBCOMP)
    assert comp.pid == 7 and comp.reason == 0x92
    v311 = raw(broker)
    v311.connect("edge-rel-4")
    v311.send(raw_mqtt.pubrel(7))
    assert v311.expect(PUBCOMP).pid == 7
    v311.ping()


@pytest.mark.parametrize("second", ["valid", "unsupported level"])
def test_a_second_connect_is_a_protocol_error(broker, raw, second):
    """[MQTT-3.1.0-2], even for a CONNECT that would be refused for its protocol level:
    "Unsupported Protocol Version" answers a CONNECT, it is no DISCONNECT reason."""
    c = raw(broker)
    c.connect(f"edge-second-{second[0]}", level=5)
    c.send(raw_mqtt.connect("edge-second", level=5 if second == "valid" else 9))
    assert [p.reason for p in c.expect_closed() if p.type == DISCONNECT] == [0x82]


# ----------------------------------------------------------------- CONNACK and Maximum Packet Size

def test_the_connack_fits_the_client_maximum_packet_size(broker, raw):
    """[MQTT-3.1.2-24]: optional properties are left out so that the CONNACK fits; when
    not even the smallest one does, the connection is closed without one, and no session
    is opened for it."""
    ask = [(raw_mqtt.REQUEST_RESPONSE_INFO, 1), (raw_mqtt.SESSION_EXPIRY, 60)]
    full = raw(broker).connect("edge-connack", level=5, props=ask)
    assert full.props.get(raw_mqtt.RESPONSE_INFO), full.props
    size = wire_size(full)

    fitted = raw(broker).connect("edge-connack", level=5, props=ask + [(raw_mqtt.MAXIMUM_PACKET_SIZE, size - 1)])
    assert fitted.return_code == 0
    assert raw_mqtt.RESPONSE_INFO not in fitted.props
    assert wire_size(fitted) <= size - 1
    assert fitted.props[raw_mqtt.RECEIVE_MAXIMUM], "what limits the client stays"

    tiny = raw(broker)
    tiny.send(raw_mqtt.connect("edge-connack-tiny", level=5, clean=False,
                               props=[(raw_mqtt.SESSION_EXPIRY, 60), (raw_mqtt.MAXIMUM_PACKET_SIZE, 5)]))
    assert tiny.expect_closed() == [], "nothing may be sent that is over the client's maximum"
    again = raw(broker).connect("edge-connack-tiny", level=5, clean=False, props=[(raw_mqtt.SESSION_EXPIRY, 60)])
    assert again.return_code == 0 and not again.session_present


# ----------------------------------------------------------------- keep-alive cap

def test_max_keepalive_caps_long_keepalives_and_keeps_short_ones(start_broker, raw, paho5):
    """mqtt.max_keepalive: a 5.0 client asking for more, or for 0, is told Server Keep
    Alive = the cap [MQTT-3.2.2-21]; one asking for less keeps its own; a 3.1.1 client
    asking for more or for 0 cannot be told, and is refused (CONNACK 2)."""
    b = start_broker(["mqtt.max_keepalive = 30"])
    long_one = paho5(b, "edge-ka-long", keepalive=120)
    long_one.connect()
    assert long_one.connack_props.get("ServerKeepAlive") == 30
    assert raw(b).connect("edge-ka-zero", level=5, keepalive=0).props[raw_mqtt.SERVER_KEEP_ALIVE] == [30]
    assert raw_mqtt.SERVER_KEEP_ALIVE not in raw(b).connect("edge-ka-30", level=5, keepalive=30).props

    short = raw(b)
    ack = short.connect("edge-ka-short", level=5, keepalive=2)
    assert raw_mqtt.SERVER_KEEP_ALIVE not in ack.props
    start = time.monotonic()
    got = short.expect_closed(10.0)
    assert [p.reason for p in got if p.type == DISCONNECT] == [0x8D]
    assert 2.0 <= time.monotonic() - start <= 6.0, "watched for its own 2 s, not the cap's 30 s"

    assert raw(b).connect("edge-ka-311-long", keepalive=120).return_code == 2
    assert raw(b).connect("edge-ka-311-zero", keepalive=0).return_code == 2
    assert raw(b).connect("edge-ka-311-ok", keepalive=30).return_code == 0


# ----------------------------------------------------------------- inbound topic aliases

def test_inbound_topic_aliases_are_bounded_in_bytes(start_broker, raw, paho5):
    """Even with 65,535 aliases allowed, what a client's aliases pin is bounded (64 KiB of
    topic): past it, DISCONNECT 0x97. Remapping an alias frees what it held."""
    b = start_broker(["mqtt.max_topic_alias = 65535"])
    topic = lambda i: f"edge/alias/{i:05d}/" + "x" * 1000  # noqa: E731

    remapper = raw(b)
    remapper.connect("edge-alias-remap", level=5)
    for i in range(300):  # 300 KB through one alias: never more than one topic held
        remapper.send(raw_mqtt.publish(topic(i), b"", props=[(raw_mqtt.TOPIC_ALIAS, 1)]))
    remapper.ping()

    before = rss_kib(b.pid)
    hoarder = raw(b)
    hoarder.connect("edge-alias-hoard", level=5)
    sent = 0
    try:
        for alias in range(1, 65536):
            hoarder.send(raw_mqtt.publish(topic(alias), b"", props=[(raw_mqtt.TOPIC_ALIAS, alias)]))
            sent = alias
    except raw_mqtt.Closed:
        pass
    got = hoarder.expect_closed()
    assert [p.reason for p in got if p.type == DISCONNECT] == [0x97]
    grown = (rss_kib(b.pid) - before) / 1024
    assert grown < 16, f"the broker grew by {grown:.1f} MiB for {sent} aliases"
    remapper.ping()


# ----------------------------------------------------------------- closing so that the client can read why

def test_a_refusing_connack_is_readable_though_the_client_sends_more(broker):
    """The broker half-closes and discards what still comes, rather than closing with
    unread bytes (which makes the kernel answer with a reset that can destroy the
    CONNACK before the client reads it)."""
    s = socket.create_connection((broker.host, broker.port), timeout=5)
    # Protocol level 9: refused with return code 1, and 256 KiB more behind it.
    s.sendall(raw_mqtt.connect("edge-refused", level=9) + raw_mqtt.pingreq() * (128 * 1024))
    time.sleep(0.3)  # let the reset (if there is one) arrive before the client reads
    try:
        data = read_until_closed(s)
    finally:
        s.close()
    assert data[:4] == b"\x20\x02\x00\x01", data[:16]


def test_a_disconnect_is_readable_while_the_client_keeps_sending(broker):
    s = socket.create_connection((broker.host, broker.port), timeout=5)
    s.sendall(raw_mqtt.connect("edge-reason", level=5))
    ack = s.recv(64)
    assert ack[0] >> 4 == CONNACK
    errors = []

    def keep_sending():
        # A malformed PUBLISH (QoS 3), then 1 MiB more while the broker is closing.
        try:
            s.sendall(raw_mqtt.packet(PUBLISH, 0x06, raw_mqtt.encode_str("t") + b"\x00\x01\x00"))
            for _ in range(64):
                s.sendall(b"\xc0\x00" * 8192)
            s.shutdown(socket.SHUT_WR)
        except OSError as exc:
            errors.append(exc)

    sender = threading.Thread(target=keep_sending)
    sender.start()
    data = read_until_closed(s)
    sender.join(10)
    s.close()
    assert data[:1] == bytes([DISCONNECT << 4]) and data[2] in (0x81, 0x82), data[:16]
    assert not errors, f"the sender saw {errors}"


# ----------------------------------------------------------------- takeover races

def _subscription_count(watcher) -> int:
    values = [m.payload for m in watcher.drain(1.6) if m.topic == "$SYS/broker/subscriptions/count"]
    assert values, "no subscription count published"
    return int(values[-1])


def test_clean_start_takeovers_racing_subscribes_leave_no_subscriptions(start_broker, paho):
    """A SUBSCRIBE that the old connection handles while a Clean Start takeover runs must
    not leave topic-tree entries that nothing removes."""
    b = start_broker(["sys_interval = 1s"])
    watcher = paho(b, "edge-race-watch")
    watcher.connect()
    watcher.subscribe("$SYS/broker/subscriptions/count", 0)
    baseline = _subscription_count(watcher)
    conns = []
    for i in range(60):
        c = socket.create_connection((b.host, b.port), timeout=5)
        filters = [(f"edge/race/{i}/{j}", 1) for j in range(20)]
        # CONNECT and SUBSCRIBE in one segment, and the next takeover at once.
        c.sendall(raw_mqtt.connect("edge-race-clean", clean=True)
                  + b"".join(raw_mqtt.subscribe(k + 1, filters[k * 5:(k + 1) * 5]) for k in range(4)))
        conns.append(c)
    # The last connection stays: its CONNACK and four SUBACKs (4 + 4 x 9 bytes) arrive.
    answered = b""
    while len(answered) < 40:
        chunk = conns[-1].recv(64)
        assert chunk, f"the last connection was closed after {answered!r}"
        answered += chunk
    assert answered[:4] == b"\x20\x02\x00\x00"
    for c in conns:
        c.close()
    deadline = time.monotonic() + 10
    while (count := _subscription_count(watcher)) != baseline:
        assert time.monotonic() < deadline, f"{count - baseline} subscriptions left behind"
    pub = paho(b, "edge-race-pub")
    pub.connect()
    pub.publish("edge/race/59/0", b"nobody", qos=1)
    assert _subscription_count(watcher) == baseline


def test_takeovers_during_a_flood_leave_nothing_stuck_in_flight(broker, raw, paho):
    """Messages the old connection moved into flight after the new one took the session
    must reach the new one now, not at some later reconnect."""
    cid = "edge-race-take"
    first = raw(broker)
    first.connect(cid, clean=False)
    first.subscribe([("edge/take", 1)])
    pub = paho(broker, "edge-race-take-pub")
    pub.connect()
    total = 600
    done = threading.Event()

    def flood():
        for i in range(total):
            pub.publish("edge/take", f"{i}".encode(), qos=1, wait=False)
        done.set()

    seen = set()
    flooder = threading.Thread(target=flood)
    flooder.start()
    conn = first
    for _ in range(25):
        # Read a little, acknowledge some, then be taken over.
        try:
            for _ in range(10):
                p = conn.recv(1.0)
                if p.type == PUBLISH:
                    seen.add(p.payload)
                    if int(p.payload) % 2:
                        conn.send(raw_mqtt.puback(p.pid))
        except (TimeoutError, raw_mqtt.Closed):
            pass
        conn = raw(broker)
        assert conn.connect(cid, clean=False).session_present
    flooder.join(30)
    assert done.is_set()
    deadline = time.monotonic() + 15
    while len(seen) < total and time.monotonic() < deadline:
        try:
            p = conn.recv(max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
        if p.type == PUBLISH:
            seen.add(p.payload)
            conn.send(raw_mqtt.puback(p.pid))
    missing = sorted(int(x) for x in {f"{i}".encode() for i in range(total)} - seen)
    assert not missing, f"{len(missing)} messages did not arrive, e.g. {missing[:10]}"
