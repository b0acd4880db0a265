"""The brokers under test, and the private PostgreSQL that the persisted ones write to.

Every measurement gets a fresh broker process on a free loopback port, so each starts
with the same memory and no state left by the one before.
"""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parent.parent
PG_SCRIPT = ROOT / "scripts" / "pg.sh"
HOOKS_CONF = ROOT / "etc" / "emqx_backend_pgsql.conf"
MOSQUITTO = "/usr/sbin/mosquitto"

# mqttd's default window per client, given to mosquitto too.
MAX_INFLIGHT = 32
# Room for the offline-drain scenario's 10,000 messages in one session's queue.
MAX_QUEUED = 20000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def stop_process(proc: subprocess.Popen, grace: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class PostgreSQL:
    """A private cluster (scripts/pg.sh) on a free port: role root/public, database mqtt,
    the schema loaded."""

    def __init__(self) -> None:
        # Under /tmp like the test runner's: the server runs as the postgres user, which
        # must be able to reach its data directory.
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="mqttd-bench-pg."))
        self.dir.chmod(0o755)
        self.data = self.dir / "data"
        self.port = free_port()

    def start(self) -> None:
        subprocess.run([str(PG_SCRIPT), "start", str(self.data), str(self.port)], check=True)

    def stop(self) -> None:
        subprocess.run([str(PG_SCRIPT), "stop", str(self.data)], check=False)
        subprocess.run(["rm", "-rf", str(self.dir)], check=False)

    def psql(self, sql: str, stdin=None) -> str:
        out = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "root", "-d", "mqtt",
             "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
            stdin=stdin, capture_output=True, text=True, check=True,
            env={**os.environ, "PGPASSWORD": "public", "PGSSLMODE": "disable"})
        return out.stdout.strip()

    def reset(self) -> None:
        """Empty tables and a checkpoint behind, so every run writes into the same state."""
        self.psql("TRUNCATE mqtt_msg, mqtt_acked, mqtt_client, mqtt_sub, mqtt_retain RESTART IDENTITY")
        self.psql("CHECKPOINT")

    def pids(self) -> list[int]:
        """The postmaster and all its children (the backends serving the broker, the WAL
        writer, the checkpointer...)."""
        try:
            master = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        pids = [master]
        for entry in pathlib.Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            if int(fields[1]) == master:
                pids.append(int(entry.name))
        return pids


@dataclass
class Running:
    pid: int
    port: int
    proc: subprocess.Popen

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        stop_process(self.proc)


class Broker:
    """How to start one broker configuration on a port."""

    key: str          # in results.jsonl and the report
    persisted = False

    def command(self, port: int, workdir: pathlib.Path) -> list[str]:
        raise NotImplementedError

    def start(self, workdir: pathlib.Path) -> Running | None:
        port = free_port()
        log = open(workdir / f"{self.key.replace(' ', '_')}.log", "ab")
        proc = subprocess.Popen(self.command(port, workdir), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        log.close()
        if not wait_for_port(port, proc):
            stop_process(proc)
            return None
        return Running(proc.pid, port, proc)


class Mqttd(Broker):
    def __init__(self, binary: pathlib.Path, pg: PostgreSQL | None = None, publish_ack: str | None = None):
        self.binary = binary
        self.pg = pg
        self.publish_ack = publish_ack
        self.persisted = pg is not None
        self.key = f"mqttd+pg {publish_ack}" if pg else "mqttd"

    def command(self, port: int, workdir: pathlib.Path) -> list[str]:
        base = workdir / f"mqttd-{port}.conf"
        base.write_text(
            f"listener.tcp.bench = 127.0.0.1:{port}\n"
            "log.level = warning\n"
            "sys_interval = 0\n"
            f"mqtt.max_inflight = {MAX_INFLIGHT}\n"
            f"mqtt.max_mqueue_len = {MAX_QUEUED}\n")
        files = [base]
        if self.pg:
            # The shipped hooks as they are; only the server and the ack mode change.
            override = workdir / f"mqttd-{port}-pg.conf"
            override.write_text(
                f"backend.pgsql.pool1.server = 127.0.0.1:{self.pg.port}\n"
                f"backend.pgsql.publish_ack = {self.publish_ack}\n")
            files += [HOOKS_CONF, override]
        cmd = [str(self.binary)]
        for f in files:
            cmd += ["-c", str(f)]
        return cmd


class Mosquitto(Broker):
    key = "mosquitto"

    def command(self, port: int, workdir: pathlib.Path) -> list[str]:
        conf = workdir / f"mosquitto-{port}.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\n"
            "allow_anonymous true\n"
            f"max_inflight_messages {MAX_INFLIGHT}\n"
            f"max_queued_messages {MAX_QUEUED}\n"
            "persistence false\n"
            "sys_interval 0\n"
            "log_dest stderr\n"
            "log_type error\n"
            "log_type warning\n")
        return [MOSQUITTO, "-c", str(conf)]
