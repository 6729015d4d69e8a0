"""``python -m dspy_mlflow serve-offline``: the offline model as an OpenAI-compatible API on loopback."""

from __future__ import annotations

import argparse
import sys

from dspy_mlflow.lm.faults import FAULT_KINDS
from dspy_mlflow.lm.offline import OfflineOptions
from dspy_mlflow.lm.offline.server import OfflineHTTPServer


def _fault_flag(text: str) -> tuple[str, str]:
    kind, sep, rate = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(
            f"--fault {text!r}: expected KIND=RATE, kinds: {', '.join(FAULT_KINDS)}"
        )
    return kind.strip(), rate.strip()


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"--port={text!r} is not allowed: a port number 0..65535 (0: a free one)")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dspy_mlflow serve-offline",
        description="Serve the offline nearest-neighbour stand-in model (not a real LM) "
        "as an OpenAI-compatible API on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, default=8765, help="0 picks a free one (default: %(default)s)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0, help="legacy: 429 (Retry-After 0) or 500")
    parser.add_argument(
        "--fault", type=_fault_flag, action="append", default=[], metavar="KIND=RATE",
        help=f"inject a fault kind at a rate (repeatable); kinds: {', '.join(FAULT_KINDS)}",
    )  # fmt: skip
    parser.add_argument("--retry-after-s", type=float, default=1.0, help="Retry-After of rate_limit faults")
    parser.add_argument("--hang-s", type=float, default=30.0, help="how long a hang fault stalls")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fallback-label", default=None)
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY'")
    return parser


def options_from_args(args: argparse.Namespace) -> OfflineOptions:
    """The flags as OfflineOptions; a bad value raises OfflineOptionError naming ``serve-offline.<key>``."""
    return OfflineOptions.from_mapping(
        {
            "latency_ms": args.latency_ms,
            "fault_rate": args.fault_rate,
            "faults": dict(args.fault),
            "retry_after_s": args.retry_after_s,
            "hang_s": args.hang_s,
            "seed": args.seed,
            "fallback_label": args.fallback_label,
        },
        prefix="serve-offline",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        options = options_from_args(args)
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
