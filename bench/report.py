"""REPORT.md and chart.svg from the result lines: medians of the repetitions, the
issue's targets beside what was measured, ratios, and the machine it ran on."""

from __future__ import annotations

import datetime
import html
import os
import pathlib
import platform
import statistics

from scenarios import MOSQUITTO, MQTTD, PG_ASYNC, PG_COMMIT, Scenario

COLORS = {MQTTD: "#2b6cb0", MOSQUITTO: "#c05621", PG_COMMIT: "#2f855a", PG_ASYNC: "#68d391"}


# ------------------------------------------------------------------ numbers

def get(result: dict, path: tuple[str, ...]):
    value = result
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


class Cell:
    """The runs of one scenario against one broker."""

    def __init__(self, runs: list[dict]):
        self.runs = runs
        self.good = [r for r in runs if r.get("complete")]

    def median(self, *path: str):
        values = [v for v in (get(r, path) for r in self.good) if isinstance(v, (int, float))]
        return statistics.median(values) if values else None

    def spread(self, *path: str) -> tuple[float, float] | None:
        values = [v for v in (get(r, path) for r in self.good) if isinstance(v, (int, float))]
        return (min(values), max(values)) if values else None

    def error(self) -> str | None:
        if self.good:
            return None
        errors = [r.get("error", "failed") for r in self.runs]
        return errors[0] if errors else "not run"


def cells(results: list[dict], scenario: Scenario) -> dict[str, Cell]:
    out = {}
    for broker in scenario.brokers:
        runs = [r for r in results if r.get("scenario") == scenario.key and r.get("label") == broker]
        if runs:
            out[broker] = Cell(runs)
    return out


def count(v, digits: int = 0) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def micros(v) -> str:
    if v is None:
        return "–"
    return f"{v:,.0f} µs" if v < 1000 else f"{v / 1000:,.1f} ms"


def per_op(c: "Cell") -> str:
    msg, connect = c.median("broker", "cpu_us_per_msg"), c.median("broker", "cpu_us_per_connect")
    if msg is not None:
        return f"{msg:,.1f} µs"
    return "–" if connect is None else f"{connect:,.0f} µs"


def spread_text(c: "Cell", sc: Scenario) -> str:
    r = c.spread(*sc.metric)
    if r is None:
        return "–"
    if sc.unit.startswith("µs"):
        return f"{micros(r[0])} – {micros(r[1])}"
    return f"{r[0]:,.0f} – {r[1]:,.0f} {sc.unit}"


def overlap(a: tuple | None, b: tuple | None) -> bool:
    return a is not None and b is not None and a[0] <= b[1] and b[0] <= a[1]


def ratio(a, b) -> float | None:
    return a / b if a is not None and b else None


def ratio_text(r) -> str:
    return "–" if r is None else f"{r:.2f}×"


# ------------------------------------------------------------------ machine

def machine() -> dict:
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    try:
        debian = pathlib.Path("/etc/debian_version").read_text().strip()
    except OSError:
        debian = "unknown"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "debian": debian,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg": os.getloadavg(),
    }


# ------------------------------------------------------------------ Markdown

def results_table(results: list[dict], scenarios: list[Scenario]) -> list[str]:
    lines = [
        "| scenario | broker | msgs/s | p50 | p99 | p99.9 | connects/s | drain | RSS | bytes / idle conn | broker CPU | CPU per msg or connect | PostgreSQL CPU | others' CPU | scenario's number, min–max of the repetitions |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for sc in scenarios:
        for broker, c in cells(results, sc).items():
            err = c.error()
            if err:
                lines.append(f"| {sc.key} | {broker} | failed: {err} |" + " |" * 12)
                continue
            connect = sc.key in ("connect-storm", "idle-connections")
            lat = "connect_latency_us" if connect else "latency_us"
            rss = c.median("broker", "rss_kib")
            if sc.key == "idle-connections":
                rss = c.median("idle", "rss_kib_after")
            db = c.median("db_cpu_pct")
            lines.append("| " + " | ".join([
                sc.key, broker,
                count(c.median("msgs_per_s")),
                micros(c.median(lat, "p50")), micros(c.median(lat, "p99")), micros(c.median(lat, "p999")),
                count(c.median("connects_per_s")),
                "–" if c.median("drain", "ms") is None else f"{c.median('drain', 'ms'):,.0f} ms",
                "–" if rss is None else f"{rss / 1024:,.1f} MiB",
                count(c.median("idle", "bytes_per_connection")),
                "–" if c.median("broker", "cpu_pct") is None else f"{c.median('broker', 'cpu_pct'):.0f} %",
                per_op(c),
                "–" if db is None else f"{db:.0f} %",
                "–" if c.median("other_cpu_pct") is None else f"{c.median('other_cpu_pct'):.0f} %",
                spread_text(c, sc),
            ]) + " |")
    return lines


def ratio_lines(results, scenarios, copy) -> list[str]:
    lines = ["| scenario | measure | mqttd ÷ mosquitto | mqttd p99 ÷ mosquitto p99 | after_commit ÷ mqttd | async ÷ mqttd | after_commit ÷ raw COPY |",
             "|---|---|--:|--:|--:|--:|--:|"]
    copy_rate = copy.get("rows_per_s") if copy else None
    for sc in scenarios:
        cs = cells(results, sc)
        value = {b: c.median(*sc.metric) for b, c in cs.items()}
        lat = "connect_latency_us" if sc.key in ("connect-storm", "idle-connections") else "latency_us"
        p99 = {b: c.median(lat, "p99") for b, c in cs.items()}
        per_copy = "–"
        if sc.metric == ("msgs_per_s",) and copy_rate and value.get(PG_COMMIT):
            per_copy = ratio_text(ratio(value.get(PG_COMMIT), copy_rate))
        lines.append("| " + " | ".join([
            sc.key, f"{sc.unit} ({'higher' if sc.higher_is_better else 'lower'} is better)",
            ratio_text(ratio(value.get(MQTTD), value.get(MOSQUITTO))),
            ratio_text(ratio(p99.get(MQTTD), p99.get(MOSQUITTO))),
            ratio_text(ratio(value.get(PG_COMMIT), value.get(MQTTD))),
            ratio_text(ratio(value.get(PG_ASYNC), value.get(MQTTD))),
            per_copy,
        ]) + " |")
    return lines


def verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("**met**" if ok else "**missed**")


def target_lines(results, scenarios, copy, quick) -> list[str]:
    by_key = {sc.key: sc for sc in scenarios}
    lines = ["| target | scenario | measured | verdict |", "|---|---|---|---|"]

    # 1. mqttd at least mosquitto's number, and a p99 no worse.
    for sc in scenarios:
        if sc.key == "idle-connections":
            continue
        cs = cells(results, sc)
        if MQTTD not in cs or MOSQUITTO not in cs:
            continue
        m, o = cs[MQTTD].median(*sc.metric), cs[MOSQUITTO].median(*sc.metric)
        lat = "connect_latency_us" if sc.key == "connect-storm" else "latency_us"
        mp, op = cs[MQTTD].median(lat, "p99"), cs[MOSQUITTO].median(lat, "p99")
        if m is None or o is None:
            lines.append(f"| mqttd ≥ mosquitto, p99 no worse | {sc.key} | incomplete | – |")
            continue
        better = m >= o if sc.higher_is_better else m <= o
        p99_ok = mp is None or op is None or mp <= op
        ok = better and p99_ok
        # A miss whose repetitions overlap the other broker's says so: on a shared machine
        # the spread can be larger than the difference.
        close = not ok and \
            (better or overlap(cs[MQTTD].spread(*sc.metric), cs[MOSQUITTO].spread(*sc.metric))) and \
            (p99_ok or overlap(cs[MQTTD].spread(lat, "p99"), cs[MOSQUITTO].spread(lat, "p99")))
        p99_text = "" if mp is None or op is None or sc.metric == (lat, "p99") else f"; p99 {micros(mp)} vs {micros(op)}"
        fmt = micros if sc.unit.startswith("µs") else (lambda v: f"{v:,.0f} {sc.unit}")
        note = " (within the spread of the repetitions)" if close else ""
        lines.append(f"| mqttd ≥ mosquitto, p99 no worse | {sc.key} | {fmt(m)} vs {fmt(o)}{p99_text} | {verdict(ok)}{note} |")

    # 2. Memory per idle connection at most twice mosquitto's.
    if "idle-connections" in by_key:
        cs = cells(results, by_key["idle-connections"])
        if MQTTD in cs and MOSQUITTO in cs:
            m = cs[MQTTD].median("idle", "bytes_per_connection")
            o = cs[MOSQUITTO].median("idle", "bytes_per_connection")
            ok = None if m is None or o is None else m <= 2 * o
            lines.append(f"| bytes per idle connection ≤ 2 × mosquitto's | idle-connections | "
                         f"{count(m)} vs {count(o)} (limit {count(None if o is None else 2 * o)}) | {verdict(ok)} |")

    # 3. Persisted QoS 1 under after_commit: half of non-persisted, half of raw COPY.
    copy_rate = copy.get("rows_per_s") if copy else None
    for key in ("p2p-qos1", "fanin-qos1"):
        if key not in by_key:
            continue
        cs = cells(results, by_key[key])
        if PG_COMMIT not in cs:
            reason = "not available" if not any(r.get("label") == PG_COMMIT for r in results) else "failed"
            lines.append(f"| after_commit ≥ 50 % of non-persisted | {key} | {reason} | – |")
            continue
        p, m = cs[PG_COMMIT].median("msgs_per_s"), cs[MQTTD].median("msgs_per_s") if MQTTD in cs else None
        r = ratio(p, m)
        lines.append(f"| after_commit ≥ 50 % of non-persisted | {key} | {count(p)} vs {count(m)} msgs/s "
                     f"({'–' if r is None else f'{100 * r:.0f} %'}) | {verdict(None if r is None else r >= 0.5)} |")
        rc = ratio(p, copy_rate)
        lines.append(f"| after_commit ≥ 50 % of raw COPY | {key} | {count(p)} vs {count(copy_rate)} rows/s "
                     f"({'–' if rc is None else f'{100 * rc:.0f} %'}) | {verdict(None if rc is None else rc >= 0.5)} |")

    # 4. Offline drain within 1 s.
    if "offline-drain" in by_key:
        sc = by_key["offline-drain"]
        for broker, c in cells(results, sc).items():
            if broker == MOSQUITTO:
                continue
            ms = c.median("drain", "ms")
            messages = get(c.runs[0], ("messages",))
            note = "" if not quick else f" (quick run: {messages:,} messages, not 10,000)"
            lines.append(f"| offline drain of 10,000 within 1 s | {broker} | "
                         f"{'failed: ' + str(c.error()) if ms is None else f'{ms:,.0f} ms'}{note} | "
                         f"{verdict(None if ms is None or quick else ms <= 1000)} |")
    return lines


def write_markdown(path: pathlib.Path, results, scenarios, copy, unavailable, info, settings, analysis) -> None:
    reps = settings["reps"]
    measured = {sc.key: len(cells(results, sc)[MQTTD].runs) for sc in scenarios if MQTTD in cells(results, sc)}
    more = [f"`{key}` {n}" for key, n in measured.items() if n > reps]
    repeated = f" ({', '.join(more)}: short scenarios, where one stall of the machine decides a measurement)" if more else ""
    out = [
        "# mqttd benchmark report",
        "",
        f"Written by `bench/run.sh{' --quick' if settings['quick'] else ''}` on {info['date']}: "
        f"{'a quick run' if settings['quick'] else 'the standard run'}, {reps} repetition{'s' if reps > 1 else ''} "
        f"of each scenario{repeated}, brokers alternating within each repetition; every number is the "
        "median of the repetitions. Raw result lines: `results.jsonl`; chart: `chart.svg`.",
        "",
        "## Machine",
        "",
        f"- CPU: {info['cpu']}, {info['cores']} cores; memory {info['memory_gib']} GiB",
        f"- Debian {info['debian']}, Linux {info['kernel']}",
        f"- Load average when the run began: {info['loadavg'][0]:.2f} (1 min), {info['loadavg'][1]:.2f} (5 min)",
        "",
        "The load generator (one process, one I/O thread; two in fan-in), the broker (mqttd: one I/O thread per "
        "core, so 2; mosquitto: single-threaded) and, for the persisted runs, PostgreSQL all share "
        "these 2 cores, and the machine is shared with other work: the column *others' CPU* is "
        "what the rest of the machine used during each measurement (percent of one core; 200 % "
        "is both cores). Everything runs over loopback (127.0.0.1), MQTT 3.1.1, one fresh broker "
        "process per measurement.",
        "",
        "Brokers: **mqttd** in memory; **mqttd+pg after_commit** and **mqttd+pg async**: mqttd with the "
        "hooks of `etc/emqx_backend_pgsql.conf` pointed at a private PostgreSQL 15 (fsync on), "
        "`backend.pgsql.publish_ack` as named; **mosquitto** 2.0 with `max_inflight_messages "
        "32` (mqttd's `mqtt.max_inflight`), `max_queued_messages 20000` (mqttd: `mqtt.max_mqueue_len = "
        "20000`), `persistence false`.",
        "",
    ]
    if unavailable:
        out += ["**Not available in this run:** " + "; ".join(f"{k}: {v}" for k, v in unavailable.items()), ""]

    out += ["## Targets of the issue", ""] + target_lines(results, scenarios, copy, settings["quick"]) + [""]
    out += ["## Results", "", "Latency: from the publisher's send to the subscriber's receipt (the send "
            "time travels in the payload; one process, steady clock); for the connection scenarios, "
            "from the TCP connect to CONNACK. RSS: the broker's resident memory at the end of the "
            "measurement. CPU: percent of one core during the measurement, and per delivered message "
            "(per accepted connection in the storm). PostgreSQL CPU: all its processes.",
            ""] + results_table(results, scenarios) + [""]
    out += ["## Ratios", ""] + ratio_lines(results, scenarios, copy) + [""]
    if copy:
        out += ["## Raw PostgreSQL COPY", "",
                f"`COPY mqtt_msg(msgid, sender, topic, qos, retain, payload, arrived) FROM STDIN` through psql, "
                f"{copy['rows']:,} rows shaped like the p2p scenario's (28-character msgid, 64-byte payload), "
                f"into the empty table with its indexes, one transaction, timed from psql's start to its end: "
                f"**{copy['rows_per_s']:,.0f} rows/s** (median of {len(copy['runs'])}). This is the physical limit "
                "for the persisted rates: the backend writes the same rows (plus the acks of "
                "`on_message_acked`: an `mqtt_acked` upsert per pointer and batch).", ""]
    out += ["## Scenarios", ""]
    for sc in scenarios:
        extra = "".join(f"; {b}: `{' '.join(a)}`" for b, a in sc.extra_args.items())
        out.append(f"- **{sc.key}**: {sc.title}. `mqtt_load {' '.join(sc.args)}`{extra}")
    out += ["", "Throughput scenarios publish as fast as an end-to-end window allows: a publisher keeps "
            "at most N messages not yet received by all its subscribers (`--window`), besides the "
            "32 QoS 1 messages awaiting PUBACK (`--inflight`). A PUBACK window alone lets a broker "
            "that acknowledges before it delivers pile messages up in its queues; the end-to-end "
            "window keeps every broker's queues bounded, so msgs/s is what it delivers and latency "
            "stays comparable (at saturation it is mostly window ÷ throughput). The paced scenario "
            "offers a fixed load both brokers sustain, so its latency is the broker's own.", ""]
    if analysis:
        out += [analysis.strip(), ""]
    path.write_text("\n".join(out))


# ------------------------------------------------------------------ SVG

def write_chart(path: pathlib.Path, results, scenarios, copy, subtitle: str) -> None:
    """One panel per scenario: a horizontal bar per broker for the scenario's number."""
    width, left, right = 900, 190, 130
    bar, gap, title_h = 18, 6, 34
    panels, y = [], 62
    for sc in scenarios:
        cs = cells(results, sc)
        values = {b: c.median(*sc.metric) for b, c in cs.items()}
        bars = [(b, v) for b, v in values.items() if v is not None]
        if not bars:
            continue
        reference = copy.get("rows_per_s") if copy and sc.key == "p2p-qos1" and PG_COMMIT in values else None
        top = max([v for _, v in bars] + ([reference] if reference else []))
        height = title_h + len(bars) * (bar + gap) + (bar + gap if reference else 0) + 16
        panels.append((sc, bars, reference, top, y))
        y += height
    total_h = y + 10

    scale = width - left - right
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total_h}" '
           f'viewBox="0 0 {width} {total_h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{total_h}" fill="white"/>',
           '<text x="20" y="28" font-size="16" font-weight="bold">mqttd vs mosquitto, in memory and '
           'persisted to PostgreSQL (medians)</text>',
           f'<text x="20" y="46" fill="#555">{html.escape(subtitle)}</text>']
    for sc, bars, reference, top, y0 in panels:
        better = "higher is better" if sc.higher_is_better else "lower is better"
        svg.append(f'<text x="20" y="{y0 + 20}" font-weight="bold">{html.escape(sc.key)}</text>'
                   f'<text x="{left}" y="{y0 + 20}" fill="#555">{html.escape(sc.unit)}, {better}</text>')
        yy = y0 + title_h
        rows = list(bars) + ([("raw COPY (rows/s)", reference)] if reference else [])
        for broker, v in rows:
            w = max(1.0, scale * v / top) if top else 1.0
            color = COLORS.get(broker, "#a0aec0")
            svg.append(f'<text x="{left - 8}" y="{yy + bar - 5}" text-anchor="end">{html.escape(broker)}</text>'
                       f'<rect x="{left}" y="{yy}" width="{w:.1f}" height="{bar}" fill="{color}"/>'
                       f'<text x="{left + w + 6:.1f}" y="{yy + bar - 5}">{v:,.0f}</text>')
            yy += bar + gap
    svg.append("</svg>")
    path.write_text("\n".join(svg) + "\n")
