"""``python -m dspy_mlflow build-mlx-tiny [PATH]``: the tiny random-weight MLX model, built locally."""

from __future__ import annotations

import argparse
from pathlib import Path

from dspy_mlflow.lm.mlx.tiny import build_tiny_model, default_tiny_path, is_complete


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dspy_mlflow build-mlx-tiny",
        description="Build a tiny random-weight MLX Llama (no download) for tests and model=mlx_tiny.",
    )
    parser.add_argument(
        "path", nargs="?", default=None, help=f"output folder (default: {default_tiny_path()})"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = Path(args.path) if args.path else default_tiny_path()
    already = is_complete(path)
    out = build_tiny_model(path, seed=args.seed)
    print(f"{'exists' if already else 'built'}: {out}")
    return 0
