"""Shared by the PostgreSQL backend's integration tests (test_backend_*.py); it holds
no tests itself.

The tests start the real mqttd with the hook lines of etc/emqx_backend_pgsql.conf
(verbatim, the server's port replaced) against the PostgreSQL that scripts/test.sh
starts (MQTTD_PG_DSN, MQTTD_PG_PORT), and check the tables with psql. Without that
server they skip, or FAIL under CI=true.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_DSN = os.environ.get("MQTTD_PG_DSN", "")
PG_PORT = os.environ.get("MQTTD_PG_PORT", "")
PG_ENV = dict(os.environ, PGSSLMODE="disable", PGPASSFILE="/dev/null", PGSERVICEFILE="/dev/null",
              PGCONNECT_TIMEOUT="5")
NULL = "\x01"


def require_pg() -> None:
    if shutil.which("psql") is None:
        _missing("psql (Debian package postgresql-client)")
    if not PG_DSN or not PG_PORT:
        _missing("a PostgreSQL server: MQTTD_PG_DSN and MQTTD_PG_PORT (scripts/test.sh sets them)")


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is missing (CI=true: failing instead of skipping)", pytrace=False)
    pytest.skip(f"{what} is missing")


def uid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def sql(query: str, dsn: str | None = None, **params) -> list[list[str | None]]:
    """Runs `query` with psql; `:'name'` in it is the literal of params[name] (quoted
    by psql, never pasted). Returns the rows as lists of text (None for NULL)."""
    args = ["psql", dsn or PG_DSN, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-F", "\x1f", "-R", "\x1e", "-P", f"null={NULL}"]
    for k, v in params.items():
        args += ["-v", f"{k}={v}"]
    cp = subprocess.run(args, input=query, capture_output=True, text=True, timeout=30, env=PG_ENV)
    if cp.returncode != 0:
        raise AssertionError(f"psql failed ({cp.returncode}): {cp.stderr.strip()}\nquery: {query}")
    out = cp.stdout
    if out.endswith("\n"):
        out = out[:-1]
    if out == "":
        return []
    return [[None if f == NULL else f for f in rec.split("\x1f")] for rec in out.split("\x1e")]


def scalar(query: str, dsn: str | None = None, **params):
    rows = sql(query, dsn, **params)
    return rows[0][0] if rows else None


def wait_for(pred, timeout: float = 10.0, what: str = "condition", interval: float = 0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def seed_lines(port: str | int | None = None, hooks: bool = True) -> list[str]:
    """etc/emqx_backend_pgsql.conf's active lines, verbatim, with the server's port
    replaced (and without the hook lines when hooks=False)."""
    port = port or PG_PORT
    out = []
    for line in (REPO / "etc" / "emqx_backend_pgsql.conf").read_text().splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("backend.pgsql.pool1.server"):
            s = f"backend.pgsql.pool1.server = 127.0.0.1:{port}"
        if not hooks and s.startswith("backend.pgsql.hook."):
            continue
        out.append(s)
    return out


def start_pg_broker(start_broker, extra: list[str] | None = None, port=None, hooks: bool = True):
    require_pg()
    b = start_broker(seed_lines(port, hooks) + list(extra or []))
    return b


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (scripts/pg.sh), to stop and start at will
    without disturbing the shared one."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="mqttd-backend-pg-"))
        os.chmod(self.dir, 0o755)
        self.data = self.dir / "data"
        self.port = free_port()
        self.dsn = f"host=127.0.0.1 port={self.port} user=root password=public dbname=mqtt"
        self.running = False

    def start(self) -> None:
        if self.running:
            return
        cp = subprocess.run([str(REPO / "scripts" / "pg.sh"), "start", str(self.data), str(self.port)],
                            capture_output=True, text=True, timeout=120)
        if cp.returncode != 0:
            raise RuntimeError(f"pg.sh start failed: {cp.stdout}{cp.stderr}")
        self.running = True

    def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        subprocess.run([str(REPO / "scripts" / "pg.sh"), "stop", str(self.data)],
                       capture_output=True, text=True, timeout=60)

    def processes(self) -> list[int]:
        """The postmaster and its children."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        cp = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
        return [pid] + [int(p) for p in cp.stdout.split()]

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its connections but answers nothing."""
        for p in self.processes():
            os.kill(p, signal.SIGSTOP)

    def thaw(self) -> None:
        for p in self.processes():
            os.kill(p, signal.SIGCONT)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def private_postgres_available() -> bool:
    return Path("/usr/lib/postgresql/15/bin/initdb").exists()


def started_private_postgres() -> PrivatePostgres:
    """A running PrivatePostgres (skips, or fails under CI=true, without the server)."""
    require_pg()
    if not private_postgres_available():
        _missing("PostgreSQL 15 server binaries (/usr/lib/postgresql/15/bin)")
    pg = PrivatePostgres()
    pg.start()
    return pg
