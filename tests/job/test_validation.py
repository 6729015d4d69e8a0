"""Each config section is checked by its owner, through job/validation.py: bad input found from the
outside (a model's api_base, the evaluation view's cap, the offline server's port) is one line."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from dspy_mlflow.cli.serve_offline import main as serve_offline
from dspy_mlflow.errors import ConfigError
from dspy_mlflow.job.validation import OWNERS, validate_job


def plain(compose_cfg, *overrides):
    return OmegaConf.to_container(compose_cfg(*overrides), resolve=True)


def test_every_owned_group_has_its_checker():
    assert list(OWNERS) == ["cache", "model", "strategy", "optimizer", "search"]


@pytest.mark.parametrize(("overrides", "message"), [
    (["model=openai_compatible", "model.api_base=ftp://127.0.0.1/v1"],
     "model.api_base='ftp://127.0.0.1/v1' is not allowed: an http:// or https:// URL"),
    (["tracking.evaluation_max_examples=-5"], "tracking.evaluation_max_examples=-5 is not allowed: a number in"),
    (["strategy.name=tree"], "strategy.name='tree' is not allowed: one of predict, chain_of_thought, best_of_n"),
    (["eval.repeats=0"], "eval.repeats=0 is not allowed: a whole number of samples per test example in [1, 100]"),
])
def test_a_bad_section_is_one_line_naming_key_value_and_allowed(compose_cfg, overrides, message):
    with pytest.raises(ConfigError) as info:
        validate_job(plain(compose_cfg, *overrides))
    assert message in str(info.value)


def test_serve_offline_refuses_a_port_out_of_range_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        serve_offline(["--port", "99999"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--port='99999' is not allowed: a port number 0..65535" in err
