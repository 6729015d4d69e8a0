"""Secrets are refused on the command line and in configs, and scrubbed from what is logged."""

from __future__ import annotations

import secrets
import string

import pytest
from omegaconf import OmegaConf

from dspy_mlflow.config.secrets import check_config, check_overrides, looks_like_secret, scrub, scrub_text
from dspy_mlflow.errors import ConfigError
from dspy_mlflow.job.validation import validate_job as validate

B62 = string.ascii_letters + string.digits
KEYS = {
    "openai": "sk-" + "".join(secrets.choice(B62) for _ in range(48)),
    "openai-project": "sk-proj-" + secrets.token_urlsafe(100),
    "anthropic": "sk-ant-api03-" + secrets.token_urlsafe(70),
    "github": "ghp_" + "".join(secrets.choice(B62) for _ in range(36)),
    "bearer": "Bearer " + secrets.token_urlsafe(32),
    "hex": secrets.token_hex(32),
    "random": "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6",
}
# ordinary values that must never be taken for a key
ORDINARY = ["openai/gpt-4o-mini", "mlx/mlx-community/Mistral-7B-Instruct-v0.3-4bit", "sk-learn-baseline-2024",
            "DeepSeek-R1-Distill-Qwen-32B-Instruct-GGUF", "ThisIsMyVeryLongExperimentName2024",
            "e830904b73424f5ca617e1fc949a6758", "0f3c2b9d8e7a6f5c4b3a29181716151413121110",  # run id, git sha
            "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "models:/sentiment@production",
            "sqlite:////tmp/pytest-of-root/pytest-12/test_corpus0/case1/mlflow.db", "http://127.0.0.1:5000",
            "postgresql+psycopg://mlflow:mlflow@127.0.0.1:5432/mlflow", "${oc.env:OPENAI_COMPATIBLE_BASE_URL}",
            "[dev_score,cost]", "{type:int,low:0,high:8}", "Bearer tokens", "offline-labeled_few_shot-predict"]


@pytest.mark.parametrize("name", sorted(KEYS))
def test_key_shaped_values_are_refused_and_never_echoed(name):
    key = KEYS[name]
    assert looks_like_secret(key) and looks_like_secret(f"prefix {key} suffix")
    with pytest.raises(ConfigError) as info:
        check_overrides([f"tracking.run_name={key}"])
    assert key not in str(info.value) and key[4:12] not in str(info.value)
    assert "model.api_key_env" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("value", ORDINARY)
def test_ordinary_values_pass(value):
    assert not looks_like_secret(value)
    check_overrides([f"tracking.run_name={value}"])


@pytest.mark.parametrize("override", ["+model.api_key=abc", "model.api_key=abc", "++model.token=x",
                                      "+optimizer.wandb_api_key=k", "+model.provider_options.password=hunter2",
                                      "hydra.job.env_set.OPENAI_API_KEY=x", "+model.authorization=y",
                                      "+model.client_secret=z", "+eval.access_token=t"])
def test_secret_named_keys_are_refused_whatever_the_value(override):
    with pytest.raises(ConfigError, match="is not allowed: secrets never go into a config.*model.api_key_env"):
        check_overrides([override])


def test_hydra_flags_counts_and_variable_names_pass():
    check_overrides(["-m", "--cfg", "job", "model.max_tokens=512", "model.api_key_env=OPENAI_API_KEY",
                     "+model.api_key=null", "~model.api_key", "optimizer=none,labeled_few_shot", "hydra/launcher=joblib"])


def test_every_packaged_entry_passes_the_config_check(compose_cfg):
    for override in ("model=gpt4o", "model=claude_sonnet", "model=openai_compatible", "model=mlx_tiny", "search=optuna"):
        check_config(OmegaConf.to_container(compose_cfg(override), resolve=True))


@pytest.mark.parametrize(("path", "value", "message"), [
    (("model", "api_key"), "abc", "model.api_key='\\*\\*\\*'"),
    (("model", "provider_options", "token"), "abc", "model.provider_options.token"),
    (("model", "api_key_env"), "my key", "NAME of the environment variable"),
    (("tracking", "run_name"), KEYS["openai"], "tracking.run_name='sk-...\\(51 chars\\)'"),
])
def test_a_config_composed_elsewhere_is_checked_too(compose_cfg, path, value, message):
    conf = OmegaConf.to_container(compose_cfg(), resolve=True)
    node = conf
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=message):
        validate(conf)


def test_scrub_removes_the_named_variables_value_everywhere():
    key, other = KEYS["openai"], "plain-value-of-my-key"
    conf = {"model": {"name": "gpt4o", "api_key_env": "MY_KEY", "api_base": f"http://h/v1?key={key}",
                      "api_key": "plain", "max_tokens": 512, "fallback": None, "notes": f"k={other}"},
            "tracking": {"run_name": "baseline", "uri": "sqlite:///mlflow.db"}, "tags": [key, "ok"]}
    out = scrub(conf, env={"MY_KEY": other, "OTHER": "not-named-here"})
    assert key not in str(out) and other not in str(out)
    assert out["model"]["api_key"] == "***" and out["model"]["api_base"] == "http://h/v1?key=sk-***"
    assert out["model"]["notes"] == "k=***" and out["tags"] == ["sk-***", "ok"]
    assert out["model"]["max_tokens"] == 512 and out["model"]["api_key_env"] == "MY_KEY"
    assert out["tracking"] == conf["tracking"]
    assert conf["model"]["api_key"] == "plain"  # the input is not changed


def test_scrub_text_and_short_variables():
    conf = {"model": {"api_key_env": "MY_KEY"}}
    text = f"401 for key abcdef123 and {KEYS['hex']}"
    assert scrub_text(text, conf, env={"MY_KEY": "abcdef123"}) == "401 for key *** and ***"
    assert scrub_text("postgresql+psycopg://mlflow:hunter2@db:5432/mlflow") == "postgresql+psycopg://mlflow:***@db:5432/mlflow"
    assert scrub({"tracking": {"uri": "http://u:p@h:5000"}}) == {"tracking": {"uri": "http://u:***@h:5000"}}
    conf = {"model": {"api_key_env": "PIN", "temperature": 0.0, "name": "x1"}}
    assert scrub(conf, env={"PIN": "x1"}) == conf  # too short to be a key: left alone


@pytest.mark.slow
def test_a_jobs_config_artifact_and_params_never_hold_the_keys_value(compose_cfg, workdir, monkeypatch):
    import mlflow

    from dspy_mlflow.job.run import run

    value = "correct-horse-battery-staple"  # not key-shaped: only the api_key_env lookup can catch it
    monkeypatch.setenv("DSPY_MLFLOW_TEST_KEY", value)
    conf = OmegaConf.to_container(compose_cfg(
        f"tracking.uri=sqlite:///{workdir}/mlflow.db", "eval.progress=false", "tracking.autolog=false",
        "tracking.log_model=false", "registry.register=false", "project.split.limit=20", "optimizer=none",
        "model.api_key_env=DSPY_MLFLOW_TEST_KEY", f"tracking.run_name={value}"), resolve=True)
    result = run(conf, output_dir=workdir / "out")
    client = mlflow.MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    logged = client.get_run(result.run_id)
    text = mlflow.artifacts.load_text(f"runs:/{result.run_id}/config.yaml")
    assert value not in text and "api_key_env: DSPY_MLFLOW_TEST_KEY" in text
    assert value not in str(logged.data.params) and value not in logged.info.run_name
