"""`Forwarder`: a TCP client reaches a TCP server through a unix socket, both halves in turn, as
the scorer reaches Chrome's DevTools port in a docker desktop."""

from __future__ import annotations

import socket
import threading

from cua.desktop.tunnel import Forwarder, port_socket


def echo_server() -> socket.socket:
    """A TCP server on 127.0.0.1 that answers each client with what it sent, upper-cased, once
    the client has finished sending (a half-close)."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            with client:
                data = b""
                while chunk := client.recv(65536):
                    data += chunk
                client.sendall(data.upper())
    threading.Thread(target=serve, daemon=True).start()
    return server


def test_bytes_cross_both_forwarders_and_a_half_close_too(tmp_path):
    server = echo_server()
    port = server.getsockname()[1]
    inner = Forwarder.unix_to_tcp(port_socket(tmp_path, port), port)
    outer = Forwarder.tcp_to_unix(port_socket(tmp_path, port))
    try:
        payload = bytes(range(97, 123)) * 40000  # ~1 MB
        for _ in range(3):  # one connection after another
            with socket.create_connection(("127.0.0.1", outer.port), timeout=10) as client:
                client.sendall(payload)
                client.shutdown(socket.SHUT_WR)
                got = b""
                while chunk := client.recv(65536):
                    got += chunk
            assert got == payload.upper()
    finally:
        outer.close()
        inner.close()
        server.close()


def test_a_far_end_that_is_not_there_hangs_up(tmp_path):
    outer = Forwarder.tcp_to_unix(tmp_path / "nobody.sock")
    try:
        with socket.create_connection(("127.0.0.1", outer.port), timeout=10) as client:
            assert client.recv(1) == b""
    finally:
        outer.close()
