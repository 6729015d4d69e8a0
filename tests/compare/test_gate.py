"""``gate NAME VERSION``: registered versions whose source runs hold known per-example scores."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dspy_mlflow.cli.gate import main as gate_main
from tests.compare.conftest import log_run, register, rows_of

REPO = Path(__file__).resolve().parents[2]

LINE = re.compile(r"^gate (?P<name>\S+) (?P<cand>v\d+|run [0-9a-f]{8}) vs production v(?P<prod>\d+) on (?P<on>[\d of]+) "
                  r"test examples: test/score (?P<cs>[\d.]+) vs (?P<ps>[\d.]+), diff (?P<diff>[+-][\d.]+) "
                  r"\[(?P<low>[+-][\d.]+), (?P<high>[+-][\d.]+)\], p=(?P<p>[\d.e-]+): "
                  r"(?P<verdict>not worse|significantly worse) \(exit (?P<code>[01])\)$")


def scores(both: int, only_prod: int, only_cand: int, neither: int) -> tuple[list[float], list[float]]:
    """(production, candidate) 0/1 scores on the same examples."""
    prod = [1.0] * both + [1.0] * only_prod + [0.0] * only_cand + [0.0] * neither
    cand = [1.0] * both + [0.0] * only_prod + [1.0] * only_cand + [0.0] * neither
    return prod, cand


def versions(name, prod_scores, cand_scores, *, cand_seed=1):
    register(name, rows_of(prod_scores, seed=0), production=True)
    return register(name, rows_of(cand_scores, seed=cand_seed))  # another completion order


def run_gate(capsys, *argv) -> tuple[int, str, str]:
    code = gate_main(list(argv))
    out, err = capsys.readouterr()
    return code, out.strip(), err.strip()


def test_a_better_candidate_passes_with_the_paired_figures(store, name, capsys):
    prod, cand = scores(33, 3, 8, 16)  # production 36 of 60, candidate 41: 8 vs 3 discordant
    mv = versions(name, prod, cand)
    code, out, err = run_gate(capsys, name, str(mv.version), "--tracking-uri", store)
    assert code == 0 and err == ""
    m = LINE.match(out.splitlines()[0])
    assert m, out
    assert (m["name"], m["cand"], m["prod"], m["on"]) == (name, "v2", "1", "60")
    assert (m["cs"], m["ps"], m["diff"], m["p"]) == ("0.683", "0.600", "+0.083", "0.23")  # p = 464/2048
    assert float(m["low"]) < 0 < 0.083 < float(m["high"]) and m["verdict"] == "not worse"


def test_a_slightly_worse_candidate_is_noise_and_passes(store, name, capsys):
    prod, cand = scores(33, 8, 3, 16)  # the 41 vs 36 case the other way round: p = 0.23
    mv = versions(name, prod, cand)
    code, out, _ = run_gate(capsys, name, str(mv.version))
    assert code == 0 and "diff -0.083" in out and "p=0.23: not worse (exit 0)" in out


def test_a_significantly_worse_candidate_fails(store, name, capsys):
    prod, cand = scores(30, 18, 2, 10)  # 18 vs 2 discordant: p = 2 * 211 / 2**20 = 0.0004
    mv = versions(name, prod, cand)
    code, out, err = run_gate(capsys, name, f"models:/{name}/{mv.version}")
    assert code == 1 and err == ""
    m = LINE.match(out.splitlines()[0])
    assert m and m["verdict"] == "significantly worse" and m["code"] == "1" and m["diff"] == "-0.267"
    assert m["p"] == "0.0004" and float(m["high"]) < 0


def test_a_run_id_as_the_candidate_and_a_partial_match(store, name, capsys):
    prod, cand = scores(33, 3, 8, 16)
    register(name, rows_of(prod), production=True)
    run_id = log_run(rows_of(cand[:55]))  # 55 of 60 examples: 92% of production's
    code, out, _ = run_gate(capsys, name, run_id, "--metric", "test/score")
    assert code == 0
    assert out.startswith(f"gate {name} run {run_id[:8]} vs production v1 on 55 of 60 test examples: ")


@pytest.mark.parametrize("case, message", [
    ("no_model", r"^error: no registered model named 'nope_[0-9a-f]+'$"),
    ("no_version", r"^error: registered model '\w+' has no version 9$"),
    ("no_production", r"^error: registered model '\w+' has no production version \(alias @production\); "
                      r"promote one first: python -m dspy_mlflow promote \w+ VERSION$"),
    ("no_run", r"^error: VERSION='0123abcd' is not allowed: a version number of '\w+', a models:/\w+/\.\.\. URI "
               r"or an existing run id$"),
    ("no_raw_outputs", r"^error: run [0-9a-f]{32} has no raw_outputs.jsonl artifact \(a job logs it after "
                       r"evaluating the test split\)$"),
    ("other_examples", r"^error: examples do not pair: 0 of 60 test examples of production v1 and of 60 of \w+ v2 "
                       r"have the same inputs; at least 80% of each side must$"),
    ("bad_metric", r"^error: --metric='test/accuracy' is not allowed: SPLIT/score, the per-example score in "
                   r"raw_outputs.jsonl \(e.g. test/score\)$"),
    ("other_split", r"^error: production v1 has no dev examples in its raw outputs \(splits: test\)$"),
])
def test_bad_input_is_one_line_on_stderr_and_exit_2(store, name, capsys, case, message):
    prod, cand = scores(33, 3, 8, 16)
    args = [name, "2"]
    if case == "no_model":
        args = [f"nope_{name[-8:]}", "1"]
    elif case == "no_version":
        versions(name, prod, cand)
        args = [name, "9"]
    elif case == "no_production":
        register(name, rows_of(cand))
        args = [name, "1"]
    elif case == "no_run":
        register(name, rows_of(prod), production=True)
        args = [name, "0123abcd"]
    elif case == "no_raw_outputs":
        register(name, rows_of(prod), production=True)
        register(name, None)
    elif case == "other_examples":
        register(name, rows_of(prod), production=True)
        register(name, rows_of(cand, inputs=lambda i: {"text": f"another review {i}"}))
    elif case == "bad_metric":
        versions(name, prod, cand)
        args += ["--metric", "test/accuracy"]
    elif case == "other_split":
        versions(name, prod, cand)
        args += ["--metric", "dev/score"]
    code, out, err = run_gate(capsys, *args)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and re.match(message, err), err


def cli(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])  # this checkout
    return subprocess.run([sys.executable, "-m", "dspy_mlflow", "gate", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_exit_codes_in_a_real_process(store, name, tmp_path):
    prod, worse = scores(30, 18, 2, 10)  # production 48 of 60, the worse candidate 32
    register(name, rows_of(prod, seed=0), production=True)
    same = register(name, rows_of(prod, seed=1))  # the same scores in another completion order
    bad = register(name, rows_of(worse, seed=2))
    procs = [cli(name, version, "--tracking-uri", store, cwd=tmp_path)
             for version in (str(same.version), str(bad.version), "7")]
    ok, worse_proc, missing = procs
    assert ok.returncode == 0 and ok.stderr == "", ok.stderr[-2000:]
    verdict, power = ok.stdout.splitlines()
    assert verdict == (f"gate {name} v2 vs production v1 on 60 test examples: test/score 0.800 vs 0.800, "
                       "diff +0.000 [+0.000, +0.000], p=1: not worse (exit 0)")
    # no difference to measure a spread from: production's 0/1 scores (sd 0.40) stand in
    assert power.startswith("power: on 60 paired examples this test detects a drop of 0.148 or more 80% of the time")
    assert worse_proc.returncode == 1 and worse_proc.stderr == "", worse_proc.stderr[-2000:]
    assert LINE.match(worse_proc.stdout.splitlines()[0])["verdict"] == "significantly worse"
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr == f"error: registered model {name!r} has no version 7\n"


MARGIN = re.compile(r", margin (?P<m>[\d.]+): (?P<verdict>.*) \(exit (?P<code>[01])\)$")


def test_margin_production_against_itself_is_within_any_margin(store, name, capsys):
    prod, _ = scores(40, 0, 0, 20)
    register(name, rows_of(prod, seed=0), production=True)
    same = register(name, rows_of(prod, seed=1))
    code, out, err = run_gate(capsys, name, str(same.version), "--margin", "0.02")
    assert code == 0 and err == "" and len(out.splitlines()) == 1
    assert MARGIN.search(out)["verdict"] == "not worse by more than 0.02", out


def test_margin_a_worse_candidate_is_worse(store, name, capsys):
    prod, cand = scores(30, 18, 2, 10)  # diff -0.267, interval well below -0.05
    mv = versions(name, prod, cand)
    code, out, _ = run_gate(capsys, name, str(mv.version), "--margin", "0.05")
    assert code == 1
    assert MARGIN.search(out)["verdict"] == "worse: the whole interval is below -0.05", out


def test_margin_an_equal_candidate_on_a_small_split_is_inconclusive_with_the_examples_that_would_decide(
        store, name, capsys):
    prod, cand = scores(8, 3, 3, 6)  # 20 examples, the same score: an interval of about +-0.2
    mv = versions(name, prod, cand)
    code, out, _ = run_gate(capsys, name, str(mv.version), "--margin", "0.02")
    assert code == 1
    m = re.search(r"inconclusive: the interval \[(?P<low>[+-][\d.]+), (?P<high>[+-][\d.]+)\] reaches below -0.02; "
                  r"(?P<more>\d+) more test examples would decide \(exit 1\)$", out)
    assert m, out
    assert float(m["low"]) < -0.02 < float(m["high"])
    # what "would decide" means: the normal interval of the same spread shrinks above -0.02 at that size
    sd = (6 / 19) ** 0.5  # 6 of 20 discordant pairs, diff 0
    n = 20 + int(m["more"])
    assert 1.96 * sd / n ** 0.5 < 0.02 <= 1.96 * sd / (n - 1) ** 0.5


def test_without_a_margin_the_verdict_says_the_smallest_drop_it_could_see(store, name, capsys):
    prod, cand = scores(33, 8, 3, 16)
    mv = versions(name, prod, cand)
    code, out, _ = run_gate(capsys, name, str(mv.version))
    verdict, power = out.splitlines()
    assert code == 0 and verdict.endswith("not worse (exit 0)")
    drop = float(re.search(r"detects a drop of ([\d.]+) or more 80% of the time", power)[1])
    from dspy_mlflow.compare.power import mde

    d = [b - a for a, b in zip(prod, cand, strict=True)]
    mean = sum(d) / len(d)
    sd = (sum((x - mean) ** 2 for x in d) / (len(d) - 1)) ** 0.5
    assert drop == pytest.approx(mde(sd, 60), abs=5e-4) and 0.1 < drop < 0.2


@pytest.mark.parametrize("margin", ["-0.1", "1.5"])
def test_a_bad_margin_is_one_line_and_exit_2(store, name, capsys, margin):
    prod, cand = scores(33, 3, 8, 16)
    mv = versions(name, prod, cand)
    code, out, err = run_gate(capsys, name, str(mv.version), "--margin", margin)
    assert code == 2 and out == ""
    assert err == f"error: --margin={float(margin)} is not allowed: a non-inferiority margin >= 0 on the metric's " \
                  "scale, e.g. 0.02"
