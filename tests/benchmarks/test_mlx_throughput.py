"""Opt-in: generation throughput through the LiteLLM `mlx` provider vs raw mlx_lm.stream_generate.

    pytest -m benchmark tests/benchmarks/test_mlx_throughput.py -s

Both sides run on the same tiny local model, same chat-templated prompt, greedy, same
max_tokens, interleaved in one run; the assertion is on their ratio, never absolute times.
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ["HF_HUB_OFFLINE"] = "1"

import pytest  # noqa: E402

pytestmark = [pytest.mark.benchmark, pytest.mark.mlx]

MAX_TOKENS = 384
ROUNDS = 15
MESSAGES = [
    {"role": "system", "content": "You answer questions."},
    {"role": "user", "content": "Question: tell me a long story about a fox and a dog."},
]


def test_provider_throughput_close_to_raw_mlx(tmp_path_factory):
    pytest.importorskip("mlx_lm")
    import litellm
    from mlx_lm import load, stream_generate

    from dspy_mlflow.lm.mlx import provider as mlx_provider
    from dspy_mlflow.lm.mlx.tiny import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("bench") / "tiny", seed=0)
    mlx_provider.setup({"litellm_model": f"mlx/{path}"})
    model, tok = load(str(path))
    prompt = tok.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    ids = tok.encode(prompt, add_special_tokens=False)

    def raw() -> tuple[int, float]:
        t0 = time.perf_counter()
        n = 0
        for r in stream_generate(model, tok, ids, max_tokens=MAX_TOKENS):
            n = r.generation_tokens
        return n, time.perf_counter() - t0

    def provider() -> tuple[int, float]:
        t0 = time.perf_counter()
        r = litellm.completion(model=f"mlx/{path}", messages=MESSAGES, max_tokens=MAX_TOKENS, temperature=0.0)
        return r.usage.completion_tokens, time.perf_counter() - t0

    raw(), provider()  # warm up both (model load, graph compile, litellm first-call costs)
    raw_tps, prov_tps = [], []
    for i in range(ROUNDS):  # interleaved, alternating which side goes first
        if i % 2:
            n2, dt2 = provider()
            n, dt = raw()
        else:
            n, dt = raw()
            n2, dt2 = provider()
        raw_tps.append(n / dt)
        prov_tps.append(n2 / dt2)
        assert n == n2, "both sides generate the same number of tokens"
    # Each round pairs two adjacent measurements, so load from other processes on a shared
    # machine hits both sides alike; the median of the per-round ratios is what is asserted.
    ratio = statistics.median(p / r for p, r in zip(prov_tps, raw_tps, strict=True))
    raw_best, prov_best = max(raw_tps), max(prov_tps)
    raw_med, prov_med = statistics.median(raw_tps), statistics.median(prov_tps)
    print(
        f"\nmlx throughput ({n} tokens/call, {ROUNDS} interleaved rounds): "
        f"raw mlx_lm median {raw_med:.0f} tok/s (best {raw_best:.0f}), "
        f"provider via litellm median {prov_med:.0f} tok/s (best {prov_best:.0f}); "
        f"median per-round ratio {ratio:.3f}, best/best {prov_best / raw_best:.3f}"
    )
    assert ratio >= 0.9
