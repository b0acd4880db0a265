"""A tiny MQTT 3.1 / 3.1.1 packet builder and reader, written from the specification.

It exists so the tests can send exactly the bytes they mean, including malformed
ones that no client library would produce, and can see exactly what the broker
answers (flags, packet identifiers, DUP bits) without a library in between.

Only what the tests need is here: MQTT 3.1.1 (protocol level 4, "MQTT"), MQTT 3.1
(protocol level 3, "MQIsdp"), and MQTT 5 (level 5) CONNECT, PUBLISH, SUBSCRIBE, AUTH
and DISCONNECT with properties, and the reason codes and properties of what the
broker answers.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
import time

# Control packet types (MQTT 3.1.1 section 2.2.1).
CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
PUBREC = 5
PUBREL = 6
PUBCOMP = 7
SUBSCRIBE = 8
SUBACK = 9
UNSUBSCRIBE = 10
UNSUBACK = 11
PINGREQ = 12
PINGRESP = 13
DISCONNECT = 14
AUTH = 15

NAMES = {
    CONNECT: "CONNECT", CONNACK: "CONNACK", PUBLISH: "PUBLISH", PUBACK: "PUBACK",
    PUBREC: "PUBREC", PUBREL: "PUBREL", PUBCOMP: "PUBCOMP", SUBSCRIBE: "SUBSCRIBE",
    SUBACK: "SUBACK", UNSUBSCRIBE: "UNSUBSCRIBE", UNSUBACK: "UNSUBACK",
    PINGREQ: "PINGREQ", PINGRESP: "PINGRESP", DISCONNECT: "DISCONNECT", AUTH: "AUTH",
}

# MQTT 5 property identifiers (section 2.2.2.2) and their types.
PFI, MESSAGE_EXPIRY, CONTENT_TYPE, RESPONSE_TOPIC, CORRELATION_DATA = 0x01, 0x02, 0x03, 0x08, 0x09
SUBSCRIPTION_ID, SESSION_EXPIRY, ASSIGNED_CLIENT_ID, SERVER_KEEP_ALIVE = 0x0B, 0x11, 0x12, 0x13
AUTH_METHOD, AUTH_DATA, REQUEST_PROBLEM_INFO, WILL_DELAY = 0x15, 0x16, 0x17, 0x18
REQUEST_RESPONSE_INFO, RESPONSE_INFO, REASON_STRING = 0x19, 0x1A, 0x1F
RECEIVE_MAXIMUM, TOPIC_ALIAS_MAXIMUM, TOPIC_ALIAS, MAXIMUM_QOS = 0x21, 0x22, 0x23, 0x24
RETAIN_AVAILABLE, USER_PROPERTY, MAXIMUM_PACKET_SIZE = 0x25, 0x26, 0x27
WILDCARD_AVAILABLE, SUB_ID_AVAILABLE, SHARED_AVAILABLE = 0x28, 0x29, 0x2A

_BYTE, _U16, _U32, _VARINT, _STR, _BIN, _PAIR = range(7)
PROPERTY_TYPES = {
    PFI: _BYTE, MESSAGE_EXPIRY: _U32, CONTENT_TYPE: _STR, RESPONSE_TOPIC: _STR, CORRELATION_DATA: _BIN,
    SUBSCRIPTION_ID: _VARINT, SESSION_EXPIRY: _U32, ASSIGNED_CLIENT_ID: _STR, SERVER_KEEP_ALIVE: _U16,
    AUTH_METHOD: _STR, AUTH_DATA: _BIN, REQUEST_PROBLEM_INFO: _BYTE, WILL_DELAY: _U32,
    REQUEST_RESPONSE_INFO: _BYTE, RESPONSE_INFO: _STR, 0x1C: _STR, REASON_STRING: _STR,
    RECEIVE_MAXIMUM: _U16, TOPIC_ALIAS_MAXIMUM: _U16, TOPIC_ALIAS: _U16, MAXIMUM_QOS: _BYTE,
    RETAIN_AVAILABLE: _BYTE, USER_PROPERTY: _PAIR, MAXIMUM_PACKET_SIZE: _U32,
    WILDCARD_AVAILABLE: _BYTE, SUB_ID_AVAILABLE: _BYTE, SHARED_AVAILABLE: _BYTE,
}


# ---------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------

def encode_varint(n: int) -> bytes:
    """Remaining Length encoding (section 2.2.3): 7 bits a byte, high bit = more."""
    if n < 0 or n > 268_435_455:
        raise ValueError("remaining length out of range")
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        if n:
            byte |= 0x80
        out.append(byte)
        if not n:
            return bytes(out)


def encode_bytes(b: bytes) -> bytes:
    """A two-byte big-endian length followed by the bytes (section 1.5.3)."""
    if len(b) > 0xFFFF:
        raise ValueError("field longer than 65535 bytes")
    return struct.pack("!H", len(b)) + b


def encode_str(s: str | bytes) -> bytes:
    """A UTF-8 encoded string; bytes are sent as they are (to send bad UTF-8)."""
    return encode_bytes(s if isinstance(s, bytes) else s.encode("utf-8"))


def encode_props(props: list[tuple[int, object]] | None) -> bytes:
    """MQTT 5 properties (section 2.2.2): a length, then identifier and value for each."""
    out = bytearray()
    for pid, value in props or []:
        kind = PROPERTY_TYPES[pid]
        out.append(pid)
        if kind == _BYTE:
            out.append(value)
        elif kind == _U16:
            out += struct.pack("!H", value)
        elif kind == _U32:
            out += struct.pack("!I", value)
        elif kind == _VARINT:
            out += encode_varint(value)
        elif kind == _STR:
            out += encode_str(value)
        elif kind == _BIN:
            out += encode_bytes(value)
        else:
            out += encode_str(value[0]) + encode_str(value[1])
    return encode_varint(len(out)) + bytes(out)


def decode_varint(data: bytes, pos: int) -> tuple[int, int]:
    """A variable byte integer at `pos`: (value, position after it)."""
    value, mult = 0, 1
    while True:
        byte = data[pos]
        pos += 1
        value += (byte & 0x7F) * mult
        mult *= 128
        if not byte & 0x80:
            return value, pos


def decode_props(data: bytes, pos: int = 0) -> tuple[dict[int, list], int]:
    """Properties at `pos`: ({identifier: [values]}, position after them)."""
    length, pos = decode_varint(data, pos)
    end = pos + length
    props: dict[int, list] = {}
    while pos < end:
        pid = data[pos]
        pos += 1
        kind = PROPERTY_TYPES[pid]
        if kind == _BYTE:
            value, pos = data[pos], pos + 1
        elif kind == _U16:
            value, pos = struct.unpack_from("!H", data, pos)[0], pos + 2
        elif kind == _U32:
            value, pos = struct.unpack_from("!I", data, pos)[0], pos + 4
        elif kind == _VARINT:
            value, pos = decode_varint(data, pos)
        elif kind in (_STR, _BIN):
            (n,) = struct.unpack_from("!H", data, pos)
            raw = data[pos + 2:pos + 2 + n]
            value, pos = (raw.decode("utf-8") if kind == _STR else raw), pos + 2 + n
        else:
            (n,) = struct.unpack_from("!H", data, pos)
            key = data[pos + 2:pos + 2 + n].decode("utf-8")
            pos += 2 + n
            (n,) = struct.unpack_from("!H", data, pos)
            value = (key, data[pos + 2:pos + 2 + n].decode("utf-8"))
            pos += 2 + n
        props.setdefault(pid, []).append(value)
    return props, end


def packet(ptype: int, flags: int, body: bytes = b"", remaining: bytes | None = None) -> bytes:
    """A whole control packet. `remaining` overrides the Remaining Length bytes."""
    header = bytes([(ptype << 4) | (flags & 0x0F)])
    return header + (encode_varint(len(body)) if remaining is None else remaining) + body


def connect(client_id: str | bytes = "", clean: bool = True, keepalive: int = 60,
            will_topic: str | bytes | None = None, will_payload: bytes = b"",
            will_qos: int = 0, will_retain: bool = False,
            username: str | None = None, password: bytes | str | None = None,
            level: int = 4, name: str | bytes | None = None,
            flags_override: int | None = None, props: list | None = None,
            will_props: list | None = None) -> bytes:
    """CONNECT (section 3.1). level 4 = MQTT 3.1.1, level 3 = MQTT 3.1, level 5 = MQTT 5
    (with `props` and `will_props`)."""
    if name is None:
        name = "MQIsdp" if level == 3 else "MQTT"
    flags = 0
    if clean:
        flags |= 0x02
    v5 = level == 5
    payload = encode_str(client_id)
    if will_topic is not None:
        flags |= 0x04 | (will_qos << 3) | (0x20 if will_retain else 0)
        payload += (encode_props(will_props) if v5 else b"") + encode_str(will_topic) + encode_bytes(will_payload)
    if username is not None:
        flags |= 0x80
        payload += encode_str(username)
    if password is not None:
        flags |= 0x40
        payload += encode_bytes(password.encode() if isinstance(password, str) else password)
    if flags_override is not None:
        flags = flags_override
    variable = encode_str(name) + bytes([level, flags]) + struct.pack("!H", keepalive)
    if v5:
        variable += encode_props(props)
    return packet(CONNECT, 0, variable + payload)


def publish(topic: str | bytes, payload: bytes | str = b"", qos: int = 0, retain: bool = False,
            dup: bool = False, pid: int | None = None, props: list | None = None) -> bytes:
    """PUBLISH (section 3.3). A packet identifier is present only for QoS 1 and 2.
    With `props` (even []) it is an MQTT 5 PUBLISH."""
    if isinstance(payload, str):
        payload = payload.encode()
    flags = (0x08 if dup else 0) | ((qos & 3) << 1) | (0x01 if retain else 0)
    body = encode_str(topic)
    if qos > 0:
        body += struct.pack("!H", 1 if pid is None else pid)
    if props is not None:
        body += encode_props(props)
    return packet(PUBLISH, flags, body + payload)


def _ack(ptype: int, pid: int, flags: int = 0) -> bytes:
    return packet(ptype, flags, struct.pack("!H", pid))


def puback(pid: int) -> bytes:
    return _ack(PUBACK, pid)


def pubrec(pid: int) -> bytes:
    return _ack(PUBREC, pid)


def pubrel(pid: int, flags: int = 0x02) -> bytes:
    """PUBREL must have flags 0010 (section 3.6.1); other values are protocol errors."""
    return _ack(PUBREL, pid, flags)


def pubcomp(pid: int) -> bytes:
    return _ack(PUBCOMP, pid)


def subscribe(pid: int, filters: list[tuple[str | bytes, int]], flags: int = 0x02) -> bytes:
    """SUBSCRIBE (section 3.8): flags must be 0010."""
    body = struct.pack("!H", pid)
    for topic_filter, qos in filters:
        body += encode_str(topic_filter) + bytes([qos])
    return packet(SUBSCRIBE, flags, body)


def unsubscribe(pid: int, filters: list[str | bytes], flags: int = 0x02) -> bytes:
    """UNSUBSCRIBE (section 3.10): flags must be 0010."""
    body = struct.pack("!H", pid)
    for topic_filter in filters:
        body += encode_str(topic_filter)
    return packet(UNSUBSCRIBE, flags, body)


def subscribe5(pid: int, filters: list[tuple[str, int]], props: list | None = None) -> bytes:
    """MQTT 5 SUBSCRIBE: each filter with its options byte (QoS, No Local 0x04,
    Retain As Published 0x08, Retain Handling << 4)."""
    body = struct.pack("!H", pid) + encode_props(props)
    for topic_filter, options in filters:
        body += encode_str(topic_filter) + bytes([options])
    return packet(SUBSCRIBE, 0x02, body)


def ack5(ptype: int, pid: int, reason: int = 0) -> bytes:
    """An MQTT 5 PUBACK/PUBREC/PUBREL/PUBCOMP with a reason code."""
    return packet(ptype, 0x02 if ptype == PUBREL else 0, struct.pack("!HB", pid, reason))


def disconnect5(reason: int = 0, props: list | None = None) -> bytes:
    return packet(DISCONNECT, 0, bytes([reason]) + encode_props(props))


def auth(reason: int = 0x18, props: list | None = None) -> bytes:
    """AUTH (section 3.15)."""
    return packet(AUTH, 0, bytes([reason]) + encode_props(props))


def pingreq(flags: int = 0) -> bytes:
    return packet(PINGREQ, flags)


def disconnect(flags: int = 0) -> bytes:
    return packet(DISCONNECT, flags)


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class Packet:
    type: int
    flags: int
    body: bytes

    @property
    def name(self) -> str:
        return NAMES.get(self.type, f"type{self.type}")

    # CONNACK (section 3.2)
    @property
    def session_present(self) -> bool:
        assert self.type == CONNACK
        return bool(self.body[0] & 0x01)

    @property
    def return_code(self) -> int:
        assert self.type == CONNACK
        return self.body[1]

    # PUBLISH (section 3.3)
    @property
    def qos(self) -> int:
        return (self.flags >> 1) & 0x03

    @property
    def dup(self) -> bool:
        return bool(self.flags & 0x08)

    @property
    def retain(self) -> bool:
        return bool(self.flags & 0x01)

    @property
    def topic(self) -> str:
        assert self.type == PUBLISH
        (n,) = struct.unpack_from("!H", self.body, 0)
        return self.body[2:2 + n].decode("utf-8")

    @property
    def pid(self) -> int | None:
        """Packet identifier of a PUBLISH (None for QoS 0) or of an ack/SUBACK/UNSUBACK."""
        if self.type == PUBLISH:
            if self.qos == 0:
                return None
            (n,) = struct.unpack_from("!H", self.body, 0)
            return struct.unpack_from("!H", self.body, 2 + n)[0]
        return struct.unpack_from("!H", self.body, 0)[0]

    @property
    def payload(self) -> bytes:
        assert self.type == PUBLISH
        (n,) = struct.unpack_from("!H", self.body, 0)
        return self.body[2 + n + (2 if self.qos else 0):]

    # SUBACK (section 3.9)
    @property
    def granted(self) -> list[int]:
        assert self.type == SUBACK
        return list(self.body[2:])

    # MQTT 5: what follows the fixed part of each packet
    def _v5_start(self) -> int:
        """Where the reason code (or, for PUBLISH and SUBACK, the properties) begin."""
        if self.type == PUBLISH:
            (n,) = struct.unpack_from("!H", self.body, 0)
            return 2 + n + (2 if self.qos else 0)
        if self.type == CONNACK:
            return 1
        if self.type in (DISCONNECT, AUTH):
            return 0
        return 2

    @property
    def reason(self) -> int:
        """The MQTT 5 reason code (0 when the packet leaves it out)."""
        pos = self._v5_start()
        return self.body[pos] if len(self.body) > pos else 0

    @property
    def props(self) -> dict[int, list]:
        """The MQTT 5 properties: {identifier: [values]}."""
        pos = self._v5_start()
        if self.type not in (PUBLISH, SUBACK, UNSUBACK):
            pos += 1  # the reason code
        if len(self.body) <= pos:
            return {}
        return decode_props(self.body, pos)[0]

    @property
    def payload5(self) -> bytes:
        assert self.type == PUBLISH
        return self.body[decode_props(self.body, self._v5_start())[1]:]

    @property
    def reasons5(self) -> list[int]:
        """The reason codes of an MQTT 5 SUBACK or UNSUBACK."""
        return list(self.body[decode_props(self.body, 2)[1]:])

    def __repr__(self) -> str:
        extra = ""
        if self.type == DISCONNECT and self.body:
            extra = f" reason={self.body[0]:#04x}"
        elif self.type == PUBLISH:
            extra = (f" topic={self.topic!r} qos={self.qos} dup={int(self.dup)} "
                     f"retain={int(self.retain)} pid={self.pid} payload={self.payload[:40]!r}")
        elif self.type == CONNACK:
            extra = f" sp={int(self.session_present)} rc={self.return_code}"
        elif len(self.body) >= 2:
            extra = f" pid={self.pid}"
        return f"<{self.name} flags={self.flags:04b}{extra}>"


class Closed(Exception):
    """The peer closed the connection (or reset it)."""


class RawClient:
    """A blocking TCP connection speaking hand-built MQTT packets."""

    def __init__(self, host: str, port: int, timeout: float = 5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.closed = False

    # -- sending ---------------------------------------------------------
    def send(self, data: bytes) -> None:
        """Sends bytes; a broker that already closed the connection raises Closed."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as exc:
            self.closed = True
            raise Closed(str(exc)) from exc

    # -- receiving -------------------------------------------------------
    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from the broker in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout as exc:
            raise TimeoutError("no data from the broker in time") from exc
        except (ConnectionResetError, ConnectionAbortedError) as exc:
            self.closed = True
            raise Closed(str(exc)) from exc
        if not chunk:
            self.closed = True
            raise Closed("connection closed by the broker")
        self.buf += chunk

    def _try_parse(self) -> Packet | None:
        if len(self.buf) < 2:
            return None
        multiplier, length, i = 1, 0, 1
        while True:
            if i >= len(self.buf):
                return None
            byte = self.buf[i]
            length += (byte & 0x7F) * multiplier
            multiplier *= 128
            i += 1
            if not byte & 0x80:
                break
            if i > 4:
                raise ValueError("malformed remaining length from the broker")
        if len(self.buf) < i + length:
            return None
        first = self.buf[0]
        pkt = Packet(first >> 4, first & 0x0F, bytes(self.buf[i:i + length]))
        del self.buf[:i + length]
        return pkt

    def recv(self, timeout: float = 5.0) -> Packet:
        """The next packet; TimeoutError if none in time, Closed if the broker closed."""
        deadline = time.monotonic() + timeout
        while True:
            pkt = self._try_parse()
            if pkt is not None:
                return pkt
            self._fill(deadline)

    def expect(self, ptype: int, timeout: float = 5.0) -> Packet:
        """The next packet, which must be of type `ptype`."""
        pkt = self.recv(timeout)
        assert pkt.type == ptype, f"expected {NAMES[ptype]}, got {pkt!r}"
        return pkt

    def expect_closed(self, timeout: float = 5.0) -> list[Packet]:
        """Waits until the broker closes the connection; returns packets received before.

        Fails (AssertionError) if the connection is still open after `timeout`.
        """
        got: list[Packet] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                pkt = self._try_parse()
                if pkt is not None:
                    got.append(pkt)
                    continue
                self._fill(deadline)
            except Closed:
                return got
            except TimeoutError:
                raise AssertionError(
                    f"broker did not close the connection within {timeout}s (received {got!r})")

    def expect_silence(self, duration: float) -> None:
        """Asserts that nothing arrives and the connection stays open for `duration` s."""
        try:
            pkt = self.recv(duration)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected {pkt!r}")

    # -- conveniences ----------------------------------------------------
    def connect(self, client_id: str | bytes = "", timeout: float = 5.0, **kw) -> Packet:
        """Sends CONNECT and returns the CONNACK."""
        self.send(connect(client_id, **kw))
        return self.expect(CONNACK, timeout)

    def subscribe(self, filters: list[tuple[str, int]], pid: int = 1, timeout: float = 5.0) -> list[int]:
        """Sends SUBSCRIBE and returns the granted QoS list from the SUBACK."""
        self.send(subscribe(pid, filters))
        ack = self.expect(SUBACK, timeout)
        assert ack.pid == pid, f"SUBACK for packet id {ack.pid}, expected {pid}"
        return ack.granted

    def ping(self, timeout: float = 5.0) -> None:
        self.send(pingreq())
        self.expect(PINGRESP, timeout)

    def publish_qos1(self, topic: str, payload: bytes | str, pid: int, retain: bool = False) -> None:
        self.send(publish(topic, payload, qos=1, pid=pid, retain=retain))
        ack = self.expect(PUBACK)
        assert ack.pid == pid

    def publish_qos2(self, topic: str, payload: bytes | str, pid: int, retain: bool = False) -> None:
        self.send(publish(topic, payload, qos=2, pid=pid, retain=retain))
        rec = self.expect(PUBREC)
        assert rec.pid == pid
        self.send(pubrel(pid))
        comp = self.expect(PUBCOMP)
        assert comp.pid == pid

    def close(self) -> None:
        """Closes the TCP connection without sending DISCONNECT."""
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True

    def __enter__(self) -> "RawClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
