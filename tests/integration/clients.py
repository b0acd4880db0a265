"""Real MQTT clients for the integration tests, each behind a small, blocking API
with a timeout on every wait:

* PahoClient: the Eclipse paho Python client (MQTT 3.1.1, 3.1 or 5.0);
* MosquittoClients: the mosquitto_pub / mosquitto_sub command-line tools;
* JsClient: MQTT.js in a node process (js/client.js), driven over stdin/stdout.

Received messages are `Msg` tuples with the payload as bytes.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent


class Msg(NamedTuple):
    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool = False


def _collect(q: "queue.Queue[Msg]", n: int, timeout: float, who: str) -> list[Msg]:
    got: list[Msg] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        remaining = deadline - time.monotonic()
        try:
            got.append(q.get(timeout=max(0.0, remaining)))
        except queue.Empty:
            raise AssertionError(f"{who}: got {len(got)} of {n} messages in {timeout}s: {got[:20]!r}")
    return got


def _none(q: "queue.Queue[Msg]", duration: float, who: str) -> None:
    try:
        m = q.get(timeout=duration)
    except queue.Empty:
        return
    raise AssertionError(f"{who}: unexpected message {m!r}")


def _drain(q: "queue.Queue[Msg]", duration: float) -> list[Msg]:
    """Everything that arrives within `duration` seconds."""
    got = []
    deadline = time.monotonic() + duration
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return got
        try:
            got.append(q.get(timeout=remaining))
        except queue.Empty:
            return got


# ---------------------------------------------------------------------------
# paho
# ---------------------------------------------------------------------------

def _code(rc) -> int:
    """A return code as an integer: 5.0 gives paho ReasonCodes objects."""
    return rc.value if hasattr(rc, "value") else rc


class PahoClient:
    """A paho-mqtt 1.6 client on a background network thread.

    protocol: 4 (MQTT 3.1.1, the default), 3 (MQTT 3.1, "MQIsdp") or 5 (MQTT 5.0, where
    clean_session is sent as Clean Start). Reason codes come back as plain integers.
    will: dict(topic=..., payload=..., qos=..., retain=...).
    """

    def __init__(self, broker, client_id: str = "", clean_session: bool = True, protocol: int = 4,
                 keepalive: int = 60, will: dict | None = None, username: str | None = None,
                 password: str | None = None):
        import paho.mqtt.client as mqtt
        self._mqtt = mqtt
        self.broker = broker
        self.client_id = client_id
        self.keepalive = keepalive
        proto = {5: mqtt.MQTTv5, 4: mqtt.MQTTv311, 3: mqtt.MQTTv31}[protocol]
        self.v5 = protocol == 5
        self.clean_session = clean_session
        session = {} if self.v5 else {"clean_session": clean_session}  # 5.0: at connect
        self.c = mqtt.Client(client_id=client_id, protocol=proto, reconnect_on_failure=False, **session)
        if will:
            self.c.will_set(will["topic"], will.get("payload", b""), will.get("qos", 0),
                            will.get("retain", False))
        if username is not None:
            self.c.username_pw_set(username, password)
        self.messages: "queue.Queue[Msg]" = queue.Queue()
        self._cond = threading.Condition()
        self._connack: tuple[int, bool] | None = None
        self._subacks: dict[int, tuple] = {}
        self._unsubacks: set[int] = set()
        self._published: set[int] = set()
        self.disconnect_rc: int | None = None
        self.disconnected = threading.Event()
        self._started = False
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_publish = self._on_publish
        self.c.on_disconnect = self._on_disconnect

    # callbacks (network thread); 5.0 adds properties (and reason codes as objects)
    def _on_connect(self, client, userdata, flags, rc, properties=None):
        with self._cond:
            self._connack = (_code(rc), bool(flags.get("session present", 0)))
            self._cond.notify_all()

    def _on_message(self, client, userdata, m):
        self.messages.put(Msg(m.topic, bytes(m.payload), m.qos, bool(m.retain), bool(m.dup)))

    def _on_subscribe(self, client, userdata, mid, granted, properties=None):
        with self._cond:
            self._subacks[mid] = tuple(_code(g) for g in granted)
            self._cond.notify_all()

    def _on_unsubscribe(self, client, userdata, mid, properties=None, reasons=None):
        with self._cond:
            self._unsubacks.add(mid)
            self._cond.notify_all()

    def _on_publish(self, client, userdata, mid):
        with self._cond:
            self._published.add(mid)
            self._cond.notify_all()

    def _on_disconnect(self, client, userdata, rc, properties=None):
        self.disconnect_rc = _code(rc)
        self.disconnected.set()

    def _wait(self, pred, timeout: float, what: str):
        with self._cond:
            if not self._cond.wait_for(pred, timeout=timeout):
                raise AssertionError(f"paho {self.client_id!r}: no {what} within {timeout}s")

    # API
    def connect(self, timeout: float = 5.0, expect_rc: int | None = 0) -> tuple[int, bool]:
        """Connects; returns (CONNACK return code, session present)."""
        if self.v5:
            self.c.connect(self.broker.host, self.broker.port, self.keepalive, clean_start=self.clean_session)
        else:
            self.c.connect(self.broker.host, self.broker.port, self.keepalive)
        self.c.loop_start()
        self._started = True
        self._wait(lambda: self._connack is not None, timeout, "CONNACK")
        rc, sp = self._connack
        if expect_rc is not None:
            assert rc == expect_rc, f"paho {self.client_id!r}: CONNACK rc {rc}, expected {expect_rc}"
        return rc, sp

    def subscribe(self, topic, qos: int = 0, timeout: float = 5.0, options=None) -> tuple:
        """topic: a filter or a list of (filter, qos). Returns the granted QoS tuple.
        options: 5.0 subscription options (paho.mqtt.subscribeoptions.SubscribeOptions)."""
        if options is not None:
            rc, mid = self.c.subscribe(topic, options=options)
        else:
            rc, mid = self.c.subscribe(topic, qos) if isinstance(topic, str) else self.c.subscribe(topic)
        assert rc == 0, f"subscribe failed locally: {rc}"
        self._wait(lambda: mid in self._subacks, timeout, "SUBACK")
        return self._subacks[mid]

    def unsubscribe(self, topic, timeout: float = 5.0) -> None:
        rc, mid = self.c.unsubscribe(topic)
        assert rc == 0, f"unsubscribe failed locally: {rc}"
        self._wait(lambda: mid in self._unsubacks, timeout, "UNSUBACK")

    def publish(self, topic: str, payload=b"", qos: int = 0, retain: bool = False,
                wait: bool = True, timeout: float = 5.0) -> int:
        """Publishes; with wait, until the QoS flow is complete (sent, PUBACK or PUBCOMP)."""
        info = self.c.publish(topic, payload, qos, retain)
        assert info.rc == 0, f"publish failed locally: {info.rc}"
        if wait:
            self._wait(lambda: info.mid in self._published, timeout, f"completion of publish {info.mid}")
        return info.mid

    def wait_published(self, mids, timeout: float = 10.0) -> None:
        mids = set(mids)
        self._wait(lambda: mids <= self._published, timeout, "completion of all publishes")

    def get(self, timeout: float = 5.0) -> Msg:
        return _collect(self.messages, 1, timeout, f"paho {self.client_id!r}")[0]

    def collect(self, n: int, timeout: float = 5.0) -> list[Msg]:
        return _collect(self.messages, n, timeout, f"paho {self.client_id!r}")

    def expect_none(self, duration: float = 1.0) -> None:
        _none(self.messages, duration, f"paho {self.client_id!r}")

    def drain(self, duration: float) -> list[Msg]:
        return _drain(self.messages, duration)

    def disconnect(self, timeout: float = 5.0) -> None:
        """A clean DISCONNECT."""
        self.c.disconnect()
        self.disconnected.wait(timeout)
        self.c.loop_stop()
        self._started = False

    def drop(self) -> None:
        """Closes the TCP connection without DISCONNECT (a network failure)."""
        sock = self.c.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.disconnected.wait(3.0)
        self.c.loop_stop()
        self._started = False

    def wait_disconnected(self, timeout: float = 5.0) -> bool:
        return self.disconnected.wait(timeout)

    def close(self) -> None:
        if self._started:
            try:
                self.c.disconnect()
            except Exception:
                pass
            self.c.loop_stop()
            self._started = False


# ---------------------------------------------------------------------------
# mosquitto_pub / mosquitto_sub
# ---------------------------------------------------------------------------

def _common_args(broker, client_id, version, username, password, keepalive, will):
    args = ["-h", broker.host, "-p", str(broker.port), "-V", version]
    if client_id is not None:
        args += ["-i", client_id]
    if username is not None:
        args += ["-u", username]
    if password is not None:
        args += ["-P", password]
    if keepalive is not None:
        args += ["-k", str(keepalive)]
    if will:
        args += ["--will-topic", will["topic"], "--will-payload", will.get("payload", ""),
                 "--will-qos", str(will.get("qos", 0))]
        if will.get("retain"):
            args.append("--will-retain")
    return args


class CliSub:
    """A running mosquitto_sub printing each message as JSON (-F %j) plus debug lines (-d)."""

    def __init__(self, argv: list[str]):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.messages: "queue.Queue[Msg]" = queue.Queue()
        self.lines: list[str] = []
        self._subscribed = threading.Event()
        self._connacked = threading.Event()
        self.connack_rc: int | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            if line.startswith("{"):
                try:
                    j = json.loads(line)
                except ValueError:
                    continue
                payload = j.get("payload")
                payload = b"" if payload is None else str(payload).encode()
                self.messages.put(Msg(j["topic"], payload, int(j["qos"]), bool(j["retain"])))
            elif "received CONNACK" in line:
                try:
                    self.connack_rc = int(line.rsplit("(", 1)[1].rstrip(")"))
                except (IndexError, ValueError):
                    pass
                self._connacked.set()
            elif line.startswith("Subscribed (mid"):
                # Printed at the end of mosquitto_sub's SUBACK handling.
                self._subscribed.set()

    def wait_subscribed(self, timeout: float = 5.0) -> "CliSub":
        if not self._subscribed.wait(timeout):
            raise AssertionError(f"mosquitto_sub not subscribed in {timeout}s: {self.lines[-10:]}")
        return self

    def get(self, timeout: float = 5.0) -> Msg:
        return _collect(self.messages, 1, timeout, "mosquitto_sub")[0]

    def collect(self, n: int, timeout: float = 5.0) -> list[Msg]:
        return _collect(self.messages, n, timeout, "mosquitto_sub")

    def expect_none(self, duration: float = 1.0) -> None:
        _none(self.messages, duration, "mosquitto_sub")

    def wait(self, timeout: float = 10.0) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=2)
        return rc

    def kill(self) -> None:
        """SIGKILL: the TCP connection is dropped without DISCONNECT."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=5)


class MosquittoClients:
    def __init__(self):
        self.subs: list[CliSub] = []

    def pub(self, broker, topic: str, message: str | None = "", qos: int = 0, retain: bool = False,
            client_id: str | None = None, version: str = "mqttv311", username: str | None = None,
            password: str | None = None, lines: list[str] | None = None, check: bool = True,
            timeout: float = 15.0) -> subprocess.CompletedProcess:
        """mosquitto_pub. message=None sends a zero-length payload (-n);
        lines sends one message per line of stdin (-l)."""
        argv = ["mosquitto_pub"] + _common_args(broker, client_id, version, username, password, None, None)
        argv += ["-t", topic, "-q", str(qos)]
        if retain:
            argv.append("-r")
        stdin = None
        if lines is not None:
            argv.append("-l")
            stdin = "".join(line + "\n" for line in lines)
        elif message is None:
            argv.append("-n")
        else:
            argv += ["-m", message]
        cp = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout)
        if check:
            assert cp.returncode == 0, f"mosquitto_pub failed ({cp.returncode}): {cp.stdout}{cp.stderr}"
        return cp

    def sub(self, broker, topics, qos: int = 0, count: int | None = None, client_id: str | None = None,
            clean: bool = True, version: str = "mqttv311", username: str | None = None,
            password: str | None = None, keepalive: int | None = None, will: dict | None = None,
            timeout_s: int = 20, wait: bool = True, exit_after_subscribe: bool = False) -> CliSub:
        """Starts mosquitto_sub; with wait, returns once the SUBACK has arrived.
        It exits by itself (with a clean DISCONNECT) after `count` messages, after the
        SUBACK with exit_after_subscribe (-E), or after `timeout_s` seconds."""
        if isinstance(topics, str):
            topics = [topics]
        # mosquitto_sub block-buffers stdout on a pipe: line-buffer it.
        argv = (["stdbuf", "-oL"] if shutil.which("stdbuf") else []) + ["mosquitto_sub", "-d", "-F", "%j"]
        argv += _common_args(broker, client_id, version, username, password, keepalive, will)
        for t in topics:
            argv += ["-t", t]
        argv += ["-q", str(qos), "-W", str(timeout_s)]
        if count is not None:
            argv += ["-C", str(count)]
        if not clean:
            argv.append("-c")
        if exit_after_subscribe:
            argv.append("-E")
        s = CliSub(argv)
        self.subs.append(s)
        if wait:
            s.wait_subscribed()
        return s

    def close(self) -> None:
        for s in self.subs:
            if s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait(timeout=5)


# ---------------------------------------------------------------------------
# MQTT.js
# ---------------------------------------------------------------------------

class JsClient:
    """MQTT.js (js/client.js) in a node process. Options go to mqtt.connect():
    clientId, clean, keepalive, protocolVersion (4, or 3 with protocolId 'MQIsdp'),
    will {topic, payload, qos, retain}, username, password."""

    def __init__(self, broker, **options):
        self.broker = broker
        self.options = options
        self.proc = subprocess.Popen(["node", str(HERE / "js" / "client.js")], cwd=HERE,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.messages: "queue.Queue[Msg]" = queue.Queue()
        self.events: list[dict] = []
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("event") == "message":
                self.messages.put(Msg(ev["topic"], ev["payload"].encode(), ev["qos"], ev["retain"], ev["dup"]))
            else:
                with self._cond:
                    self.events.append(ev)
                    self._cond.notify_all()
        with self._cond:
            self.events.append({"event": "eof"})
            self._cond.notify_all()

    def send(self, **cmd) -> None:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def wait_event(self, names, timeout: float = 5.0) -> dict:
        """Removes and returns the first event named in `names` (str or tuple)."""
        if isinstance(names, str):
            names = (names,)

        def find():
            for i, ev in enumerate(self.events):
                if ev["event"] in names:
                    return i
            return None

        with self._cond:
            if not self._cond.wait_for(lambda: find() is not None, timeout=timeout):
                err = ""
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read()
                raise AssertionError(f"MQTT.js: no {names} event in {timeout}s; events {self.events}; "
                                     f"output {self.lines[-10:]} {err}")
            return self.events.pop(find())

    def connect(self, timeout: float = 8.0, expect_ok: bool = True) -> dict:
        """Connects; returns the connect event (sessionPresent, returnCode) or the error."""
        self.send(cmd="connect", url=self.broker.url, options=self.options)
        ev = self.wait_event(("connect", "error", "close"), timeout)
        if expect_ok:
            assert ev["event"] == "connect", f"MQTT.js did not connect: {ev}"
        return ev

    def subscribe(self, topic: str, qos: int = 0, timeout: float = 5.0) -> list[int]:
        self.send(cmd="subscribe", topic=topic, qos=qos)
        ev = self.wait_event(("suback", "error"), timeout)
        assert ev["event"] == "suback", f"MQTT.js subscribe failed: {ev}"
        return ev["granted"]

    def unsubscribe(self, topic: str, timeout: float = 5.0) -> None:
        self.send(cmd="unsubscribe", topic=topic)
        ev = self.wait_event(("unsuback", "error"), timeout)
        assert ev["event"] == "unsuback", f"MQTT.js unsubscribe failed: {ev}"

    def publish(self, topic: str, payload: str = "", qos: int = 0, retain: bool = False,
                wait: bool = True, timeout: float = 5.0) -> None:
        self.send(cmd="publish", topic=topic, payload=payload, qos=qos, retain=retain)
        if wait:
            ev = self.wait_event(("published", "error"), timeout)
            assert ev["event"] == "published", f"MQTT.js publish failed: {ev}"

    def get(self, timeout: float = 5.0) -> Msg:
        return _collect(self.messages, 1, timeout, "MQTT.js")[0]

    def collect(self, n: int, timeout: float = 5.0) -> list[Msg]:
        return _collect(self.messages, n, timeout, "MQTT.js")

    def expect_none(self, duration: float = 1.0) -> None:
        _none(self.messages, duration, "MQTT.js")

    def end(self, timeout: float = 5.0) -> None:
        """Clean DISCONNECT and exit."""
        self.send(cmd="end")
        self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the node process: the connection drops without DISCONNECT."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=5)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send(cmd="destroy")
                self.proc.wait(timeout=3)
            except Exception:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._reader.join(timeout=2)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except Exception:
                pass
