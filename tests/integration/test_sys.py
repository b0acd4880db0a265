"""mqttd's $SYS statistics: with sys_interval = 1s they are published every second
under $SYS/broker/..."""

import time

import pytest

pytestmark = pytest.mark.mqttd_only

REQUIRED = ["$SYS/broker/version", "$SYS/broker/uptime", "$SYS/broker/clients/connected",
            "$SYS/broker/messages/received", "$SYS/broker/messages/sent"]


def _latest(msgs):
    out = {}
    for msg in msgs:
        out[msg.topic] = msg.payload.decode()
    return out


def _number(text):
    return float(text.split()[0])


@pytest.fixture
def sys_broker(start_broker):
    return start_broker(["sys_interval = 1s"])


def test_sys_topics_published(sys_broker, paho):
    sub = paho(sys_broker, "sys-watch")
    sub.connect()
    sub.subscribe("$SYS/#", 0)
    values = _latest(sub.drain(2.5))
    missing = [t for t in REQUIRED if t not in values]
    assert not missing, f"missing {missing}; got {sorted(values)}"
    assert values["$SYS/broker/version"].strip()
    for t in REQUIRED[1:]:
        assert _number(values[t]) >= 0, (t, values[t])
    assert _number(values["$SYS/broker/clients/connected"]) >= 1


def test_sys_values_move(sys_broker, paho, mosq):
    watch = paho(sys_broker, "sys-move")
    watch.connect()
    watch.subscribe([("$SYS/broker/uptime", 0), ("$SYS/broker/clients/connected", 0),
                     ("$SYS/broker/messages/received", 0), ("$SYS/broker/messages/sent", 0)])
    before = _latest(watch.drain(1.5))
    assert set(before) == set(REQUIRED[1:]), sorted(before)

    extra = [paho(sys_broker, f"sys-extra-{i}") for i in range(3)]
    for c in extra:
        c.connect()
    extra[0].subscribe("sys/t", 1)
    for i in range(10):
        extra[1].publish("sys/t", f"{i}".encode(), qos=1)
    extra[0].collect(10)
    time.sleep(1.2)
    after = _latest(watch.drain(1.5))

    assert _number(after["$SYS/broker/uptime"]) > _number(before["$SYS/broker/uptime"])
    assert _number(after["$SYS/broker/clients/connected"]) >= _number(before["$SYS/broker/clients/connected"]) + 3
    assert _number(after["$SYS/broker/messages/received"]) >= _number(before["$SYS/broker/messages/received"]) + 10
    assert _number(after["$SYS/broker/messages/sent"]) >= _number(before["$SYS/broker/messages/sent"]) + 10


def test_sys_not_matched_by_hash(sys_broker, paho):
    sub = paho(sys_broker, "sys-hash")
    sub.connect()
    sub.subscribe("#", 0)
    sub.expect_none(2.5)


def test_sys_topics_mosquitto_sub(sys_broker, mosq):
    s = mosq.sub(sys_broker, "$SYS/broker/version", qos=0, count=1)
    msg = s.get(timeout=5)
    assert msg.topic == "$SYS/broker/version" and msg.payload.strip()
