"""The offline model served as an OpenAI-compatible HTTP API on loopback.

Same deterministic nearest-neighbour stand-in as :mod:`dspy_mlflow.lm.offline`
(not a real language model), behind ``POST /v1/chat/completions``
(non-streaming), ``GET /v1/models`` and ``GET /health``. It exists to exercise
the hosted-model path (``openai/<name>`` with ``api_base``), retries and
faults without a network. Standard library only; it does not import litellm.

    python -m dspy_mlflow serve-offline --port 8765 --fault-rate 0.2
    # then: dspy.LM("openai/offline", api_base="http://127.0.0.1:8765/v1", api_key="dummy")
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dspy_mlflow.lm.offline import FaultInjector, OfflineOptions, answer

MODEL_ID = "offline"


class OfflineHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, options: OfflineOptions, api_key: str | None = None):
        super().__init__(addr, _Handler)
        self.options = options
        self.api_key = api_key
        self.faults = FaultInjector()
        self.requests_served = 0
        self._count_lock = threading.Lock()

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"


def _error_body(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


class _Handler(BaseHTTPRequestHandler):
    server: OfflineHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "dspy-mlflow-offline/1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return  # quiet: no line per request

    # ----------------------------------------------------------------- helpers
    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

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

    # ----------------------------------------------------------------- routes
    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        path = self._path()
        if path in ("/health", "/v1/health"):
            self._send(200, {"status": "ok"})
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
            self._send(400, _error_body(f"Invalid request: {exc}", "invalid_request_error"))
            return
        if body.get("stream"):
            self._send(
                400,
                _error_body(
                    "Streaming is not supported by the offline server.",
                    "invalid_request_error",
                    "stream_unsupported",
                ),
            )
            return
        opts = self.server.options
        if opts.latency_ms > 0:
            time.sleep(opts.latency_ms / 1000.0)
        with self.server._count_lock:
            self.server.requests_served += 1
        if self.server.faults.should_fail(messages, opts):
            digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).digest()
            if digest[0] % 2:
                self._send(
                    429,
                    _error_body(
                        "Offline server: injected fault (rate limited).",
                        "rate_limit_exceeded",
                        "rate_limit_exceeded",
                    ),
                    {"Retry-After": "0"},
                )
            else:
                self._send(
                    500,
                    _error_body(
                        "Offline server: injected fault (internal error).", "server_error", "internal_error"
                    ),
                )
            return
        text, usage = answer(messages, opts, response_format=body.get("response_format"))
        self._send(
            200,
            {
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
                "usage": usage,
            },
        )


def start_server(
    host: str = "127.0.0.1", port: int = 0, options: OfflineOptions | None = None, api_key: str | None = None
) -> tuple[OfflineHTTPServer, threading.Thread]:
    """Start the server in a daemon thread; ``server.server_address`` has the bound port."""
    server = OfflineHTTPServer((host, port), options or OfflineOptions(), api_key)
    thread = threading.Thread(target=server.serve_forever, name="offline-llm-server", daemon=True)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dspy_mlflow serve-offline",
        description="Serve the offline nearest-neighbour stand-in model (not a real LM) "
        "as an OpenAI-compatible API on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fallback-label", default=None)
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY'")
    args = parser.parse_args(argv)
    try:
        options = OfflineOptions.from_mapping(
            {
                "latency_ms": args.latency_ms,
                "fault_rate": args.fault_rate,
                "seed": args.seed,
                "fallback_label": args.fallback_label,
            }
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        server = OfflineHTTPServer((args.host, args.port), options, args.api_key)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(server.base_url, flush=True)
    print(
        "offline model (a nearest-neighbour stand-in, not a real LM) serving; Ctrl-C to stop",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
