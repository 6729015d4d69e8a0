"""The offline model: a deterministic nearest-neighbour stand-in (real DSPy and LiteLLM, no mocks)."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import json
import time
from typing import Literal

import dspy
import pytest

from dspy_mlflow.lm import offline
from dspy_mlflow.lm.offline import FaultInjector, OfflineOptions, answer, setup

POS = [
    "a wonderful film with great acting",
    "i loved the wonderful story and great music",
    "great fun, the cast was brilliant",
    "a brilliant and delightful movie",
    "delightful, charming and great",
    "loved it, a charming little gem",
    "superb direction and a great script",
    "a joyful and superb experience",
]
NEG = [
    "a terrible film with awful acting",
    "i hated the boring story and awful music",
    "boring mess, the cast was dreadful",
    "a dreadful and tedious movie",
    "tedious, dull and awful",
    "hated it, a dull waste of time",
    "poor direction and a terrible script",
    "a miserable and poor experience",
]
TEST = [
    ("great acting and a wonderful script", "positive"),
    ("charming, delightful story", "positive"),
    ("superb and joyful film", "positive"),
    ("brilliant cast, loved the music", "positive"),
    ("awful acting and a terrible script", "negative"),
    ("dull, tedious story", "negative"),
    ("miserable and poor film", "negative"),
    ("dreadful cast, hated the music", "negative"),
]


class Sentiment(dspy.Signature):
    """Classify the sentiment of a movie review."""

    text: str = dspy.InputField()
    sentiment: Literal["negative", "positive"] = dspy.OutputField()


class AllTypes(dspy.Signature):
    """Every common output type."""

    question: str = dspy.InputField()
    label: Literal["b", "a"] = dspy.OutputField()
    count: int = dspy.OutputField()
    score: float = dspy.OutputField()
    flag: bool = dspy.OutputField()
    items: list[str] = dspy.OutputField()
    mapping: dict[str, int] = dspy.OutputField()
    note: str = dspy.OutputField()


def ex(text, label=None):
    kw = {"text": text}
    if label is not None:
        kw["sentiment"] = label
    return dspy.Example(**kw).with_inputs("text")


def demos(n_per_class):
    out = []
    for p, n in zip(POS[:n_per_class], NEG[:n_per_class], strict=True):
        out += [ex(p, "positive"), ex(n, "negative")]
    return out


@pytest.fixture
def offline_lm():
    setup({"provider_options": {}})
    lm = dspy.LM("offline/nn", cache=False, num_retries=0)
    yield lm
    setup({"provider_options": {}})


# ----------------------------------------------------------------------------- answer()


def test_nearest_neighbour_picks_most_similar_demo():
    msgs = dspy.ChatAdapter().format(
        Sentiment,
        [ex("the plot was boring and dull", "negative"), ex("sunny happy delightful day", "positive")],
        {"text": "such a dull and boring plot"},
    )
    text, _ = answer(msgs, OfflineOptions())
    assert dspy.ChatAdapter().parse(Sentiment, text) == {"sentiment": "negative"}
    msgs = dspy.ChatAdapter().format(
        Sentiment,
        [ex("the plot was boring and dull", "negative"), ex("sunny happy delightful day", "positive")],
        {"text": "a delightful day"},
    )
    text, _ = answer(msgs, OfflineOptions())
    assert dspy.ChatAdapter().parse(Sentiment, text) == {"sentiment": "positive"}


@pytest.mark.parametrize("adapter", [dspy.ChatAdapter(), dspy.JSONAdapter()], ids=["chat", "json"])
def test_fallback_without_demos_parses_for_every_type(adapter):
    msgs = adapter.format(AllTypes, [], {"question": "anything?"})
    fmt = {"type": "json_object"} if isinstance(adapter, dspy.JSONAdapter) else None
    text, _ = answer(msgs, OfflineOptions(), response_format=fmt)
    parsed = adapter.parse(AllTypes, text)
    assert parsed == {
        "label": "b",
        "count": 0,
        "score": 0.0,
        "flag": False,
        "items": [],
        "mapping": {},
        "note": "unknown",
    }


def test_fallback_label_option():
    msgs = dspy.ChatAdapter().format(Sentiment, [], {"text": "whatever"})
    text, _ = answer(msgs, OfflineOptions(fallback_label="positive"))
    assert dspy.ChatAdapter().parse(Sentiment, text) == {"sentiment": "positive"}
    text, _ = answer(msgs, OfflineOptions(fallback_label="not-an-option"))
    assert dspy.ChatAdapter().parse(Sentiment, text) == {"sentiment": "negative"}


def test_json_adapter_answers_json_with_typed_demo_values():
    d = dspy.Example(
        question="how many legs does a spider have",
        label="a",
        count=8,
        score=0.5,
        flag=True,
        items=["x"],
        mapping={"k": 1},
        note="spiders",
    ).with_inputs("question")
    other = dspy.Example(
        question="what colour is the sky",
        label="b",
        count=1,
        score=2.0,
        flag=False,
        items=[],
        mapping={},
        note="sky",
    ).with_inputs("question")
    msgs = dspy.JSONAdapter().format(AllTypes, [other, d], {"question": "legs on a spider?"})
    text, _ = answer(msgs, OfflineOptions(), response_format={"type": "json_object"})
    obj = json.loads(text)
    assert obj["count"] == 8 and obj["flag"] is True and obj["note"] == "spiders"
    assert dspy.JSONAdapter().parse(AllTypes, text)["mapping"] == {"k": 1}


def test_usage_positive_and_deterministic():
    msgs = dspy.ChatAdapter().format(Sentiment, demos(2), {"text": "great acting"})
    t1, u1 = answer(msgs, OfflineOptions())
    t2, u2 = answer([dict(m) for m in msgs], OfflineOptions(seed=5))
    assert (t1, u1) == (t2, u2)
    assert u1["prompt_tokens"] > 50 and u1["completion_tokens"] > 0
    assert u1["total_tokens"] == u1["prompt_tokens"] + u1["completion_tokens"]
    assert u1["completion_tokens"] == offline.count_tokens(t1)


def test_plain_chat_without_dspy_format():
    text, usage = answer([{"role": "user", "content": "hello there"}], OfflineOptions())
    assert text == "unknown" and usage == {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}
    convo = [
        {"role": "user", "content": "capital of france"},
        {"role": "assistant", "content": "Paris"},
        {"role": "user", "content": "capital of spain"},
        {"role": "assistant", "content": "Madrid"},
        {"role": "user", "content": "what is the capital of france?"},
    ]
    assert answer(convo, OfflineOptions())[0] == "Paris"


# ----------------------------------------------------------------------------- setup()


def test_setup_registers_idempotently_and_keeps_other_providers():
    import litellm

    sentinel = object()
    before = list(litellm.custom_provider_map or [])
    try:
        litellm.custom_provider_map = [*before, {"provider": "someone-else", "custom_handler": sentinel}]
        tags = setup({"provider_options": {"seed": 3}})
        setup({"provider_options": {"latency_ms": 1, "seed": 4}})
        setup({})
        setup({"provider_options": None, "name": "offline"})
        providers = [e["provider"] for e in litellm.custom_provider_map]
        assert providers.count("offline") == 1 and "someone-else" in providers
        assert isinstance(tags, dict) and all(isinstance(v, str) for v in tags.values())
        setup({"provider_options": {"seed": 9, "fallback_label": "positive"}})
        assert offline.current_options() == OfflineOptions(seed=9, fallback_label="positive")
        from dspy_mlflow.errors import ProviderError

        with pytest.raises(ProviderError, match="provider_options.latencyms=3 is not allowed"):
            setup({"provider_options": {"latencyms": 3}})
        with pytest.raises(ProviderError, match="fault_rate"):
            setup({"provider_options": {"fault_rate": 1.5}})
    finally:
        litellm.custom_provider_map = [
            e for e in litellm.custom_provider_map if e["provider"] != "someone-else"
        ]
        setup({})


def test_import_does_not_load_litellm():
    import subprocess
    import sys

    code = (
        "import sys, dspy_mlflow.lm.offline, dspy_mlflow.lm.offline.server; print('litellm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------- through DSPy


def accuracy(program, lm):
    with dspy.context(lm=lm):
        return sum(program(text=t).sentiment == y for t, y in TEST) / len(TEST)


def test_predict_accuracy_rises_with_demos(offline_lm):
    prog = dspy.Predict(Sentiment)
    scores = []
    for k in (0, 1, 4, 8):
        prog.demos = demos(k)
        scores.append(accuracy(prog, offline_lm))
    assert scores[0] == 0.5  # fallback: always the first option
    assert scores[0] < scores[1] <= scores[2] <= scores[3], scores
    assert scores[1] < scores[3] == 1.0, scores
    # irrelevant demos do not help: relevance matters, not only the count
    prog.demos = [ex("the weather report for tuesday", "negative"), ex("stock prices fell", "positive")]
    assert accuracy(prog, offline_lm) <= scores[0]


def test_predict_fallback_and_usage_in_history(offline_lm):
    prog = dspy.Predict(Sentiment)
    with dspy.context(lm=offline_lm):
        assert prog(text="great acting").sentiment == "negative"
    usage = offline_lm.history[-1]["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_chain_of_thought_parses_with_reasoning_filler(offline_lm):
    cot = dspy.ChainOfThought(Sentiment)
    cot.predict.demos = demos(4)
    with dspy.context(lm=offline_lm):
        pred = cot(text="awful acting and a terrible script")
    assert pred.sentiment == "negative"
    assert pred.reasoning.startswith("Closest example: ")
    with dspy.context(lm=offline_lm, adapter=dspy.JSONAdapter()):
        pred = cot(text="charming, delightful story")
    assert pred.sentiment == "positive" and pred.reasoning
    assert offline_lm.history[-1]["kwargs"].get("response_format") is not None


def test_async_call_with_latency(offline_lm):
    import asyncio

    setup({"provider_options": {"latency_ms": 50}})
    prog = dspy.Predict(Sentiment)
    prog.demos = demos(2)
    t0 = time.perf_counter()
    with dspy.context(lm=offline_lm):
        pred = asyncio.run(prog.acall(text="a wonderful film"))
    assert pred.sentiment == "positive"
    assert time.perf_counter() - t0 >= 0.05


def test_optimizers_run_against_the_offline_model(offline_lm):
    trainset = [ex(t, "positive") for t in POS[:4]] + [ex(t, "negative") for t in NEG[:4]]

    def metric(example, pred, trace=None):
        return example.sentiment == pred.sentiment

    with dspy.context(lm=offline_lm):
        boot = dspy.BootstrapFewShot(metric=metric, max_bootstrapped_demos=4, max_labeled_demos=4)
        compiled = boot.compile(dspy.Predict(Sentiment), trainset=trainset)
        copro = dspy.COPRO(metric=metric, breadth=2, depth=1, init_temperature=0.0)
        copro.compile(
            dspy.Predict(Sentiment),
            trainset=trainset[:4],
            eval_kwargs={"num_threads": 1, "display_progress": False},
        )
    assert len(compiled.demos) > 0
    assert accuracy(compiled, offline_lm) > 0.5


# ----------------------------------------------------------------------------- faults


def test_fault_injection_is_deterministic_given_seed():
    msgs = [[{"role": "user", "content": f"q{i}"}] for i in range(200)]

    def draws(seed):
        inj = FaultInjector()
        return [inj.should_fail(m, OfflineOptions(fault_rate=0.3, seed=seed)) for m in msgs for _ in range(2)]

    a, b, c = draws(1), draws(1), draws(2)
    assert a == b and a != c
    assert 0.2 < sum(a) / len(a) < 0.4


def test_fault_rate_one_raises_rate_limit_or_server_error(offline_lm):
    # the legacy knob mixes 429 and 500 by prompt, in the provider as on the server
    setup({"provider_options": {"fault_rate": 1.0}})
    kinds = set()
    for prompt in ("hello", "hello 1", "hello 2", "hello 3", "hello 4", "hello 5"):
        with pytest.raises(Exception, match="injected fault") as info:
            offline_lm(prompt)
        kinds.add(type(info.value).__name__)
    assert kinds == {"LMRateLimitError", "LMServerError"}


def test_retries_recover_from_injected_fault():
    # pick a prompt whose first attempt fails and second succeeds under seed 7
    opts = OfflineOptions(fault_rate=0.5, seed=7)
    prompt = None
    for i in range(100):
        inj = FaultInjector()
        m = [{"role": "user", "content": f"retry me {i}"}]
        if inj.should_fail(m, opts) and not inj.should_fail(m, opts):
            prompt = m[0]["content"]
            break
    assert prompt is not None
    try:
        setup({"provider_options": {"fault_rate": 0.5, "seed": 7}})
        lm = dspy.LM("offline/nn", cache=False, num_retries=0)
        with pytest.raises(Exception, match="injected fault"):
            lm(prompt)
        setup({"provider_options": {"fault_rate": 0.5, "seed": 7}})  # resets attempt counters
        lm = dspy.LM("offline/nn", cache=False, num_retries=2)
        assert lm(prompt) == ["unknown"]
    finally:
        setup({})
