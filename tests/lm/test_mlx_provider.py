"""Real MLX inference on a tiny random-weight model, through LiteLLM and DSPy (no download)."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from dspy_mlflow.errors import ProviderError

pytestmark = pytest.mark.mlx

MSGS = [
    {"role": "system", "content": "You answer questions."},
    {"role": "user", "content": "Question: what is the capital of France?"},
]


def _model(path) -> str:
    return f"mlx/{path}"


def _raw_greedy(raw, messages, max_tokens):
    """Text, prompt token count and generated token count from mlx_lm directly."""
    from mlx_lm import stream_generate

    model, tok = raw
    prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tok.encode(prompt, add_special_tokens=False)
    text, n = "", 0
    for r in stream_generate(model, tok, ids, max_tokens=max_tokens):
        text += r.text
        n = r.generation_tokens
    return text, len(ids), n


def test_completion_matches_raw_mlx_and_reports_usage(mlx_registered, mlx_tiny_raw):
    import litellm

    r = litellm.completion(model=_model(mlx_registered), messages=MSGS, max_tokens=24, temperature=0.0)
    text, prompt_tokens, gen_tokens = _raw_greedy(mlx_tiny_raw, MSGS, 24)
    assert r.choices[0].message.content == text
    assert r.usage.prompt_tokens == prompt_tokens > 0
    assert r.usage.completion_tokens == gen_tokens
    assert r.usage.total_tokens == prompt_tokens + gen_tokens
    if r.choices[0].finish_reason == "length":
        assert r.usage.completion_tokens == 24
    # prompt tokens agree with the tokenizer loaded independently through transformers
    from transformers import AutoTokenizer

    hf_tok = AutoTokenizer.from_pretrained(str(mlx_registered))
    ids = hf_tok.apply_chat_template(MSGS, add_generation_prompt=True, tokenize=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    assert r.usage.prompt_tokens == len(ids)


def test_acompletion(mlx_registered):
    import litellm

    async def go():
        return await asyncio.gather(
            *[
                litellm.acompletion(
                    model=_model(mlx_registered), messages=MSGS, max_tokens=8, temperature=0.0
                )
                for _ in range(3)
            ]
        )

    results = asyncio.run(go())
    texts = {r.choices[0].message.content for r in results}
    assert len(texts) == 1
    for r in results:
        assert r.usage.prompt_tokens > 0 and 0 < r.usage.completion_tokens <= 8


def test_stop_string_cuts_text_and_stops_generation(mlx_registered):
    import litellm

    model = _model(mlx_registered)
    full = litellm.completion(model=model, messages=MSGS, max_tokens=32, temperature=0.0)
    text = full.choices[0].message.content
    assert len(text) >= 6, text
    stop = text[4:6]
    expected = text[: text.find(stop)]
    r = litellm.completion(
        model=model, messages=MSGS, max_tokens=32, temperature=0.0, stop=[stop, "\x00never"]
    )
    assert r.choices[0].message.content == expected
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens < full.usage.completion_tokens
    # a single string works too
    r2 = litellm.completion(model=model, messages=MSGS, max_tokens=32, temperature=0.0, stop=stop)
    assert r2.choices[0].message.content == expected


def test_sampling_with_seed_is_reproducible(mlx_registered):
    import litellm

    kw = dict(model=_model(mlx_registered), messages=MSGS, max_tokens=16, temperature=1.0, top_p=0.9, seed=7)
    a = litellm.completion(**kw).choices[0].message.content
    b = litellm.completion(**kw).choices[0].message.content
    assert a == b


def test_dspy_program_parse_failures_surface_as_adapter_errors(mlx_registered):
    import dspy
    from dspy.utils.exceptions import AdapterParseError

    class QA(dspy.Signature):
        """Answer the question."""

        question: str = dspy.InputField()
        answer: str = dspy.OutputField()

    lm = dspy.LM(_model(mlx_registered), max_tokens=24, temperature=0.0, cache=False)
    with dspy.context(lm=lm), pytest.raises(AdapterParseError):
        dspy.Predict(QA)(question="What is 2 + 2?")
    assert lm.history, "the LM was called"
    usage = lm.history[-1]["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0


def test_dspy_lm_call_returns_text(mlx_registered):
    import dspy

    lm = dspy.LM(_model(mlx_registered), max_tokens=8, temperature=0.0, cache=False)
    out = lm(messages=MSGS)
    assert isinstance(out, list) and isinstance(out[0], str)


def test_threads_share_one_loaded_model(mlx_registered):
    import litellm

    from dspy_mlflow.lm.mlx import provider as mlx_provider

    mlx_provider.CACHE.clear()
    before = mlx_provider.load_count()

    def call(_):
        r = litellm.completion(model=_model(mlx_registered), messages=MSGS, max_tokens=8, temperature=0.0)
        return r.choices[0].message.content

    with ThreadPoolExecutor(max_workers=4) as pool:
        texts = list(pool.map(call, range(12)))
    assert mlx_provider.load_count() - before == 1
    assert len(set(texts)) == 1  # serialized generation: identical greedy outputs


def test_lru_evicts_with_max_loaded_models_one(mlx_registered, mlx_tiny_path_b):
    import litellm

    from dspy_mlflow.lm.mlx import provider as mlx_provider

    a, b = mlx_registered.resolve(), mlx_tiny_path_b.resolve()
    mlx_provider.CACHE.clear()
    mlx_provider.set_max_loaded_models(1)
    loads_a = mlx_provider.CACHE.loads.get(str(a), 0)
    loads_b = mlx_provider.CACHE.loads.get(str(b), 0)
    for path in (a, b, a):
        litellm.completion(model=_model(path), messages=MSGS, max_tokens=4)
        assert mlx_provider.CACHE.loaded() == [path]
    assert mlx_provider.CACHE.loads[str(a)] - loads_a == 2
    assert mlx_provider.CACHE.loads[str(b)] - loads_b == 1

    mlx_provider.set_max_loaded_models(2)
    try:
        before = mlx_provider.load_count()
        for path in (b, a, b, a):
            litellm.completion(model=_model(path), messages=MSGS, max_tokens=4)
        assert mlx_provider.load_count() - before == 1  # b loaded once, then both stay
        assert set(mlx_provider.CACHE.loaded()) == {a, b}
    finally:
        mlx_provider.set_max_loaded_models(1)


def test_missing_hub_model_names_model_cache_and_command():
    from dspy_mlflow.lm.mlx import provider as mlx_provider

    repo = "mlx-community/no-such-model-for-tests-4bit"
    with pytest.raises(ProviderError) as info:
        mlx_provider.setup({"name": "x", "litellm_model": f"mlx/{repo}"})
    msg = str(info.value)
    assert "\n" not in msg
    assert repo in msg
    assert "Hugging Face cache" in msg and mlx_provider._hf_cache_dir() in msg
    assert f"hf download {repo}" in msg


def test_missing_local_folder_names_path_and_command(tmp_path):
    from dspy_mlflow.lm.mlx import provider as mlx_provider

    missing = tmp_path / "nothing_here"
    with pytest.raises(ProviderError) as info:
        mlx_provider.setup({"litellm_model": f"mlx/{missing}"})
    msg = str(info.value)
    assert "\n" not in msg and str(missing) in msg and "does not exist" in msg
    assert f"python -m dspy_mlflow build-mlx-tiny {missing}" in msg

    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text("{}")
    with pytest.raises(ProviderError, match=r"missing \*\.safetensors weights"):
        mlx_provider.resolve_model_path(f"mlx/{no_weights}")


def test_setup_builds_tiny_model_and_expands_home(tmp_path, monkeypatch):
    import litellm

    from dspy_mlflow.lm import hardware
    from dspy_mlflow.lm.mlx import models as mlx_models
    from dspy_mlflow.lm.mlx import provider as mlx_provider

    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = {
        "name": "mlx_tiny",
        "litellm_model": "mlx/~/models/tiny",
        "provider_options": {"build_if_missing": True},
    }
    tags = mlx_provider.setup(cfg)
    folder = tmp_path / "models" / "tiny"
    assert (folder / "model.safetensors").is_file()
    assert tags["dspy_mlflow.mlx.model_path"] == str(folder.resolve())
    for key in hardware.detect():
        assert tags[key]
    r = litellm.completion(model="mlx/~/models/tiny", messages=MSGS, max_tokens=4)
    assert r.usage.completion_tokens > 0
    mlx_models.CACHE.clear()


def test_setup_registration_is_idempotent_and_keeps_other_providers(mlx_registered):
    import litellm
    from litellm import CustomLLM

    from dspy_mlflow.lm.mlx import provider as mlx_provider

    saved = list(litellm.custom_provider_map)
    other = CustomLLM()
    try:
        litellm.custom_provider_map = [*saved, {"provider": "otherprov", "custom_handler": other}]
        cfg = {"litellm_model": f"mlx/{mlx_registered}"}
        mlx_provider.setup(cfg)
        mlx_provider.setup(cfg)
        providers = [e["provider"] for e in litellm.custom_provider_map]
        assert providers.count("mlx") == 1
        assert "otherprov" in providers
        assert "mlx" in litellm._custom_providers
    finally:
        litellm.custom_provider_map = saved


def test_setup_rejects_non_mlx_model():
    from dspy_mlflow.lm.mlx import provider as mlx_provider

    with pytest.raises(ProviderError, match="not an MLX model"):
        mlx_provider.setup({"litellm_model": "openai/gpt-4o"})


def test_hf_offline_is_set():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


def test_streaming_returns_text_and_usage(mlx_registered):
    import litellm

    full = litellm.completion(model=_model(mlx_registered), messages=MSGS, max_tokens=8, temperature=0.0)
    chunks = list(
        litellm.completion(
            model=_model(mlx_registered),
            messages=MSGS,
            max_tokens=8,
            temperature=0.0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)
    assert text == full.choices[0].message.content
    rebuilt = litellm.stream_chunk_builder(chunks)
    assert rebuilt.usage.completion_tokens == full.usage.completion_tokens


def test_coexists_with_offline_provider(mlx_registered):
    offline = pytest.importorskip("dspy_mlflow.lm.offline")
    import litellm

    from dspy_mlflow.lm.mlx import provider as mlx_provider

    saved = list(litellm.custom_provider_map)
    try:
        mlx_provider.setup({"litellm_model": f"mlx/{mlx_registered}"})
        offline.setup({"litellm_model": "offline/nn", "provider_options": {}})
        mlx_provider.setup({"litellm_model": f"mlx/{mlx_registered}"})
        providers = [e["provider"] for e in litellm.custom_provider_map]
        assert providers.count("mlx") == 1 and providers.count("offline") == 1
        r = litellm.completion(model=_model(mlx_registered), messages=MSGS, max_tokens=4)
        assert r.usage.completion_tokens > 0
        r = litellm.completion(model="offline/nn", messages=MSGS, max_tokens=4)
        assert r.usage.prompt_tokens > 0
    finally:
        litellm.custom_provider_map = saved


def test_a_stream_read_in_part_does_not_hold_the_model(mlx_registered):
    """The reader stops after one chunk and keeps the stream: the model is free for the next call."""
    import litellm

    stream = litellm.completion(model=_model(mlx_registered), messages=MSGS, max_tokens=64, temperature=0.0,
                                stream=True)
    next(iter(stream))
    # a call on the same model while that stream is open, from this very thread, finishes
    done = litellm.completion(model=_model(mlx_registered), messages=MSGS, max_tokens=4, temperature=0.0)
    assert done.usage.completion_tokens > 0
    stream.completion_stream.close()  # the reader goes away: generation stops at the next piece
