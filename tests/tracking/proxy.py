"""A logging proxy on loopback: counts, from the provider's side, what a job really sent.

It forwards every POST to an upstream OpenAI-compatible server (the offline model
served over HTTP) and keeps a tally per attempt: answered (200 with a JSON body),
with or without a ``usage`` block, the tokens that block carried, and failures
(any other status, an unparsable body, a connection the upstream reset).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse


@dataclass
class Tally:
    attempts: int = 0
    answered: int = 0  # 200 with a JSON body: a call the provider bills
    without_usage: int = 0
    failed: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def cost(self, input_per_1m: float, output_per_1m: float) -> float:
        return (self.tokens_in * input_per_1m + self.tokens_out * output_per_1m) / 1e6


class _Proxy(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream: str):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = urlparse(upstream)
        self.tally = Tally()
        self.lock = threading.Lock()
        self.in_flight = 0

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Block until no request is being forwarded (a killed client's calls still finish upstream)."""
        deadline = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not self.in_flight, f"{self.in_flight} requests still in flight after {timeout}s"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{self.upstream.path}"


class _Handler(BaseHTTPRequestHandler):
    server: _Proxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        return

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        with self.server.lock:
            self.server.in_flight += 1
        try:
            self._forward()
        finally:
            with self.server.lock:
                self.server.in_flight -= 1

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        up = self.server.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        try:
            conn.request("POST", self.path, body=body, headers=headers)
            response = conn.getresponse()
            status, reply, reply_headers = response.status, response.read(), response.getheaders()
        except (ConnectionError, http.client.HTTPException, OSError):
            self._count(None, b"")
            self.close_connection = True
            return
        finally:
            conn.close()
        self._count(status, reply)
        self.send_response(status)
        for key, value in reply_headers:
            if key.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def _count(self, status: int | None, reply: bytes) -> None:
        usage, answered = None, False
        if status == 200:
            with contextlib.suppress(ValueError):
                usage, answered = json.loads(reply).get("usage"), True
        with self.server.lock:
            t = self.server.tally
            t.attempts += 1
            t.statuses[status or 0] = t.statuses.get(status or 0, 0) + 1
            if not answered:
                t.failed += 1
                return
            t.answered += 1
            if usage:
                t.tokens_in += int(usage.get("prompt_tokens") or 0)
                t.tokens_out += int(usage.get("completion_tokens") or 0)
            else:
                t.without_usage += 1


@contextlib.contextmanager
def logging_proxy(upstream: str) -> Iterator[_Proxy]:
    """A proxy in front of ``upstream`` (``http://127.0.0.1:PORT/v1``); ``.base_url``, ``.tally``."""
    proxy = _Proxy(upstream)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True, name="logging-proxy")
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(timeout=5)
