"""`Forwarder`: a listening socket whose every client is joined, byte for byte, to a new
connection elsewhere. It is how the host reaches a TCP port inside a docker desktop that has no
network (OSWorld's Chrome DevTools port): the control server listens on a unix socket beside its
own (`port_socket`) and joins each client to that port on the desktop's loopback; the host's
Bridge listens on 127.0.0.1 and joins each client to that unix socket."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path

CHUNK = 1 << 16


def port_socket(folder: Path, port: int) -> Path:
    """The unix socket in a desktop's shared folder that leads to `port` on its loopback."""
    return folder / f"tcp-{port}.sock"


class Forwarder:
    """Accepts on `listener` in a daemon thread; joins each client to `connect()`'s socket (a
    client whose far end cannot be reached is hung up on)."""

    def __init__(self, listener: socket.socket, connect: Callable[[], socket.socket],
                 name: str):
        self.listener, self.connect, self.name = listener, connect, name
        listener.listen(64)
        threading.Thread(target=self._serve, daemon=True, name=name).start()

    @classmethod
    def unix_to_tcp(cls, path: Path, port: int) -> Forwarder:
        """unix socket `path` → 127.0.0.1:`port`."""
        path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        return cls(listener, lambda: socket.create_connection(("127.0.0.1", port), timeout=10),
                   f"forward-{path.name}")

    @classmethod
    def tcp_to_unix(cls, path: Path) -> Forwarder:
        """127.0.0.1 (a free port: `self.port`) → unix socket `path`."""
        listener = socket.create_server(("127.0.0.1", 0))

        def connect() -> socket.socket:
            far = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                far.connect(str(path))
            except OSError:
                far.close()
                raise
            return far
        return cls(listener, connect, f"forward-{path.name}")

    @property
    def port(self) -> int:
        return self.listener.getsockname()[1]

    def close(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._join, args=(client,), daemon=True,
                             name=f"{self.name}-client").start()

    def _join(self, client: socket.socket) -> None:
        try:
            far = self.connect()
        except OSError:
            client.close()
            return
        far.settimeout(None)
        back = threading.Thread(target=_copy, args=(far, client), daemon=True,
                                name=f"{self.name}-back")
        back.start()
        _copy(client, far)
        back.join()
        client.close()
        far.close()


def _copy(source: socket.socket, sink: socket.socket) -> None:
    """Copy until `source` ends, then end `sink`'s sending side (a half-close, as TCP allows)."""
    try:
        while data := source.recv(CHUNK):
            sink.sendall(data)
    except OSError:
        pass
    try:
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass
