"""`mlx_lm.server` on loopback serving the tiny model, called through LiteLLM's OpenAI path.

This is the hosted-model path for local MLX (model=openai_compatible with
litellm_model=openai/default_model and api_base=http://127.0.0.1:PORT/v1).
"""

from __future__ import annotations

import json
import urllib.request

import pytest

pytestmark = [pytest.mark.mlx, pytest.mark.server, pytest.mark.slow]


def test_models_endpoint(mlx_server):
    with urllib.request.urlopen(mlx_server + "/v1/models", timeout=10) as resp:
        body = json.loads(resp.read())
    assert body.get("object") == "list"


def test_litellm_openai_path_reports_usage(mlx_server):
    import litellm

    r = litellm.completion(
        model="openai/default_model",
        api_base=mlx_server + "/v1",
        api_key="not-needed",
        messages=[{"role": "user", "content": "Question: hello?"}],
        max_tokens=12,
        temperature=0.0,
    )
    assert isinstance(r.choices[0].message.content, str)
    assert r.usage.prompt_tokens > 0
    assert 0 < r.usage.completion_tokens <= 12
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_server_matches_provider_greedy_text(mlx_server, mlx_registered):
    import litellm

    msgs = [{"role": "user", "content": "Question: hello?"}]
    via_server = litellm.completion(
        model="openai/default_model", api_base=mlx_server + "/v1", api_key="x",
        messages=msgs, max_tokens=10, temperature=0.0,
    )  # fmt: skip
    via_provider = litellm.completion(
        model=f"mlx/{mlx_registered}", messages=msgs, max_tokens=10, temperature=0.0
    )
    assert via_server.usage.prompt_tokens == via_provider.usage.prompt_tokens
    assert via_server.choices[0].message.content == via_provider.choices[0].message.content
