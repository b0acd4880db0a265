"""The benchmark run behind bench/run.sh: builds mqttd and the load generator (release),
starts a private PostgreSQL, measures raw COPY ingest, runs the standard scenarios
against each broker (alternating brokers within each repetition) and writes
bench/results/: REPORT.md, chart.svg and results.jsonl.

    bench/run.sh [--quick] [--reps N] [--only SCENARIO[,SCENARIO...]]
    bench/run.sh --report-only      REPORT.md and chart.svg again from results.jsonl

results.jsonl holds everything the report needs: a first line describing the run (the
machine, the settings, what was not available), the COPY measurement, then one line per
measurement as the load generator printed it, with the runner's fields added.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import shutil
import statistics
import subprocess
import sys
import time

import report
from brokers import ROOT, Broker, Mosquitto, Mqttd, PostgreSQL, Running
from scenarios import MOSQUITTO, MQTTD, PG_ASYNC, PG_COMMIT, Scenario, standard

BUILD = ROOT / "build-bench"
LOAD = BUILD / "bench" / "mqtt_load"
MQTTD_BIN = BUILD / "mqttd"
RESULTS = ROOT / "bench" / "results"
WORK = BUILD / "bench-work"
ANALYSIS = RESULTS / "analysis.md"
# A run that takes longer than this has hung; the generator stops itself well before.
LOAD_TIMEOUT_S = 180


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def build() -> None:
    say("building mqttd and mqtt_load (release) ...")
    if (BUILD / "build.ninja").exists():
        options = json.loads(subprocess.run(["meson", "introspect", "--buildoptions", str(BUILD)],
                                            capture_output=True, text=True, check=True).stdout)
        if next(o["value"] for o in options if o["name"] == "buildtype") != "release":
            subprocess.run(["meson", "configure", str(BUILD), "--buildtype=release"], check=True,
                           stdout=subprocess.DEVNULL)
    env = {**os.environ, "MQTTD_TARGETS": "mqttd bench/mqtt_load"}
    subprocess.run([str(ROOT / "scripts" / "build.sh"), str(BUILD), "--buildtype=release"], env=env, check=True)


def raise_descriptor_limit() -> None:
    """The brokers inherit it: 10,000 idle connections need more than the usual 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def without_paths(text: str) -> str:
    return text.replace(str(WORK), "<work>").replace(str(ROOT), ".")


def run_load(args: list[str], running: Running, label: str, db_pids: list[int]) -> dict:
    cmd = [str(LOAD), *args, "--port", str(running.port), "--broker-pid", str(running.pid), "--label", label]
    if db_pids:
        cmd += ["--db-pids", ",".join(map(str, db_pids))]
    try:
        # Progress lines (stderr) go straight to the terminal.
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=LOAD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"complete": False, "error": "the load generator did not finish"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"complete": False, "error": f"the load generator exited with {proc.returncode} and no result"}
    return json.loads(lines[-1])


def log_tail(broker: Broker) -> str:
    log = WORK / f"{broker.key.replace(' ', '_')}.log"
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return without_paths(lines[-1]) if lines else ""


def measure(scenario: Scenario, broker: Broker, rep: int, pg: PostgreSQL) -> dict:
    if broker.persisted:
        pg.reset()
    load_before = os.getloadavg()[0]
    running = broker.start(WORK)
    if running is None:
        result = {"complete": False, "error": f"the broker did not start ({log_tail(broker)})"}
    else:
        try:
            args = scenario.args + scenario.extra_args.get(broker.key, []) + ["--id-prefix", f"r{rep}"]
            result = run_load(args, running, broker.key, pg.pids() if broker.persisted else [])
            if not running.alive():
                result["complete"] = False
                result["error"] = f"the broker exited during the run ({log_tail(broker)})"
        finally:
            running.stop()
    result["pattern"] = result.pop("scenario", None)
    result.update({"scenario": scenario.key, "label": broker.key, "rep": rep, "loadavg_before": round(load_before, 2)})
    return result


def probe_backend(broker: Broker, pg: PostgreSQL) -> str | None:
    """None when mqttd with the backend hooks starts and stores a QoS 1 message; else why not."""
    pg.reset()
    running = broker.start(WORK)
    if running is None:
        return f"mqttd with the backend hooks did not start ({log_tail(broker)})"
    try:
        result = run_load(["--scenario", "p2p", "--publishers", "1", "--rate", "50", "--warmup", "0",
                           "--duration", "1", "--timeout", "20"], running, broker.key, [])
        time.sleep(0.5)
        if not running.alive():
            return f"mqttd with the backend hooks exited ({log_tail(broker)})"
        if not result.get("complete"):
            return f"mqttd with the backend hooks did not pass messages ({result.get('error')})"
        stored = int(pg.psql("SELECT count(*) FROM mqtt_msg"))
        if stored == 0:
            return "mqttd with the backend hooks stored no message in mqtt_msg"
    finally:
        running.stop()
    return None


def copy_rows(path: pathlib.Path, rows: int, pairs: int) -> None:
    """Rows as the backend writes them for the p2p scenario: mqttd's msgid form (hex time,
    pid and counter), the publisher's client id and topic, QoS 1, a 64-byte text payload."""
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    prefix = f"{int(time.time() * 1e6):013X}{os.getpid() & 0xFFFF:04X}"
    with path.open("w") as f:
        for i in range(rows):
            pub = i % pairs
            payload = f"{time.monotonic_ns():016x}{pub:08x}".ljust(64, "x")
            f.write(f"{prefix}{i:011X}\tr0-pub-{pub}\tbench/p2p/{pub}\t1\t0\t{payload}\t{now}\n")


def copy_benchmark(pg: PostgreSQL, rows: int, reps: int, pairs: int) -> dict:
    say(f"raw COPY of {rows:,} rows into mqtt_msg ...")
    data = WORK / "copy.tsv"
    copy_rows(data, rows, pairs)
    rates = []
    for _ in range(reps):
        pg.reset()
        with data.open() as f:
            started = time.monotonic()
            pg.psql("COPY mqtt_msg(msgid, sender, topic, qos, retain, payload, arrived) FROM STDIN", stdin=f)
            rates.append(rows / (time.monotonic() - started))
    pg.reset()
    data.unlink()
    result = {"scenario": "pg-copy", "rows": rows, "rows_per_s": round(statistics.median(rates)),
              "runs": [round(r) for r in rates], "complete": True}
    say(f"  {result['rows_per_s']:,} rows/s")
    return result


def load_results(path: pathlib.Path) -> tuple[dict, dict | None, list[dict]]:
    run, copy, results = {}, None, []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.get("scenario") == "run":
            run = record
        elif record.get("scenario") == "pg-copy":
            copy = record
        else:
            results.append(record)
    return run, copy, results


def write_report(run: dict, copy: dict | None, results: list[dict]) -> None:
    scenarios = [sc for sc in standard(run["quick"]) if sc.key in run["scenarios"]]
    info = run["machine"]
    analysis = ANALYSIS.read_text() if ANALYSIS.exists() else ""
    report.write_markdown(RESULTS / "REPORT.md", results, scenarios, copy, run.get("unavailable", {}), info,
                          {"quick": run["quick"], "reps": run["reps"]}, analysis)
    report.write_chart(RESULTS / "chart.svg", results, scenarios, copy,
                       f"{'quick run' if run['quick'] else 'standard run'}, {run['reps']} repetition(s), "
                       f"{info['date']}; {info['cores']} cores ({info['cpu']}) shared by broker, load "
                       "generator and PostgreSQL")


def main() -> int:
    parser = argparse.ArgumentParser(description="mqttd benchmark: the standard scenarios against mqttd, "
                                                 "mqttd with the PostgreSQL backend, and mosquitto")
    parser.add_argument("--quick", action="store_true", help="fewer clients, shorter runs, one repetition")
    parser.add_argument("--reps", type=int, help="repetitions of each scenario (default 3, quick 1)")
    parser.add_argument("--only", help="comma-separated scenario keys")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: write REPORT.md and chart.svg from results.jsonl")
    args = parser.parse_args()
    if args.report_only:
        write_report(*load_results(RESULTS / "results.jsonl"))
        return 0
    reps = args.reps or (1 if args.quick else 3)
    started = time.monotonic()

    build()
    raise_descriptor_limit()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    info = report.machine()

    scenarios = standard(args.quick)
    if args.only:
        wanted = set(args.only.split(","))
        scenarios = [s for s in scenarios if s.key in wanted]

    run = {"scenario": "run", "machine": info, "quick": args.quick, "reps": reps,
           "scenarios": [sc.key for sc in scenarios]}
    pg = PostgreSQL()
    results: list[dict] = []
    copy = None
    try:
        brokers: dict[str, Broker] = {
            MQTTD: Mqttd(MQTTD_BIN),
            MOSQUITTO: Mosquitto(),
            PG_COMMIT: Mqttd(MQTTD_BIN, pg, "after_commit"),
            PG_ASYNC: Mqttd(MQTTD_BIN, pg, "async"),
        }
        say("starting a private PostgreSQL ...")
        try:
            pg.start()
            reason = probe_backend(brokers[PG_COMMIT], pg)
        except subprocess.CalledProcessError as e:
            reason = f"the private PostgreSQL did not start ({e})"
        unavailable: dict[str, str] = {}
        if reason:
            say(f"persisted scenarios not available: {reason}")
            unavailable = {PG_COMMIT: reason, PG_ASYNC: reason}
        else:
            copy = copy_benchmark(pg, 50_000 if args.quick else 200_000, reps, 100 if args.quick else 300)

        run["unavailable"] = unavailable
        with (RESULTS / "results.jsonl").open("w") as out:
            out.write(json.dumps(run) + "\n")
            if copy:
                out.write(json.dumps(copy) + "\n")
            for sc in scenarios:
                times = reps * sc.repeat
                for rep in range(1, times + 1):
                    for key in sc.brokers:
                        if key in unavailable:
                            continue
                        say(f"== {sc.key}, repetition {rep}/{times}: {key}")
                        result = measure(sc, brokers[key], rep, pg)
                        if not result.get("complete"):
                            say(f"   incomplete: {result.get('error')}")
                        results.append(result)
                        out.write(json.dumps(result) + "\n")
                        out.flush()
    finally:
        pg.stop()

    write_report(run, copy, results)
    say(f"done in {time.monotonic() - started:.0f} s: bench/results/REPORT.md, chart.svg, results.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
