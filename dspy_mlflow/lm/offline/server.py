"""The offline model served as an OpenAI-compatible HTTP API on loopback.

Same deterministic nearest-neighbour stand-in as :mod:`dspy_mlflow.lm.offline`
(not a real language model), behind ``POST /v1/chat/completions``
(non-streaming), ``GET /v1/models``, ``GET /health`` and ``GET /stats`` (what
it did: :mod:`dspy_mlflow.lm.offline.stats`). It exists to exercise the
hosted-model path (``openai/<name>`` with ``api_base``), retries, timeouts and
faults without a network. Standard library only; it does not import litellm.

Injected faults (``OfflineOptions.faults``; at most one per attempt) on the wire:

    rate_limit    429 with ``Retry-After: <retry_after_s>``
    server_error  500
    bad_gateway   502
    unavailable   503
    hang          waits hang_s, then answers normally (a client with a shorter timeout gives up)
    reset         closes the connection with a TCP reset (SO_LINGER 0), no response
    no_usage      200, a normal answer without the ``usage`` block
    garbled       200, ``Content-Type: application/json``, the body cut in half (valid framing)

The legacy ``fault_rate`` sends 429 with ``Retry-After: 0`` or 500, chosen by the prompt.

    python -m dspy_mlflow serve-offline --port 8765 --fault rate_limit=0.1 --fault no_usage=0.2
    # then: dspy.LM("openai/offline", api_base="http://127.0.0.1:8765/v1", api_key="dummy")
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dspy_mlflow.lm.offline import Fault, FaultInjector, OfflineOptions, answer
from dspy_mlflow.lm.offline.draws import Draws
from dspy_mlflow.lm.offline.stats import ServerStats

MODEL_ID = "offline"

_ERRORS = {  # fault kind -> (status, OpenAI error type, code)
    "rate_limit": (429, "rate_limit_exceeded", "rate_limit_exceeded"),
    "server_error": (500, "server_error", "internal_error"),
    "bad_gateway": (502, "server_error", "bad_gateway"),
    "unavailable": (503, "server_error", "service_unavailable"),
}


class OfflineHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, options: OfflineOptions, api_key: str | None = None):
        super().__init__(addr, _Handler)
        self.options = options
        self.api_key = api_key
        self.faults = FaultInjector()
        self.draws = Draws()
        self.stats = ServerStats()
        self.closing = threading.Event()  # cuts hang faults short on close

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def requests_served(self) -> int:
        """Chat-completion requests received (``stats.requests``)."""
        return self.stats.requests

    def server_close(self) -> None:
        self.closing.set()
        super().server_close()


def _error_body(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _retry_after(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


class _Handler(BaseHTTPRequestHandler):
    server: OfflineHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "dspy-mlflow-offline/1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return  # quiet: no line per request

    # ----------------------------------------------------------------- helpers
    def _send_bytes(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(body).encode(), headers)

    def _reject(self, message: str, code: str | None = None) -> None:
        self.server.stats.count_rejected()
        self._send(400, _error_body(message, "invalid_request_error", code))

    def _authorized(self) -> bool:
        key = self.server.api_key
        if not key:
            return True
        if self.headers.get("Authorization", "") == f"Bearer {key}":
            return True
        self._send(
            401, _error_body("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        )
        return False

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def _reset_connection(self) -> None:
        """Abort the TCP connection: SO_LINGER 0 makes close() send RST, not FIN."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    # ----------------------------------------------------------------- routes
    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        path = self._path()
        if path in ("/health", "/v1/health"):
            self._send(200, {"status": "ok"})
            return
        if path in ("/stats", "/v1/stats"):
            self._send(200, self.server.stats.snapshot())
            return
        if not self._authorized():
            return
        if path == "/v1/models":
            self._send(
                200,
                {
                    "object": "list",
                    "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "dspy_mlflow"}],
                },
            )
            return
        self._send(404, _error_body(f"Unknown path {path}", "invalid_request_error", "not_found"))

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        path = self._path()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self._authorized():
            return
        if path != "/v1/chat/completions":
            self._send(404, _error_body(f"Unknown path {path}", "invalid_request_error", "not_found"))
            return
        try:
            body = json.loads(raw or b"{}")
            messages = body["messages"]
            if not isinstance(messages, list):
                raise TypeError("messages must be a list")
        except (ValueError, KeyError, TypeError) as exc:
            self._reject(f"Invalid request: {exc}")
            return
        if body.get("stream"):
            self._reject("Streaming is not supported by the offline server.", "stream_unsupported")
            return
        opts = self.server.options
        if opts.latency_ms > 0:
            time.sleep(opts.latency_ms / 1000.0)
        self.server.stats.count_request()
        fault = self.server.faults.draw(messages, opts)
        if fault is not None:
            self.server.stats.count_fault(fault.kind)
            if self._fail(fault, opts):
                return
        self._answer(body, messages, fault)

    def _fail(self, fault: Fault, opts: OfflineOptions) -> bool:
        """Act out a fault; True when no answer follows."""
        if fault.kind in _ERRORS:
            status, type_, code = _ERRORS[fault.kind]
            headers = (
                {"Retry-After": _retry_after(fault.retry_after_s)} if fault.kind == "rate_limit" else None
            )
            message = f"Offline server: injected fault ({fault.kind})."
            self._send(status, _error_body(message, type_, code), headers)
            return True
        if fault.kind == "reset":
            self._reset_connection()
            return True
        if fault.kind == "hang" and self.server.closing.wait(opts.hang_s):
            self._reset_connection()  # the server is closing: give up the stalled request
            return True
        return False  # hang (over), no_usage, garbled: an answer follows

    def _answer(self, body: dict[str, Any], messages: list, fault: Fault | None) -> None:
        kind = fault.kind if fault is not None else None
        temperature, seed = body.get("temperature"), body.get("seed")
        text, usage = answer(messages, self.server.options, response_format=body.get("response_format"),
                             temperature=temperature, seed=seed,
                             draw=self.server.draws.next(messages, temperature, seed))
        reply: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model") or MODEL_ID),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
        }
        usage_in_body = kind not in ("no_usage", "garbled")
        if kind != "no_usage":
            reply["usage"] = usage
        self.server.stats.count_answer(usage, usage_in_body=usage_in_body, fault=kind)
        data = json.dumps(reply).encode()
        if kind == "garbled":
            data = data[: len(data) // 2]  # truncated JSON, framed by its own Content-Length
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a timed-out client left
            self._send_bytes(200, data)


def start_server(
    host: str = "127.0.0.1", port: int = 0, options: OfflineOptions | None = None, api_key: str | None = None
) -> tuple[OfflineHTTPServer, threading.Thread]:
    """Start the server in a daemon thread; ``server.server_address`` has the bound port."""
    server = OfflineHTTPServer((host, port), options or OfflineOptions(), api_key)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="offline-llm-server", daemon=True
    )  # a short poll interval: shutdown() returns in 50 ms, not 500
    thread.start()
    return server, thread


@contextlib.contextmanager
def serving(
    host: str = "127.0.0.1", port: int = 0, options: OfflineOptions | None = None, api_key: str | None = None
) -> Iterator[str]:
    """Context manager yielding the base URL (``http://127.0.0.1:PORT/v1``)."""
    server, thread = start_server(host, port, options, api_key)
    try:
        yield server.base_url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


