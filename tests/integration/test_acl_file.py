"""acl_file in EMQX's acl.conf format against the real binary: SUBSCRIBE refused with
SUBACK 0x80 (3.1.1) or 0x87 (5.0), PUBLISH refused with PUBACK 0x87 (5.0) or acknowledged
and dropped (3.1.1), %u and %c, {eq, "#"}, acl_nomatch and acl_deny_action."""

import pytest

import mqtt_raw as raw_mqtt
from conftest import start_error
from mqtt_raw import DISCONNECT, PUBACK, SUBACK

pytestmark = pytest.mark.mqttd_only

ACL = """\
%% the operator reads everything of the devices
{allow, {user, "admin"}, subscribe, ["users/#", "$SYS/#"]}.
%% each device its own tree, by user name and by client id
{allow, all, pubsub, ["users/%u/#", "clients/%c/#"]}.
{deny, all, subscribe, ["$SYS/#", {eq, "#"}]}.
{deny, {user, "reader"}, publish, ["#"]}.
{allow, {'or', [{user, "reader"}, {ipaddr, "127.0.0.0/8"}]}, subscribe, ["news/#"]}.
{allow, all, publish, ["news/#"]}.
"""


@pytest.fixture
def acl_broker(start_broker, tmp_path):
    acl = tmp_path / "acl.conf"
    acl.write_text(ACL)
    return start_broker([f"acl_file = {acl}", "acl_nomatch = deny"])


def granted(c: raw_mqtt.RawClient, level: int, filters: list[str]) -> list[int]:
    if level == 5:
        c.send(raw_mqtt.subscribe5(1, [(f, 1) for f in filters]))
        return c.expect(SUBACK).reasons5
    return c.subscribe([(f, 1) for f in filters])


@pytest.mark.parametrize("level,refused", [(4, 0x80), (5, 0x87)])
def test_subscriptions_are_granted_as_the_rules_say(acl_broker, raw, level, refused):
    c = raw(acl_broker)
    c.connect(f"acl-sub-{level}", username="alice", level=level)
    assert granted(c, level, ["users/alice/#", "users/bob/#", "clients/acl-sub-%d/x" % level, "#",
                              "$SYS/#", "news/+", "other/t"]) == [1, refused, 1, refused, refused, 1, refused]
    admin = raw(acl_broker)
    admin.connect(f"acl-admin-{level}", username="admin", level=level)
    assert granted(admin, level, ["users/#", "$SYS/broker/uptime", "#"]) == [1, 1, refused]


def test_a_refused_publish_is_not_routed(acl_broker, raw, paho, mosq):
    admin = paho(acl_broker, "acl-watch", username="admin")
    admin.connect()
    admin.subscribe("users/#", 1)
    v5 = raw(acl_broker)
    v5.connect("acl-pub-5", username="alice", level=5)
    v5.send(raw_mqtt.publish("users/bob/cmd", b"forged", qos=1, pid=1, props=[]))
    ack = v5.expect(PUBACK)
    assert (ack.pid, ack.reason) == (1, 0x87)
    # 3.1.1 has no reason code: acknowledged (mosquitto_pub succeeds), dropped.
    cp = mosq.pub(acl_broker, "users/bob/cmd", "forged too", qos=1, username="alice")
    assert cp.returncode == 0
    mosq.pub(acl_broker, "users/alice/state", "mine", qos=1, username="alice")
    assert admin.get().payload == b"mine"
    admin.expect_none(0.5)


def test_v5_refused_publish_gets_0x87(acl_broker, raw):
    c = raw(acl_broker)
    c.connect("acl-pub5", username="reader", level=5)
    c.send(raw_mqtt.publish("news/today", b"x", qos=1, pid=3, props=[]))
    ack = c.expect(PUBACK)
    assert (ack.pid, ack.reason) == (3, 0x87)
    c.send(raw_mqtt.publish("users/reader/ok", b"x", qos=1, pid=4, props=[]))
    ack = c.expect(PUBACK)
    assert (ack.pid, ack.reason) == (4, 0), "its own tree: the rule before the deny decides"
    writer = raw(acl_broker)
    writer.connect("acl-writer", username="writer", level=5)
    writer.send(raw_mqtt.publish("news/today", b"x", qos=1, pid=5, props=[]))
    assert writer.expect(PUBACK).reason == 0


def test_acl_nomatch_allow_lets_unmatched_through(start_broker, tmp_path, raw):
    acl = tmp_path / "acl.conf"
    acl.write_text('{deny, all, subscribe, [{eq, "#"}]}.\n')
    b = start_broker([f"acl_file = {acl}"])  # acl_nomatch = allow, EMQX's default
    c = raw(b)
    c.connect("acl-nomatch")
    assert c.subscribe([("#", 1), ("a/#", 1)]) == [0x80, 1]


@pytest.mark.parametrize("level", [4, 5])
def test_acl_deny_action_disconnect_closes_the_connection(start_broker, tmp_path, raw, level):
    acl = tmp_path / "acl.conf"
    acl.write_text('{deny, all, publish, ["secret/#"]}.\n{allow, all}.\n')
    b = start_broker([f"acl_file = {acl}", "acl_deny_action = disconnect"])
    c = raw(b)
    c.connect(f"acl-kick-{level}", level=level)
    c.send(raw_mqtt.publish("secret/x", b"x", qos=1, pid=1, props=[] if level == 5 else None))
    got = c.expect_closed()
    assert [p.reason for p in got if p.type == DISCONNECT] == ([0x87] if level == 5 else [])
    assert not [p for p in got if p.type == PUBACK]


def test_a_malformed_rule_is_a_startup_error_naming_its_line(tmp_path):
    acl = tmp_path / "acl.conf"
    acl.write_text('{allow, all}.\n%% a comment\n{allow, {user, "u"}, read, ["t"]}.\n')
    cp = start_error(tmp_path, ["listener.tcp.external = 127.0.0.1:18997", f"acl_file = {acl}"])
    assert f"{acl}:3: access is subscribe, publish or pubsub" in cp.stderr, cp.stderr
