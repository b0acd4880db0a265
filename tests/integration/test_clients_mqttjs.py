"""MQTT.js (node) as a full client, and the three client libraries talking to each
other through the broker."""

import json
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_mqttjs_round_trip_all_qos(broker, mqttjs):
    js = mqttjs(broker, clientId="js-rt", clean=True)
    ev = js.connect()
    assert ev == {"event": "connect", "sessionPresent": False, "returnCode": 0}
    assert js.subscribe("js/rt/#", 2) == [2]
    for q in (0, 1, 2):
        js.publish(f"js/rt/{q}", f"q{q}", qos=q)
    got = sorted(js.collect(3))
    assert [(m.topic, m.payload, m.qos) for m in got] == [(f"js/rt/{q}", f"q{q}".encode(), q) for q in (0, 1, 2)]


def test_three_libraries_fan_out(broker, mqttjs, paho, mosq):
    js = mqttjs(broker, clientId="fan-js")
    js.connect()
    js.subscribe("fan/#", 1)
    p = paho(broker, "fan-paho")
    p.connect()
    p.subscribe("fan/#", 1)
    cli = mosq.sub(broker, "fan/#", qos=1)
    js.publish("fan/js", "js", qos=1)
    p.publish("fan/paho", b"paho", qos=1)
    mosq.pub(broker, "fan/cli", "cli", qos=1)
    expected = [("fan/cli", b"cli"), ("fan/js", b"js"), ("fan/paho", b"paho")]
    for who in (js, p, cli):
        got = sorted((m.topic, m.payload) for m in who.collect(3, timeout=5))
        assert got == expected, who


def test_mqttjs_persistent_session_offline_queue(broker, mqttjs, paho):
    a = mqttjs(broker, clientId="js-offline", clean=False)
    a.connect()
    a.subscribe("jsoff/t", 2)
    a.end()
    pub = paho(broker, "jsoff-pub")
    pub.connect()
    for i in range(10):
        pub.publish("jsoff/t", f"{i}".encode(), qos=2)
    b = mqttjs(broker, clientId="js-offline", clean=False)
    assert b.connect()["sessionPresent"] is True
    got = b.collect(10)
    assert [m.payload for m in got] == [f"{i}".encode() for i in range(10)]
    assert {m.qos for m in got} == {2}


def test_mqttjs_refused_connection_reports_return_code(start_broker, tmp_path, mqttjs):
    """A refused CONNECT reaches MQTT.js as an error carrying the CONNACK code (5)."""
    pw = tmp_path / "pw"
    pw.write_text("u:$plain$p\n")
    b = start_broker(["allow_anonymous = false", f"auth.password_file = {pw}"])
    js = mqttjs(b, clientId="js-refused")
    ev = js.connect(expect_ok=False)
    assert ev["event"] == "error" and ev["code"] == 5, ev


def test_client_script_speaks_json_lines(broker, mqttjs):
    """The helper itself: one JSON event per line, and it exits when told to."""
    cmds = [
        {"cmd": "connect", "url": broker.url, "options": {"clientId": "js-lines"}},
    ]
    p = subprocess.Popen(["node", str(HERE / "js" / "client.js")], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, cwd=HERE)
    try:
        p.stdin.write("".join(json.dumps(c) + "\n" for c in cmds))
        p.stdin.flush()
        first = json.loads(p.stdout.readline())
        assert first["event"] == "connect"
        p.stdin.write(json.dumps({"cmd": "end"}) + "\n")
        p.stdin.flush()
        rest = [json.loads(line) for line in p.stdout]
        assert rest[-1] == {"event": "exit"}
        assert p.wait(timeout=5) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
