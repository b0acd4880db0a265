"""MQTT over WebSocket (listener.ws.<name>): a paho client over WebSocket and one over
TCP exchange messages through the same broker; a handshake without the mqtt
subprotocol is refused."""

import socket
import threading

import paho.mqtt.client as paho_mqtt
import pytest

from conftest import free_port


@pytest.mark.mqttd_only
def test_websocket_and_tcp_clients_exchange_messages(start_broker):
    ws_port = free_port()
    b = start_broker([f"listener.ws.web = 127.0.0.1:{ws_port}"])
    got = []
    arrived = threading.Event()

    ws = paho_mqtt.Client(client_id="ws-sub", transport="websockets")
    ws.on_message = lambda c, u, m: (got.append((m.topic, m.payload)), arrived.set())
    ws.connect("127.0.0.1", ws_port)
    ws.loop_start()
    try:
        subscribed = threading.Event()
        ws.on_subscribe = lambda *a: subscribed.set()
        ws.subscribe("ws/#", qos=1)
        assert subscribed.wait(5)

        tcp = paho_mqtt.Client(client_id="tcp-pub")
        tcp.connect(b.host, b.port)
        tcp.loop_start()
        tcp.publish("ws/t", b"over websocket", qos=1).wait_for_publish(5)
        assert arrived.wait(5)
        assert got == [("ws/t", b"over websocket")]
        tcp.loop_stop()
        tcp.disconnect()
    finally:
        ws.loop_stop()
        ws.disconnect()


@pytest.mark.mqttd_only
def test_websocket_without_mqtt_subprotocol_is_refused(start_broker):
    ws_port = free_port()
    start_broker([f"listener.ws.web = 127.0.0.1:{ws_port}"])
    with socket.create_connection(("127.0.0.1", ws_port), timeout=5) as s:
        s.sendall(b"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400")
