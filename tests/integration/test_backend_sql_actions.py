"""SQL actions ({"action": {"sql": [...]}}) on every hookpoint, with the variables
the seed document lists for each, bound as parameters."""

from __future__ import annotations

import json

import pytest

from test_backend_common import scalar, seed_lines, sql, uid, wait_for, require_pg

pytestmark = pytest.mark.mqttd_only


def hook(point: str, n: int, statements, topic: str | None = None) -> str:
    obj = {"action": {"sql": statements}, "pool": "pool1"}
    if topic is not None:
        obj["topic"] = topic
    return f"backend.pgsql.hook.{point}.{n} = {json.dumps(obj)}"


@pytest.fixture
def action_table():
    require_pg()
    t = uid("act")
    sql(f"create table {t} (id serial, hook text, clientid text, username text, topic text, qos int, "
        f"retain int, msgid text, payload text, ts bigint, raw bytea)")
    yield t
    sql(f"drop table if exists {t}")


def test_every_hookpoint(start_broker, paho, action_table):
    t = action_table
    ins = f"insert into {t}(hook, clientid"
    lines = seed_lines(hooks=False) + [
        # The seed's own example for client.connected, with our table.
        hook("client.connected", 3, [f"{ins}) values('connected', ${{clientid}})"]),
        hook("client.disconnected", 1, [f"{ins}) values('disconnected', ${{clientid}})"]),
        hook("session.subscribed", 1, [f"{ins}, topic, qos) values('subscribed', ${{clientid}}, ${{topic}}, ${{qos}})"]),
        hook("session.unsubscribed", 1, [f"{ins}, topic) values('unsubscribed', ${{clientid}}, ${{topic}})"]),
        hook("message.publish", 1, [
            f"{ins}, topic, qos, retain, msgid, payload, ts, username, raw) values('publish', ${{clientid}}, "
            f"${{topic}}, ${{qos}}, ${{retain}}, ${{msgid}}, ${{payload}}, ${{timestamp}}, ${{username}}, ${{payload}})",
            f"{ins}, msgid) values('publish-second', ${{clientid}}, ${{msgid}})"]),
        hook("message.acked", 1, [f"{ins}, topic, msgid) values('acked', ${{clientid}}, ${{topic}}, ${{msgid}})"]),
        hook("message.delivered", 1, [
            f"{ins}, topic, msgid) values('delivered', ${{clientid}}, ${{topic}}, ${{msgid}})",
            # A failing statement does not stop the one after it. (In message.publish it
            # would fail the publisher's acknowledgement: see test_backend_durability.py.)
            "insert into no_such_table values (${msgid})",
            f"{ins}, msgid) values('delivered-second', ${{clientid}}, ${{msgid}})"], topic="act/#"),
    ]
    b = start_broker(lines)
    cid = uid("actor")
    c = paho(b, cid, username="alice")
    c.connect()
    c.subscribe("act/+", 1)
    c.publish("act/x", b"\x00\xffbin", qos=1, retain=True)
    m = c.get()
    assert m.payload == b"\x00\xffbin"
    c.publish("other/y", b"no delivery row", qos=0)
    c.unsubscribe("act/+")
    c.disconnect()

    def rows():
        return sql(f"select hook, clientid, username, topic, qos, retain, msgid, payload, ts, encode(raw, 'hex') "
                   f"from {t} order by id")
    got = wait_for(lambda: (r := rows()) and any(x[0] == "disconnected" for x in r) and r,
                   what="every hookpoint's row")
    by = {}
    for r in got:
        by.setdefault(r[0], []).append(r)
    assert set(by) == {"connected", "subscribed", "publish", "publish-second", "delivered", "delivered-second",
                       "acked", "unsubscribed", "disconnected"}
    assert by["connected"][0][1] == cid
    assert by["subscribed"][0][1:5] == [cid, None, "act/+", "1"]
    assert by["unsubscribed"][0][1:4] == [cid, None, "act/+"]
    assert len(by["publish"]) == 2  # act/x and other/y
    p = by["publish"][0]
    msgid = scalar("select msgid from mqtt_msg where sender = :'s'", s=cid)  # not stored: no function hooks
    assert msgid is None
    assert p[1:6] == [cid, "alice", "act/x", "1", "1"]
    assert p[6]  # msgid
    assert p[7] == "\\x00ff62696e"  # text column: the payload rule
    assert p[9] == "00ff62696e"     # bytea column: the raw bytes
    assert abs(int(p[8]) - int(scalar("select (extract(epoch from now()) * 1000)::bigint"))) < 60_000
    assert by["publish"][1][3:6] == ["other/y", "0", "0"]
    assert [r[6] for r in by["publish-second"]] == [r[6] for r in by["publish"]]
    assert by["delivered"][0][1] == cid and by["delivered"][0][3] == "act/x" and by["delivered"][0][6] == p[6]
    assert len(by["delivered"]) == 1  # the hook's topic filter
    assert [r[6] for r in by["delivered-second"]] == [p[6]]
    assert by["acked"][0][3] == "act/x" and by["acked"][0][6] == p[6]
    assert by["disconnected"][0][1] == cid
    assert "no_such_table" in b.log()


def test_injection_through_variables(start_broker, paho, action_table):
    t = action_table
    lines = seed_lines(hooks=False) + [
        hook("message.publish", 1, [f"insert into {t}(clientid, topic, payload) values (${{clientid}}, ${{topic}}, ${{payload}})"])]
    b = start_broker(lines)
    cid = "x'); DROP TABLE mqtt_msg;--"
    c = paho(b, cid)
    c.connect()
    c.publish("t/'); DROP TABLE mqtt_retain;--", b"'; TRUNCATE mqtt_client; --", qos=1)
    assert sql(f"select clientid, topic, payload from {t}") == [
        [cid, "t/'); DROP TABLE mqtt_retain;--", "'; TRUNCATE mqtt_client; --"]]
    assert scalar("select to_regclass('mqtt_msg') is not null and to_regclass('mqtt_retain') is not null") == "t"
