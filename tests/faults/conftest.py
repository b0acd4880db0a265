"""Fixtures for the fault-injection tests (tests/faults).

The broker fixture and the paho clients are the integration tests' (imported from
tests/integration, not copied); PostgreSQL clusters of the tests' own come from there
too (PrivatePostgres), and this file adds two variants: one inside a network namespace
of its own reached over a veth pair (to cut the connection without a FIN), and one whose
data directory is on a small tmpfs (to fill the disk). Every namespace, link, qdisc and
mount is removed in the fixture's finalizer.

Environment: MQTTD_BIN, MQTTD_PG_DSN / MQTTD_PG_PORT (as for the integration tests),
MQTTD_LOAD_BIN (default build/bench/mqtt_load), MQTTD_FAULTS_SOAK=1 (longer runs, more
faults), MQTTD_FAULTS_SEED (replays a fault schedule), MQTTD_FAULTS_REPORT (the JSON
lines of figures; default: faults-report.jsonl in the session's tmp dir),
MQTTD_FAULTS_PHASE_LIMIT (seconds per test phase). Under CI=true a missing tool fails.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

import faults_common as fc
from faults_common import (PrivatePostgres, Report, ic, missing, private_pg_or_missing)

# The integration tests' fixtures, by reference.
start_broker = ic.start_broker
paho = ic.paho
paho5 = ic.paho5


def pytest_report_header(config):
    return (f"fault-injection tests: {'soak' if fc.SOAK else 'CI'} variant; "
            f"mqttd {os.environ.get('MQTTD_BIN') or fc.REPO / 'build' / 'mqttd'}")


@pytest.fixture(scope="session")
def report(tmp_path_factory) -> Report:
    path = os.environ.get("MQTTD_FAULTS_REPORT")
    r = Report(Path(path) if path else tmp_path_factory.getbasetemp() / "faults-report.jsonl")
    yield r
    print(f"\nfault-injection figures: {r.path}")


def _run(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    cp = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and cp.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({cp.returncode}): {cp.stderr.strip()}")
    return cp


# ---------------------------------------------------------------------------
# PostgreSQL clusters
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def private_pg():
    """A PostgreSQL of the module's own, to stop, kill and freeze."""
    private_pg_or_missing()
    pg = PrivatePostgres()
    pg.start()
    yield pg
    try:
        fc.pg_signal(pg, signal.SIGCONT)
    except (OSError, ValueError):
        pass
    pg.remove()


class NetnsPostgres(PrivatePostgres):
    """A PostgreSQL in a network namespace created for it, listening on the private
    address of its end of a veth pair; the root namespace has the other end. cut()
    drops every packet of its TCP port on both ends (no FIN, no RST); heal(keep_cut)
    lets new connections through while the connections named stay black-holed, as
    after a NAT or firewall forgot them."""

    def __init__(self):
        super().__init__()
        tag = f"{random.randrange(16 ** 5):05x}"
        self.ns = f"mqf{tag}"
        self.veth_host, self.veth_pg = f"mqf{tag}h", f"mqf{tag}p"
        used = _run("ip", "-4", "addr").stdout + _run("ip", "-4", "route").stdout
        for _ in range(100):
            net = f"10.213.{random.randrange(1, 255)}"
            if f"{net}." not in used:
                break
        self.host_addr, self.pg_addr = f"{net}.1", f"{net}.2"
        self.net = f"{net}.0/30"
        self.dsn = f"host={self.pg_addr} port={self.port} user=root password=public dbname=mqtt"
        self.made_ns = self.made_link = False
        self.cut_active = False
        self.initialised = False

    def setup(self) -> None:
        _run("ip", "netns", "add", self.ns)
        self.made_ns = True
        _run("ip", "link", "add", self.veth_host, "type", "veth", "peer", "name", self.veth_pg)
        self.made_link = True
        _run("ip", "link", "set", self.veth_pg, "netns", self.ns)
        _run("ip", "addr", "add", f"{self.host_addr}/30", "dev", self.veth_host)
        _run("ip", "link", "set", self.veth_host, "up")
        self._ns("ip", "addr", "add", f"{self.pg_addr}/30", "dev", self.veth_pg)
        self._ns("ip", "link", "set", self.veth_pg, "up")
        self._ns("ip", "link", "set", "lo", "up")

    def _ns(self, *args: str, check: bool = True, timeout: float = 30):
        return _run("ip", "netns", "exec", self.ns, *args, check=check, timeout=timeout)

    def start(self) -> None:
        if self.running:
            return
        if not self.initialised:
            # initdb, the role, the database and the schema, over the namespace's loopback
            cp = self._ns(str(fc.REPO / "scripts" / "pg.sh"), "start", str(self.data), str(self.port),
                          check=False, timeout=120)
            if cp.returncode != 0:
                raise RuntimeError(f"pg.sh start in {self.ns} failed: {cp.stdout}{cp.stderr}")
            _run(str(fc.REPO / "scripts" / "pg.sh"), "stop", str(self.data), timeout=60)
            with open(self.data / "pg_hba.conf", "a") as f:
                f.write(f"host all all {self.net} trust\n")
            self.initialised = True
        self._ns("runuser", "-u", "postgres", "--", str(fc.PG_BIN / "pg_ctl"), "-D", str(self.data),
                 "-l", str(self.data / "server.log"), "-w", "-t", "60", "-o",
                 f"-p {self.port} -k {self.data} -c listen_addresses={self.pg_addr} -c fsync=on "
                 "-c max_connections=200", "start", timeout=90)
        self.running = True

    # the cut: an htb root qdisc on each end whose class 1:2 leads to a pfifo of
    # length 0, so a packet classified there is dropped
    def _qdisc(self, ns: bool) -> None:
        run = self._ns if ns else _run
        dev = self.veth_pg if ns else self.veth_host
        run("tc", "qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default", "1")
        run("tc", "class", "replace", "dev", dev, "parent", "1:", "classid", "1:1", "htb", "rate", "10gbit")
        run("tc", "class", "replace", "dev", dev, "parent", "1:", "classid", "1:2", "htb", "rate", "10gbit")
        run("tc", "qdisc", "replace", "dev", dev, "parent", "1:2", "handle", "20:", "pfifo", "limit", "0")

    def _drop(self, ns: bool, field: str, port: int) -> None:
        run = self._ns if ns else _run
        dev = self.veth_pg if ns else self.veth_host
        run("tc", "filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio", "1", "u32",
            "match", "ip", "protocol", "6", "0xff", "match", "ip", field, str(port), "0xffff", "classid", "1:2")

    def _clear(self) -> None:
        _run("tc", "qdisc", "del", "dev", self.veth_host, "root", check=False)
        self._ns("tc", "qdisc", "del", "dev", self.veth_pg, "root", check=False)

    def connections(self) -> list[int]:
        """Local ports of the root namespace's connections to the server."""
        out = _run("ss", "-tnH", "state", "established", "dst", f"{self.pg_addr}:{self.port}").stdout
        ports = []
        for line in out.splitlines():
            parts = line.split()
            local = next((p for p in parts if p.startswith(self.host_addr + ":")), None)
            if local:
                ports.append(int(local.rsplit(":", 1)[1]))
        return ports

    def cut(self) -> None:
        self._qdisc(False)
        self._qdisc(True)
        self._drop(False, "dport", self.port)
        self._drop(True, "sport", self.port)
        self.cut_active = True

    def heal(self, keep_cut: list[int] = ()) -> None:
        self._clear()
        if keep_cut:
            self._qdisc(False)
            self._qdisc(True)
            for p in keep_cut:
                self._drop(False, "sport", p)
                self._drop(True, "dport", p)
        self.cut_active = bool(keep_cut)

    def remove(self) -> None:
        try:
            if self.made_ns:
                self._clear()
        finally:
            self.stop()
            if self.made_link:
                _run("ip", "link", "del", self.veth_host, check=False)
            if self.made_ns:
                _run("ip", "netns", "del", self.ns, check=False)
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def netns_pg():
    private_pg_or_missing()
    for tool in ("ip", "tc", "ss"):
        if shutil.which(tool) is None:
            missing(f"{tool} (Debian package iproute2)")
    if os.geteuid() != 0:
        missing("root (network namespaces and qdiscs)")
    pg = NetnsPostgres()
    try:
        pg.setup()
        pg.start()
        yield pg
    finally:
        pg.remove()


class TmpfsPostgres(PrivatePostgres):
    """A PostgreSQL whose whole directory is a small tmpfs; fill() takes every free
    byte with a filler file, free() removes it."""

    def __init__(self, size_mb: int):
        super().__init__()
        self.size_mb = size_mb
        self.mounted = False
        self.filler = self.dir / "filler"

    def mount(self) -> None:
        _run("mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m,mode=755", "tmpfs", str(self.dir))
        self.mounted = True

    def free_bytes(self) -> int:
        st = os.statvfs(self.dir)
        return st.f_bavail * st.f_frsize

    def fill(self) -> int:
        written = 0
        with open(self.filler, "wb", buffering=0) as f:
            for chunk in (1 << 20, 1 << 12):
                block = b"\0" * chunk
                while True:
                    try:
                        written += f.write(block)
                    except OSError as e:
                        if e.errno != errno.ENOSPC:
                            raise
                        break
        return written

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def remove(self) -> None:
        try:
            self.free()
            self.stop()
        finally:
            if self.mounted:
                _run("umount", "-l", str(self.dir), check=False)
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def tmpfs_pg():
    private_pg_or_missing()
    if os.geteuid() != 0:
        missing("root (a tmpfs mount)")
    pg = TmpfsPostgres(int(os.environ.get("MQTTD_FAULTS_TMPFS_MB", "128")))
    try:
        pg.mount()
        pg.start()
        yield pg
    finally:
        pg.remove()


# ---------------------------------------------------------------------------
# A hard time limit per test phase (the integration tests' 45 s is too short here)
# ---------------------------------------------------------------------------

PHASE_LIMIT = int(os.environ.get("MQTTD_FAULTS_PHASE_LIMIT", "3600" if fc.SOAK else "300"))


def _alarm(signum, frame):
    raise ic.PhaseTimeout(f"test phase exceeded {PHASE_LIMIT}s")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    signal.alarm(PHASE_LIMIT)
    yield
    signal.alarm(0)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    signal.alarm(PHASE_LIMIT)
    yield
    signal.alarm(0)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    signal.alarm(PHASE_LIMIT)
    yield
    signal.alarm(0)
