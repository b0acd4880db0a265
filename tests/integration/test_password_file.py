"""auth.password_file with the hashes real tools write: mosquitto_passwd's $7$ (PBKDF2-
SHA512) and $6$ (SHA-512), htpasswd -B's bcrypt, and $plain$-marked plaintext. Passwords
are checked off the I/O threads: other clients are served while bcrypt runs."""

import shutil
import subprocess
import time
from pathlib import Path

import pytest

import mqtt_raw as raw_mqtt
from conftest import missing, start_error

pytestmark = pytest.mark.mqttd_only


def tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        missing(f"{name} (Debian's {'mosquitto' if name == 'mosquitto_passwd' else 'apache2-utils'} package)")
    return path


def mosquitto_passwd(path: Path, user: str, password: str, *extra: str) -> None:
    args = [tool("mosquitto_passwd"), *extra, "-b", str(path), user, password]
    if not path.exists():
        args.insert(1, "-c")
    subprocess.run(args, check=True, capture_output=True, timeout=10)


def htpasswd_bcrypt(path: Path, user: str, password: str, cost: int = 5) -> None:
    args = [tool("htpasswd"), "-B", "-C", str(cost), "-b", str(path), user, password]
    if not path.exists():
        args.insert(1, "-c")
    subprocess.run(args, check=True, capture_output=True, timeout=30)


@pytest.fixture
def hashed_broker(start_broker, tmp_path):
    pw = tmp_path / "passwd"
    mosquitto_passwd(pw, "pbkdf2", "s3cret-7")                  # $7$ (mosquitto's default)
    mosquitto_passwd(pw, "sha512", "s3cret-6", "-H", "sha512")  # $6$
    htpasswd_bcrypt(pw, "bcrypt", "s3cret-2y")                 # $2y$
    with pw.open("a") as f:
        f.write("plain:$plain$s3cret-p\n")
    text = pw.read_text()
    assert "pbkdf2:$7$" in text and "sha512:$6$" in text and "bcrypt:$2y$" in text, text
    return start_broker(["allow_anonymous = false", f"auth.password_file = {pw}"])


USERS = {"pbkdf2": "s3cret-7", "sha512": "s3cret-6", "bcrypt": "s3cret-2y", "plain": "s3cret-p"}


@pytest.mark.parametrize("user", list(USERS))
def test_each_hash_form_lets_in_the_right_password_only(hashed_broker, paho, raw, user):
    c = paho(hashed_broker, f"pw-{user}", username=user, password=USERS[user])
    assert c.connect() == (0, False)
    c.subscribe("pw/t", 1)
    c.publish("pw/t", user.encode(), qos=1)
    assert c.get().payload == user.encode()
    for wrong in (USERS[user] + "x", USERS[user][:-1], ""):
        r = raw(hashed_broker)
        r.send(raw_mqtt.connect(f"pw-{user}-wrong", username=user, password=wrong))
        assert [(p.type, p.return_code) for p in r.expect_closed()] == [(raw_mqtt.CONNACK, 4)]
    r5 = raw(hashed_broker)
    r5.send(raw_mqtt.connect(f"pw-{user}-wrong5", username=user, password="nope", level=5))
    assert [(p.type, p.reason) for p in r5.expect_closed()] == [(raw_mqtt.CONNACK, 0x86)]


def test_mosquitto_clients_with_hashed_passwords(hashed_broker, mosq):
    sub = mosq.sub(hashed_broker, "pw/cli", qos=1, username="bcrypt", password="s3cret-2y")
    mosq.pub(hashed_broker, "pw/cli", "hello", qos=1, username="pbkdf2", password="s3cret-7")
    assert sub.get().payload == b"hello"
    cp = mosq.pub(hashed_broker, "pw/cli", "nope", username="pbkdf2", password="wrong", check=False)
    assert cp.returncode != 0


def test_clients_are_served_while_slow_hashes_are_checked(start_broker, tmp_path, paho, raw):
    """bcrypt at cost 13 takes a large part of a second per check. Eight clients trying
    it at once must not hold up a client that is already connected: its pings are
    answered while the checks run on the checker's thread."""
    pw = tmp_path / "passwd"
    htpasswd_bcrypt(pw, "slow", "right", cost=13)
    with pw.open("a") as f:
        f.write("fast:$plain$fast\n")
    b = start_broker(["allow_anonymous = false", f"auth.password_file = {pw}"])
    served = raw(b)
    assert served.connect("pw-served", username="fast", password="fast").return_code == 0
    slow = [raw(b, timeout=60) for _ in range(8)]
    started = time.monotonic()
    for i, c in enumerate(slow):
        c.send(raw_mqtt.connect(f"pw-slow-{i}", username="slow", password="wrong"))
    worst = 0.0
    while True:
        t0 = time.monotonic()
        served.ping()
        worst = max(worst, time.monotonic() - t0)
        try:
            first = slow[-1].recv(0.05)
            break
        except TimeoutError:
            pass
        assert time.monotonic() - started < 60, "the checks never finished"
    checking = time.monotonic() - started
    assert (first.type, first.return_code) == (raw_mqtt.CONNACK, 4)
    # The last check waited for the seven before it, so checking took several pings' time.
    assert checking > 4 * worst, f"checks {checking:.2f} s, slowest ping {worst:.3f} s"
    assert worst < 0.5, f"a ping waited {worst:.2f} s while passwords were checked"


def test_an_unmarked_plaintext_line_is_a_startup_error(tmp_path):
    pw = tmp_path / "passwd"
    pw.write_text("# users\nalice:$plain$wonderland\nbob:builder\n")
    cp = start_error(tmp_path, ["listener.tcp.external = 127.0.0.1:18998", f"auth.password_file = {pw}"])
    assert f"{pw}:3" in cp.stderr and "$plain$" in cp.stderr, cp.stderr
    assert "builder" not in cp.stderr, "a password was written to the log"


def test_with_anonymous_access_only_known_users_are_checked(start_broker, tmp_path, raw):
    """EMQX's chain: a client that no source knows (no user name, or one the file does
    not list) is let in with allow_anonymous = true; a listed user still needs the
    right password."""
    pw = tmp_path / "passwd"
    pw.write_text("alice:$plain$wonderland\n")
    b = start_broker(["allow_anonymous = true", f"auth.password_file = {pw}"])
    assert raw(b).connect("chain-anon").return_code == 0
    assert raw(b).connect("chain-stranger", username="mallory", password="x").return_code == 0
    assert raw(b).connect("chain-alice", username="alice", password="wonderland").return_code == 0
    wrong = raw(b)
    wrong.send(raw_mqtt.connect("chain-alice-wrong", username="alice", password="guess"))
    assert [(p.type, p.return_code) for p in wrong.expect_closed()] == [(raw_mqtt.CONNACK, 4)]


def test_packets_sent_behind_the_connect_are_handled_after_the_check(hashed_broker, raw):
    """A client may send SUBSCRIBE and PUBLISH right behind its CONNECT: they wait while the
    password is checked, and are handled, in order, once the client is in."""
    c = raw(hashed_broker)
    c.send(raw_mqtt.connect("pw-pipelined", username="bcrypt", password="s3cret-2y")
           + raw_mqtt.subscribe(1, [("pw/pipe", 1)])
           + raw_mqtt.publish("pw/pipe", b"behind the connect", qos=1, pid=2))
    assert c.expect(raw_mqtt.CONNACK).return_code == 0
    assert c.expect(raw_mqtt.SUBACK).granted == [1]
    got = sorted((p.type, p.payload if p.type == raw_mqtt.PUBLISH else p.pid) for p in (c.recv(), c.recv()))
    assert got == [(raw_mqtt.PUBLISH, b"behind the connect"), (raw_mqtt.PUBACK, 2)]


def test_a_refusal_for_credentials_comes_a_second_late(hashed_broker, raw):
    """Guessing is slow: a wrong password, or a name the file does not list, is answered
    after a delay, during which the broker serves others (a timer, not a held thread)."""
    other = raw(hashed_broker)
    assert other.connect("pw-other", username="plain", password="s3cret-p").return_code == 0
    for user, password in (("plain", "guess"), ("nobody", "guess")):
        c = raw(hashed_broker)
        started = time.monotonic()
        c.send(raw_mqtt.connect(f"pw-late-{user}", username=user, password=password))
        other.ping()
        assert time.monotonic() - started < 0.5, "the broker stopped serving others"
        ack = c.expect(raw_mqtt.CONNACK, 5)
        assert ack.return_code == 4
        assert time.monotonic() - started >= 0.9, f"{user}: refused after {time.monotonic() - started:.2f} s"
