"""`Bridge`: how OSWorld's controllers reach a cua desktop. They call
`http://{vm_ip}:{server_port}/...` with no credentials; a cua control server wants its bearer
token and may listen on a unix socket (docker desktops). The bridge listens on 127.0.0.1 and
forwards every request to the desktop's control server with the token added, streaming bodies
both ways. OSWorld's other ports in the desktop (Chrome's DevTools, VLC) are where the controllers
can reach them: a local desktop shares this host's loopback; a docker desktop offers each as a
unix socket, which the bridge forwards from a port of its own."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

import httpx

from cua.desktop import registry
from cua.desktop.client import UNIX, Desktop, http_client
from cua.desktop.osworld import GUEST_PORTS
from cua.desktop.tunnel import Forwarder, port_socket

CHUNK = 1 << 20
# Per-connection headers (RFC 9110 §7.6.1), and those the bridge sets itself.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "transfer-encoding", "upgrade", "host", "authorization"}
NO_BODY = {204, 304}


class Bridge:
    """An HTTP server on 127.0.0.1:`port` forwarding to `desktop`'s control server. `vm` is the
    scorer worker's view of it: OSWorld's vm_ip, server_port, chromium_port and vlc_port."""

    def __init__(self, desktop: Desktop, timeout_s: float = 1900.0):
        """`timeout_s` bounds one forwarded request (OSWorld's open step waits up to 1800 s)."""
        token = registry.load(desktop.id).token
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Forward)
        self.server.daemon_threads = True
        self.server.upstream = http_client(desktop.base_url, token, timeout_s)
        self.port: int = self.server.server_address[1]
        self.forwarders: list[Forwarder] = []
        self.vm = {"host": "127.0.0.1", "server_port": self.port, **GUEST_PORTS}
        if desktop.base_url.startswith(UNIX):
            folder = Path(desktop.base_url.removeprefix(UNIX)).parent
            for name, port in GUEST_PORTS.items():
                self.forwarders.append(Forwarder.tcp_to_unix(port_socket(folder, port)))
                self.vm[name] = self.forwarders[-1].port
        threading.Thread(target=self.server.serve_forever, daemon=True,
                         name=f"bridge-{desktop.id}").start()

    def close(self) -> None:
        for forwarder in self.forwarders:
            forwarder.close()
        self.server.shutdown()
        self.server.server_close()
        self.server.upstream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_) -> None:
        self.close()


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests expects
    # TCP_NODELAY: a body written after its headers goes at once, not after the client's
    # delayed ACK (40 ms per request on a kept-alive connection)
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._forward()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def log_message(self, *_) -> None:
        """Quiet: the desktop's server logs what matters."""

    def _forward(self) -> None:
        upstream: httpx.Client = self.server.upstream
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        # A new connection each time: a pooled one the server is just closing (uvicorn drops
        # idle ones after 5 s) would fail a request that cannot be replayed (its body streams).
        headers.append(("Connection", "close"))
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = self._chunked()
        else:
            body = self._sized(int(self.headers.get("Content-Length") or 0))
        request = upstream.build_request(self.command, self.path, headers=headers, content=body)
        try:
            response = upstream.send(request, stream=True)
        except (httpx.HTTPError, OSError, ValueError) as exc:  # ValueError: bad chunking
            self.close_connection = True
            return self._error(502, f"the desktop's control server: {type(exc).__name__}: {exc}")
        # A refusal (401, 413) may come before the body was read: its rest would poison the
        # connection, so it ends here.
        if response.status_code >= 400 and body != b"":
            self.close_connection = True
        try:
            self._relay(response)
        except (httpx.HTTPError, OSError):
            self.close_connection = True  # past the headers: all that is left is to hang up
        finally:
            response.close()

    def _relay(self, response: httpx.Response) -> None:
        self.send_response_only(response.status_code, response.reason_phrase)
        for key, value in response.headers.multi_items():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        chunked = ("content-length" not in response.headers and self.command != "HEAD"
                   and response.status_code not in NO_BODY)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for data in response.iter_raw(CHUNK):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _sized(self, length: int) -> Iterator[bytes] | bytes:
        if not length:
            return b""

        def read() -> Iterator[bytes]:
            left = length
            while left:
                data = self.rfile.read(min(CHUNK, left))
                if not data:
                    raise ConnectionError("the client hung up before sending its body")
                left -= len(data)
                yield data
        return read()

    def _chunked(self) -> Iterator[bytes]:
        while size := int(self.rfile.readline().split(b";")[0], 16):
            yield self.rfile.read(size)
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
            pass

    def _error(self, status: int, detail: str) -> None:
        payload = json.dumps({"error": "bridge", "detail": detail}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
