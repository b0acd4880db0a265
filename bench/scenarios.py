"""The standard scenarios, scaled to a 2-core machine on which the load generator and,
for the persisted runs, PostgreSQL share the cores with the broker.

Throughput scenarios publish as fast as an end-to-end window allows (a publisher has at
most N messages not yet received by all its subscribers), so they measure what the
broker delivers without letting its queues grow without bound; the paced scenario
offers a fixed load that both brokers sustain, so its latency is the broker's own and
not queueing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MQTTD = "mqttd"
MOSQUITTO = "mosquitto"
PG_COMMIT = "mqttd+pg after_commit"
PG_ASYNC = "mqttd+pg async"
ALL = (MQTTD, MOSQUITTO, PG_COMMIT, PG_ASYNC)
IN_MEMORY = (MQTTD, MOSQUITTO)


@dataclass
class Scenario:
    key: str
    title: str
    args: list[str]
    brokers: tuple[str, ...]
    # The number the scenario is about, a path into the result line, and whether more is better.
    metric: tuple[str, ...]
    unit: str
    higher_is_better: bool = True
    extra_args: dict[str, list[str]] = field(default_factory=dict)  # per broker
    # Measurements per repetition of the run, for scenarios short enough that one stall of
    # the machine decides a single measurement.
    repeat: int = 1


def standard(quick: bool) -> list[Scenario]:
    def pick(full, fast):
        return fast if quick else full

    timing = ["--warmup", pick("2", "1"), "--duration", pick("5", "2")]
    pairs = pick(300, 100)
    subscribers = pick(1000, 200)
    fanin_publishers = pick(1000, 200)
    storm = pick(5000, 1000)
    idle = pick(10000, 2000)
    drain = pick(10000, 2000)
    return [
        Scenario("p2p-qos1", f"point-to-point QoS 1: {pairs} pairs, 64-byte payload, "
                 "window 16 per publisher, as fast as it allows",
                 ["--scenario", "p2p", "--publishers", str(pairs), "--qos", "1", "--payload", "64",
                  "--window", "16"] + timing,
                 ALL, ("msgs_per_s",), "msgs/s"),
        Scenario("p2p-qos1-paced", f"point-to-point QoS 1 at a fixed load: {pairs} pairs x 20 msgs/s "
                 f"= {pairs * 20:,} msgs/s offered",
                 ["--scenario", "p2p", "--publishers", str(pairs), "--qos", "1", "--payload", "64",
                  "--rate", "20"] + timing,
                 ALL, ("latency_us", "p99"), "µs p99", higher_is_better=False),
        Scenario("fanout-qos0", f"fan-out QoS 0: 5 publishers -> {subscribers:,} subscribers of one topic, "
                 "window 4 messages per publisher",
                 ["--scenario", "fanout", "--publishers", "5", "--subscribers", str(subscribers), "--qos", "0",
                  "--payload", "64", "--window", "4"] + timing,
                 IN_MEMORY, ("msgs_per_s",), "msgs/s"),
        # 16 members: with fewer, each member's 32-message window over the ack round trip,
        # not the broker, bounds the rate (4 members: both brokers stop at the same ~19 k/s).
        # Two load-generator threads: with one, the load generator used all of its core
        # (99-100 %) against either broker, so the scenario measured it and its queues.
        Scenario("fanin-qos1", f"fan-in QoS 1: {fanin_publishers:,} publishers -> shared subscription "
                 "$share/bench/... of 16 subscribers, window 2 per publisher, 2 load-generator threads",
                 ["--scenario", "fanin", "--publishers", str(fanin_publishers), "--subscribers", "16", "--shared",
                  "--qos", "1", "--payload", "64", "--window", "2", "--threads", "2"] + timing,
                 ALL, ("msgs_per_s",), "msgs/s"),
        # A storm lasts under half a second, and the machine stops a core for 10-40 ms a few
        # times in it (bench/results/analysis.md): three measurements per repetition.
        Scenario("connect-storm", f"connection storm: {storm:,} clients connecting, at most 100 handshakes "
                 "under way, held open",
                 ["--scenario", "storm", "--connections", str(storm), "--connect-concurrency", "100"],
                 ALL, ("connects_per_s",), "connects/s", repeat=3),
        Scenario("idle-connections", f"{idle:,} idle connections: broker RSS growth per connection",
                 ["--scenario", "idle", "--connections", str(idle), "--connect-concurrency", "100"],
                 (MQTTD, MOSQUITTO, PG_COMMIT), ("idle", "bytes_per_connection"), "bytes/conn",
                 higher_is_better=False),
        Scenario("offline-drain", f"offline drain: {drain:,} QoS 1 messages published while the subscriber "
                 "is away; time from its CONNECT to the last message (persistent session; with the "
                 "backend: clean session and SUBSCRIBE, served by on_message_fetch)",
                 ["--scenario", "drain", "--messages", str(drain)],
                 ALL, ("drain", "ms"), "ms", higher_is_better=False,
                 extra_args={PG_COMMIT: ["--resubscribe"], PG_ASYNC: ["--resubscribe"]}),
    ]
