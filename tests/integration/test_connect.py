"""CONNECT / CONNACK (MQTT 3.1.1 section 3.1, 3.2): acceptance and each refusal code."""

import pytest

import mqtt_raw as raw_mqtt


def test_connect_accepted_paho(broker, paho):
    c = paho(broker, "connect-paho")
    rc, session_present = c.connect()
    assert rc == 0
    assert session_present is False  # clean session: never a session present


def test_connect_accepted_mqttjs(broker, mqttjs):
    c = mqttjs(broker, clientId="connect-js", clean=True)
    ev = c.connect()
    assert ev["returnCode"] == 0
    assert ev["sessionPresent"] is False


def test_connect_accepted_raw_connack_bytes(broker, raw):
    """CONNACK is exactly 0x20 0x02 <flags> <rc> with the reserved flag bits 0."""
    r = raw(broker)
    r.send(raw_mqtt.connect("connect-raw", clean=True, keepalive=30))
    ack = r.expect(raw_mqtt.CONNACK)
    assert ack.flags == 0
    assert len(ack.body) == 2
    assert ack.body[0] & 0xFE == 0, "CONNACK acknowledge-flags reserved bits must be 0"
    assert ack.return_code == 0
    assert not ack.session_present
    r.ping()


@pytest.mark.parametrize("level", [2, 6, 255])
def test_unacceptable_protocol_version(broker, raw, paho, level):
    """[MQTT-3.1.2-2]: CONNACK return code 1, then the connection is closed."""
    r = raw(broker)
    r.send(raw_mqtt.connect("bad-level", level=level, name="MQTT"))
    got = r.expect_closed(timeout=5)
    assert [p.type for p in got] == [raw_mqtt.CONNACK], got
    assert got[0].return_code == 1
    # The broker is unharmed.
    ok = paho(broker, "after-bad-level")
    ok.connect()


def test_zero_length_client_id_with_persistent_session_rejected(broker, raw):
    """[MQTT-3.1.3-8]: zero-byte client id and CleanSession=0 -> CONNACK 2, then close."""
    r = raw(broker)
    r.send(raw_mqtt.connect("", clean=False))
    got = r.expect_closed(timeout=5)
    assert [p.type for p in got] == [raw_mqtt.CONNACK], got
    assert got[0].return_code == 2
    assert not got[0].session_present


def test_zero_length_client_id_with_clean_session_gets_an_id(broker, paho):
    """[MQTT-3.1.3-6]: the server assigns a unique id. Two such clients at once must not
    take each other over, and both must be fully served."""
    a = paho(broker, "")
    b = paho(broker, "")
    assert a.connect() == (0, False)
    assert b.connect() == (0, False)
    a.subscribe("zero/id/#", 1)
    b.subscribe("zero/id/#", 1)
    a.publish("zero/id/x", b"from a", qos=1)
    for c in (a, b):
        m = c.get()
        assert (m.topic, m.payload) == ("zero/id/x", b"from a")
    assert not a.disconnected.is_set() and not b.disconnected.is_set()


def test_zero_length_client_id_mqttjs(broker, mqttjs):
    c = mqttjs(broker, clientId="", clean=True)
    assert c.connect()["returnCode"] == 0
    assert c.subscribe("zero/js", 1) == [1]
    c.publish("zero/js", "hi", qos=1)
    m = c.get()
    assert (m.topic, m.payload, m.qos) == ("zero/js", b"hi", 1)


@pytest.mark.mqttd_only
def test_client_id_too_long_rejected(start_broker, paho, raw):
    """Ids longer than mqtt.max_clientid_len are refused with CONNACK 2."""
    b = start_broker(["mqtt.max_clientid_len = 32"])
    ok = paho(b, "x" * 32)
    assert ok.connect()[0] == 0
    r = raw(b)
    r.send(raw_mqtt.connect("y" * 33, clean=True))
    got = r.expect_closed(timeout=5)
    assert [p.type for p in got] == [raw_mqtt.CONNACK], got
    assert got[0].return_code == 2
    too_long = paho(b, "z" * 33)
    assert too_long.connect(expect_rc=None)[0] == 2


# ----- authentication --------------------------------------------------------

@pytest.fixture
def auth_broker(start_broker, tmp_path):
    pw = tmp_path / "passwd"
    pw.write_text("# test users\nalice:$plain$wonderland\nbob:$plain$builder\n")
    return start_broker(["allow_anonymous = false", f"auth.password_file = {pw}"])


def test_password_accepted(auth_broker, paho, mosq):
    c = paho(auth_broker, "alice-1", username="alice", password="wonderland")
    assert c.connect() == (0, False)
    c.subscribe("auth/t", 1)
    mosq.pub(auth_broker, "auth/t", "from bob", qos=1, username="bob", password="builder")
    assert c.get().payload == b"from bob"


def test_anonymous_refused_when_not_allowed(auth_broker, paho, raw):
    """No user name while anonymous access is off: CONNACK 5 (not authorized), then close."""
    c = paho(auth_broker, "anon-1")
    assert c.connect(expect_rc=None)[0] == 5
    r = raw(auth_broker)
    r.send(raw_mqtt.connect("anon-2"))
    got = r.expect_closed(timeout=5)
    assert [(p.type, p.return_code) for p in got] == [(raw_mqtt.CONNACK, 5)]


def test_wrong_password_refused(auth_broker, mosq, mqttjs):
    """Any client with a wrong password is refused (the code is checked below for mqttd)."""
    cp = mosq.pub(auth_broker, "auth/x", "nope", username="alice", password="WRONG", check=False)
    assert cp.returncode != 0
    assert "refused" in (cp.stdout + cp.stderr).lower()
    js = mqttjs(auth_broker, clientId="js-wrong", username="alice", password="WRONG")
    ev = js.connect(expect_ok=False)
    assert ev["event"] in ("error", "close"), ev


@pytest.mark.mqttd_only
@pytest.mark.parametrize("user,password", [("alice", "WRONG"), ("mallory", "wonderland"),
                                           ("alice", "")])
def test_bad_user_name_or_password_code(auth_broker, raw, user, password):
    """mqttd's choice: a wrong password or an unknown user is CONNACK 4 (bad user name or
    password); a missing user name is 5 (not authorized). mosquitto answers 5 for both."""
    r = raw(auth_broker)
    r.send(raw_mqtt.connect("bad-pw", username=user, password=password))
    got = r.expect_closed(timeout=5)
    assert [(p.type, p.return_code) for p in got] == [(raw_mqtt.CONNACK, 4)]


def test_mqtt31_connect_accepted(broker, raw, paho):
    """MQTT 3.1: protocol name MQIsdp, level 3."""
    r = raw(broker)
    ack = r.connect("v31-raw", level=3)
    assert ack.return_code == 0
    r.ping()
    c = paho(broker, "v31-paho", protocol=3)
    assert c.connect()[0] == 0
