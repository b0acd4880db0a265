"""Topic filters (MQTT 3.1.1 section 4.7): `+`, `#`, empty levels and `$` topics."""

import pytest

TOPICS = ["sport", "sport/", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking",
          "sport/tennis/player2", "sport/golf", "/finance", "finance", "a//b", "a/x/b", "a/b",
          "Sport/tennis"]

CASES = {
    "sport/tennis/player1/#": {"sport/tennis/player1", "sport/tennis/player1/ranking"},
    "sport/#": {"sport", "sport/", "sport/tennis", "sport/tennis/player1",
                "sport/tennis/player1/ranking", "sport/tennis/player2", "sport/golf"},
    "sport/tennis/+": {"sport/tennis/player1", "sport/tennis/player2"},
    "sport/+": {"sport/", "sport/tennis", "sport/golf"},
    "+": {"sport", "finance"},
    "+/+": {"sport/", "sport/tennis", "sport/golf", "/finance", "a/b", "Sport/tennis"},
    "/+": {"/finance"},
    "+/tennis/#": {"sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking",
                   "sport/tennis/player2", "Sport/tennis"},
    "a/+/b": {"a//b", "a/x/b"},
    "#": set(TOPICS),
    "sport/tennis/player1": {"sport/tennis/player1"},
}


def _check_filter(broker, paho, flt, expected, name):
    sub = paho(broker, name)
    sub.connect()
    assert sub.subscribe(flt, 1) == (1,)
    pub = paho(broker, name + "-pub")
    pub.connect()
    for t in TOPICS:
        pub.publish(t, t.encode(), qos=1)
    pub.publish("end/marker", b"end", qos=1)
    got = sub.drain(0.7) if flt != "#" else sub.drain(1.0)
    topics = [m.topic for m in got if m.topic != "end/marker"]
    assert sorted(topics) == sorted(expected), flt
    for m in got:
        assert m.payload == (b"end" if m.topic == "end/marker" else m.topic.encode())


@pytest.mark.parametrize("flt", list(CASES))
def test_topic_filter_matching(broker, paho, flt):
    _check_filter(broker, paho, flt, CASES[flt], "wild")


def test_filters_mosquitto_sub(broker, mosq):
    """Several filters in one subscriber; each message delivered once even when it
    matches more than one of them."""
    sub = mosq.sub(broker, ["sport/+", "+/tennis/#"], qos=1)
    for t in TOPICS:
        mosq.pub(broker, t, t, qos=1)
    expected = CASES["sport/+"] | CASES["+/tennis/#"]
    got = sub.collect(len(expected), timeout=10)
    assert sorted(m.topic for m in got) == sorted(expected)
    sub.expect_none(0.5)


def test_filters_mqttjs(broker, mqttjs, paho):
    js = mqttjs(broker, clientId="wild-js")
    js.connect()
    js.subscribe("a/+/b", 0)
    js.subscribe("/+", 0)
    pub = paho(broker, "wild-js-pub")
    pub.connect()
    for t in TOPICS:
        pub.publish(t, t.encode(), qos=1)
    expected = CASES["a/+/b"] | CASES["/+"]
    got = js.collect(len(expected))
    assert sorted(m.topic for m in got) == sorted(expected)
    js.expect_none(0.5)


def test_topics_are_case_sensitive(broker, paho):
    sub = paho(broker, "case")
    sub.connect()
    sub.subscribe("sport/tennis", 1)
    pub = paho(broker, "case-pub")
    pub.connect()
    pub.publish("Sport/tennis", b"upper", qos=1)
    pub.publish("sport/Tennis", b"upper2", qos=1)
    pub.publish("sport/tennis", b"lower", qos=1)
    assert [m.payload for m in sub.drain(0.7)] == [b"lower"]


def test_unicode_topic(broker, paho, mqttjs):
    topic = "caf\u00e9/\u6e29\u5ea6/\U0001F600"
    sub = paho(broker, "utf8-sub")
    sub.connect()
    sub.subscribe("caf\u00e9/+/#", 1)
    js = mqttjs(broker, clientId="utf8-js")
    js.connect()
    js.publish(topic, "uni", qos=1)
    m = sub.get()
    assert (m.topic, m.payload) == (topic, b"uni")


# ----- $ topics --------------------------------------------------------------------

def test_leading_wildcard_does_not_match_dollar_topics(start_broker, paho):
    """[MQTT-4.7.2-1]: `#` and `+/...` do not match topics starting with `$`; `$SYS/#`
    does get the broker's $SYS topics (published every sys_interval)."""
    b = start_broker(["sys_interval = 1s"])
    everything = paho(b, "dollar-all")
    everything.connect()
    everything.subscribe([("#", 0), ("+/broker/#", 0), ("+/+", 0)])
    sys_sub = paho(b, "dollar-sys")
    sys_sub.connect()
    sys_sub.subscribe("$SYS/#", 0)
    sys_msgs = sys_sub.drain(2.5)
    assert sys_msgs and all(m.topic.startswith("$SYS/") for m in sys_msgs)
    got = everything.drain(0.5)
    assert not [m for m in got if m.topic.startswith("$")], got


def test_client_published_dollar_topic_not_matched_by_wildcards(broker, paho):
    """Whether a client may publish to a `$` topic is the server's choice; either way,
    filters starting with a wildcard must not match it."""
    wild = paho(broker, "dollar-wild")
    wild.connect()
    wild.subscribe([("#", 1), ("+/+", 1), ("+/B", 1)])
    pub = paho(broker, "dollar-pub")
    pub.connect()
    pub.publish("$TopicA/B", b"dollar", qos=1)
    pub.publish("TopicA/B", b"plain", qos=1)
    got = wild.drain(1.0)
    assert {m.topic for m in got} == {"TopicA/B"}, got
