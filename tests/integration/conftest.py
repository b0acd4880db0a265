"""Fixtures for the mqttd integration tests.

The tests run against a real broker process started per test on a free
loopback port:

* by default mqttd: the binary named by the environment variable MQTTD_BIN
  (default: build/mqttd in the repository), started as `MQTTD_BIN -c CONFIG`
  with an EMQX 4.x-style `key = value` config file;
* with MQTTD_TEST_BROKER=mosquitto, the Debian mosquitto broker, with the same
  settings translated into a mosquitto.conf. This validates the tests
  themselves on the points where the behaviour is standard MQTT; tests marked
  `mqttd_only` are skipped then.

When CI=true, a missing tool (broker binary, mosquitto clients, node and the
MQTT.js dependency, paho) makes the tests that need it FAIL rather than skip.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

BROKER_KIND = os.environ.get("MQTTD_TEST_BROKER", "mqttd").strip() or "mqttd"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
MOSQUITTO_BIN = os.environ.get("MOSQUITTO_BIN") or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
HOST = "127.0.0.1"

# Startup, shutdown and sanitizer bounds.
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                      "ThreadSanitizer", "UndefinedBehaviorSanitizer")


def rss_kib(pid: int) -> int:
    """A process's resident memory, KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def start_error(tmp_path: Path, lines: list[str]) -> subprocess.CompletedProcess:
    """Runs mqttd on a config of `lines` that must fail at start-up: exit code 2."""
    conf = tmp_path / "bad.conf"
    conf.write_text("\n".join(lines) + "\n")
    cp = subprocess.run([_broker_binary("mqttd"), "-c", str(conf)], capture_output=True, text=True, timeout=10)
    assert cp.returncode == 2, f"exit {cp.returncode}\n{cp.stdout}{cp.stderr}"
    return cp


def missing(what: str) -> None:
    """A needed tool is absent: fail in CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{what} is missing (CI=true: failing instead of skipping)", pytrace=False)
    pytest.skip(f"{what} is missing")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float = START_TIMEOUT, proc: subprocess.Popen | None = None) -> bool:
    """True once host:port accepts TCP connections; False on timeout or if `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------

def _parse_lines(lines: list[str]) -> dict[str, str]:
    """`key = value` lines into an ordered dict; later lines override earlier ones."""
    out: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ValueError(f"config line without '=': {line!r}")
        key, value = line.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _size_bytes(value: str) -> int:
    m = re.fullmatch(r"(\d+)\s*([KMG]?)B?", value.strip(), re.IGNORECASE)
    if not m:
        raise ValueError(f"bad size {value!r}")
    mult = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}[m.group(2).upper()]
    return int(m.group(1)) * mult


def _duration_seconds(value: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?", value.strip())
    if not m:
        raise ValueError(f"bad duration {value!r}")
    mult = {None: 1, "ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
    return float(m.group(1)) * mult


def mqttd_base_config(port: int) -> list[str]:
    return [
        f"listener.tcp.external = {HOST}:{port}",
        "node.name = mqttd@test",
        "node.threads = 2",
        "mqtt.max_packet_size = 1MB",
        "mqtt.session_expiry_interval = 2h",
        "allow_anonymous = true",
        "log.level = info",
    ]


def mosquitto_config(settings: dict[str, str], port: int, workdir: Path) -> list[str]:
    """Translates mqttd settings into a mosquitto.conf.

    A setting with no faithful mosquitto equivalent raises, so a test that needs
    it must be marked mqttd_only instead of silently testing something else.
    """
    out = [
        f"listener {port} {HOST}",
        "user root",
        "persistence false",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "max_inflight_messages 32",
        "max_queued_messages 1000",
        "sys_interval 10",
    ]
    for key, value in settings.items():
        if key in ("listener.tcp.external", "node.name", "node.threads", "log.level"):
            if key == "log.level" and value == "debug":
                out.append("log_type debug")
            continue
        if key == "mqtt.max_packet_size":
            out.append(f"max_packet_size {_size_bytes(value)}")
        elif key == "mqtt.max_inflight":
            out.append(f"max_inflight_messages {int(value)}")
        elif key == "mqtt.max_mqueue_len":
            out.append(f"max_queued_messages {int(value)}")
        elif key == "mqtt.max_mqueue_bytes":
            out.append(f"max_queued_bytes {_size_bytes(value)}")
        elif key == "mqtt.mqueue_store_qos0":
            out.append(f"queue_qos0_messages {value}")
        elif key == "mqtt.session_expiry_interval":
            secs = _duration_seconds(value)
            if secs >= 3600 and secs % 3600 == 0:
                out.append(f"persistent_client_expiration {int(secs // 3600)}h")
            else:
                raise ValueError(f"mosquitto cannot expire sessions after {value}")
        elif key == "allow_anonymous":
            out.append(f"allow_anonymous {value}")
        elif key == "sys_interval":
            out.append(f"sys_interval {max(1, int(_duration_seconds(value)))}")
        elif key == "auth.password_file":
            # mqttd's marked plaintext ($plain$) becomes mosquitto's plaintext, hashed
            # in place by mosquitto_passwd -U; hashed entries are left as they are.
            hashed = workdir / "mosquitto.passwd"
            entries = [line.strip() for line in Path(value).read_text().splitlines()
                       if line.strip() and not line.strip().startswith("#")]
            plain = all(":$plain$" in e for e in entries)
            hashed.write_text("".join(e.replace(":$plain$", ":", 1) + "\n" for e in entries))
            if plain:
                subprocess.run(["mosquitto_passwd", "-U", str(hashed)], check=True,
                               capture_output=True, timeout=10)
            out.append(f"password_file {hashed}")
        else:
            raise ValueError(f"no mosquitto equivalent for {key} = {value}")
    return out


# ---------------------------------------------------------------------------
# The broker process
# ---------------------------------------------------------------------------

class Broker:
    """A broker process on 127.0.0.1:port with its log captured to a file."""

    def __init__(self, kind: str, workdir: Path, extra_lines: list[str], binary: str):
        self.kind = kind
        self.host = HOST
        self.workdir = workdir
        self.extra_lines = list(extra_lines)
        self.binary = binary
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / "broker.log"
        self.config_path = workdir / ("mqttd.conf" if kind == "mqttd" else "mosquitto.conf")
        self.killed = False
        self.exit_codes: list[int] = []

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _write_config(self) -> None:
        settings = _parse_lines(mqttd_base_config(self.port) + self.extra_lines)
        if self.kind == "mqttd":
            text = "\n".join(f"{k} = {v}" for k, v in settings.items())
        else:
            text = "\n".join(mosquitto_config(settings, self.port, self.workdir))
        self.config_path.write_text(text + "\n")

    def start(self, keep_port: bool = False) -> "Broker":
        attempts = 1 if keep_port else 3
        for attempt in range(attempts):
            if not keep_port:
                self.port = free_port()
            self._write_config()
            with open(self.log_path, "ab") as log:
                log.write(f"==== starting {self.kind} on port {self.port}\n".encode())
                log.flush()
                self.proc = subprocess.Popen(
                    [self.binary, "-c", str(self.config_path)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    cwd=self.workdir, start_new_session=True)
            self.killed = False
            if wait_port(self.host, self.port, START_TIMEOUT, self.proc):
                return self
            if self.proc.poll() is None:
                self._hard_kill()
                break
            self.exit_codes.append(self.proc.returncode)
            if "in use" not in self.log().lower() or attempt == attempts - 1:
                break
        raise RuntimeError(f"{self.kind} did not start listening on {self.host}:{self.port}\n"
                           f"--- broker log ---\n{self.log()[-4000:]}")

    def _hard_kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=STOP_TIMEOUT)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int:
        """SIGTERM; returns the exit code. mqttd must exit 0 within 5 s."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._hard_kill()
            raise AssertionError(f"{self.kind} did not exit within {STOP_TIMEOUT}s of SIGTERM\n"
                                 f"--- broker log ---\n{self.log()[-4000:]}")
        self.exit_codes.append(rc)
        if self.kind == "mqttd":
            assert rc == 0, (f"mqttd exited with {rc} after SIGTERM\n"
                             f"--- broker log ---\n{self.log()[-4000:]}")
        return rc

    def kill(self) -> None:
        """SIGKILL (a crash, from the clients' point of view)."""
        self.killed = True
        self._hard_kill()

    def restart(self) -> "Broker":
        """Clean stop, then start again on the same port with the same config."""
        self.stop()
        return self.start(keep_port=True)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def _broker_binary(kind: str) -> str:
    if kind == "mosquitto":
        if not os.access(MOSQUITTO_BIN, os.X_OK):
            missing("the mosquitto broker")
        return MOSQUITTO_BIN
    if kind != "mqttd":
        raise pytest.UsageError(f"MQTTD_TEST_BROKER must be mqttd or mosquitto, not {kind!r}")
    binary = os.environ.get("MQTTD_BIN") or str(REPO / "build" / "mqttd")
    if not os.access(binary, os.X_OK):
        missing(f"the mqttd binary ({binary}; set MQTTD_BIN)")
    return binary


# ---------------------------------------------------------------------------
# pytest hooks and fixtures
# ---------------------------------------------------------------------------

def pytest_report_header(config):
    return f"broker under test: {BROKER_KIND}"


def pytest_collection_modifyitems(config, items):
    # MQTTD_TEST_RUN_ALL=1 runs the mqttd_only tests against mosquitto too, to see
    # where (and that) they fail there.
    if BROKER_KIND == "mqttd" or os.environ.get("MQTTD_TEST_RUN_ALL") == "1":
        return
    skip = pytest.mark.skip(reason=f"mqttd-specific behaviour (broker under test: {BROKER_KIND})")
    for item in items:
        if "mqttd_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def broker_kind() -> str:
    return BROKER_KIND


@pytest.fixture
def start_broker(tmp_path):
    """Factory: start_broker(extra_lines=[...]) -> Broker. All are stopped at teardown.

    At teardown, a broker that died by itself during the test, one that does not
    exit in time after SIGTERM, mqttd exiting non-zero, and sanitizer reports in
    the log are all failures.
    """
    started: list[Broker] = []

    def start(extra_lines: list[str] | None = None) -> Broker:
        binary = _broker_binary(BROKER_KIND)
        workdir = tmp_path / f"broker{len(started)}"
        workdir.mkdir()
        b = Broker(BROKER_KIND, workdir, extra_lines or [], binary)
        started.append(b)
        return b.start()

    yield start

    problems = []
    for b in started:
        if b.proc is None:
            continue
        mine = []
        if not b.killed and b.proc.poll() is not None and b.proc.returncode != 0:
            mine.append(f"{b.kind} died during the test with exit code {b.proc.returncode}")
        try:
            if not b.killed:
                b.stop()
        except AssertionError as exc:
            mine.append(str(exc))
        finally:
            b._hard_kill()
        log = b.log()
        for pat in SANITIZER_PATTERNS:
            if pat in log:
                mine.append(f"sanitizer report in the broker log ({pat!r})")
                break
        if mine:
            problems += mine + [f"--- broker log ({b.log_path}) ---\n{log[-6000:]}"]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def broker(start_broker) -> Broker:
    """A broker with the default configuration."""
    return start_broker()


# ----- clients --------------------------------------------------------------

def _paho_factory(class_name: str):
    """make(broker, client_id, **kw) -> clients.<class_name>, and the clients it made."""
    try:
        import paho.mqtt.client  # noqa: F401
    except ImportError:
        missing("paho-mqtt for /usr/bin/python3 (Debian package python3-paho-mqtt)")
    import clients
    cls = getattr(clients, class_name)
    made: list = []

    def make(broker: Broker, client_id: str = "", **kw):
        c = cls(broker, client_id, **kw)
        made.append(c)
        return c

    return make, made


@pytest.fixture
def paho(request):
    """Factory: paho(broker, client_id, **kw) -> clients.PahoClient; closed at teardown."""
    make, made = _paho_factory("PahoClient")
    yield make
    for c in made:
        c.close()


@pytest.fixture
def paho5(request):
    """Factory: paho5(broker, client_id, **kw) -> clients.Paho5Client (MQTT 5); closed at teardown."""
    make, made = _paho_factory("Paho5Client")
    yield make
    for c in made:
        c.close()


@pytest.fixture
def raw():
    """Factory: raw(broker) -> mqtt_raw.RawClient (a bare TCP connection); closed at teardown."""
    import mqtt_raw
    made: list = []

    def make(broker: Broker, timeout: float = 5.0):
        c = mqtt_raw.RawClient(broker.host, broker.port, timeout)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def mosq():
    """The mosquitto command-line clients: mosq.pub(...), mosq.sub(...)."""
    for tool in ("mosquitto_pub", "mosquitto_sub"):
        if shutil.which(tool) is None:
            missing(f"{tool} (Debian package mosquitto-clients)")
    import clients
    tools = clients.MosquittoClients()
    yield tools
    tools.close()


@pytest.fixture
def mqttjs():
    """Factory: mqttjs(broker, **options) -> clients.JsClient (MQTT.js in a node process)."""
    if shutil.which("node") is None:
        missing("node")
    if not (HERE / "node_modules" / "mqtt").is_dir():
        missing("MQTT.js (run `npm ci` in tests/integration)")
    import clients
    made: list = []

    def make(broker: Broker, **options):
        c = clients.JsClient(broker, **options)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


# ----- a hard time limit per test phase -------------------------------------

PHASE_LIMIT = int(os.environ.get("MQTTD_TEST_PHASE_LIMIT", "45"))


class PhaseTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise PhaseTimeout(f"test phase exceeded {PHASE_LIMIT}s")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    with _time_limit():
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    with _time_limit():
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    with _time_limit():
        yield


class _time_limit:
    """SIGALRM safety net so that a hung wait cannot stall the whole suite."""

    def __enter__(self):
        self.old = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(PHASE_LIMIT)

    def __exit__(self, *exc):
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.old)
        return False


def _raise_fd_limit() -> None:
    """The load test opens 1,000+ sockets; the broker inherits this limit too."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 8192 if hard == resource.RLIM_INFINITY else min(8192, hard)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass


_raise_fd_limit()
