"""Bad input as a new user types it: every case is a real ``python -m dspy_mlflow ...`` process.

Each case exits non-zero with one ``error: ...`` line on stderr that names the key, the bad value
and what is allowed, prints no traceback, and leaves no RUNNING run; a config error leaves no run
at all. The cases run in parallel (a pool of 4) in one module-scoped fixture; each parametrized
test then checks its own outcome, so a failure names its case.
"""

from __future__ import annotations

import resource
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow

SECRET = "sk-proj-Zk3vQ9xLmP2wR7tYb4Nc8Hd1Fg6Js0Ka5Ue"  # shaped like an OpenAI key, not one
POOL = 4

PROJECT = '''import dspy

class signature(dspy.Signature):
    """Label the text."""
    text: str = dspy.InputField()
    label: str = dspy.OutputField()

def load_examples():
    return [dspy.Example(text=f"t{i}", label="a").with_inputs("text") for i in range(12)]

def metric(example, prediction, trace=None):
    return 1.0

def make_program(strategy):
    return dspy.Predict(signature)
'''
FILES = {
    "raises.py": PROJECT.replace("    return dspy.Predict(signature)", "    raise RuntimeError('factory is broken')"),
    "broken.py": "import dspy\ndef broken(:\n",
    "nometric.py": PROJECT.replace("def metric(", "def score("),
}


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    expect: tuple[str, ...]  # in the error line: the key, the bad value, what is allowed
    store: bool = False  # an empty MLflow store exists before (subcommands read one)
    argparse: bool = False  # argparse's own format: usage lines, then "PROG: error: ..."
    config_error: bool = True  # no run at all afterwards (else: none left RUNNING)
    secret: bool = False  # refused before Hydra writes its output folder; never echoed
    env: tuple[tuple[str, str], ...] = field(default=())


def C(id: str, args: str, *expect: str, **kw) -> Case:  # noqa: N802
    return Case(id, tuple(args.split()), expect, **kw)


CASES = [
    # unknown groups and options
    C("model=gpt5", "model=gpt5", "model='gpt5'", "one of", "gpt4o_mini"),
    C("optimizer=adam", "optimizer=adam", "optimizer='adam'", "bootstrap_few_shot"),
    C("strategy=tot", "strategy=tree_of_thought", "strategy='tree_of_thought'", "chain_of_thought"),
    C("experiment=nope", "experiment=nope", "experiment='nope'", "contacts_quick"),
    C("search=grid", "search=grid", "search='grid'", "optuna"),
    C("tracking=cloud", "tracking=cloud", "tracking='cloud'", "local", "server"),
    C("project=nope", "project=nope", "project='nope'", "sentiment"),
    C("bare-word", "frobnicate", "command='frobnicate'", "promote", "key=value"),
    C("hydra-flag", "--cfg nope", "--cfg", "'nope'", "job", argparse=True),
    # unknown keys (Hydra's + adds them even to a typed config)
    C("+nonsense_key", "+nonsense_key=1", "nonsense_key=1", "its keys are model, optimizer"),
    C("+eval.foo", "+eval.foo=1", "eval.foo=1", "its keys are num_threads"),
    C("+model.pricing.typo", "+model.pricing.input_per_1M=1", "model.pricing.input_per_1M=1", "input_per_1m"),
    C("+tracking.urii", "+tracking.urii=x", "tracking.urii='x'", "uri"),
    C("eval.num_thread", "eval.num_thread=4", "eval.num_thread='4'", "num_threads"),
    C("+search.foo", "+search.foo=1", "search.foo=1", "search=none takes no parameters"),
    C("+optimizer.typo", "+optimizer.max_bootstraped_demos=2", "optimizer.max_bootstraped_demos=2",
      "max_bootstrapped_demos"),
    # wrong types
    C("num_threads=abc", "eval.num_threads=abc", "eval.num_threads='abc'", "could not be converted"),
    C("max_tokens=lots", "model.max_tokens=lots", "model.max_tokens='lots'", "Integer"),
    C("autolog=maybe", "tracking.autolog=maybe", "tracking.autolog='maybe'", "not a valid bool"),
    C("demos=1.5", "optimizer.max_bootstrapped_demos=1.5", "optimizer.max_bootstrapped_demos=1.5", "whole number"),
    C("use_merge=maybe", "optimizer=gepa optimizer.use_merge=maybe", "optimizer.use_merge='maybe'", "true or false"),
    # out of range
    C("temperature=5", "model.temperature=5", "model.temperature=5.0", "[0.0, 2.0]"),
    C("num_threads=0", "eval.num_threads=0", "eval.num_threads=0", "[1, 256]"),
    C("trace_sampling=2", "tracking.trace_sampling=2", "tracking.trace_sampling=2.0", "[0.0, 1.0]"),
    C("split.train=1.5", "project.split.train=1.5", "project.split.train=1.5", "(0, 1)"),
    C("split.sum", "project.split.train=0.7 project.split.dev=0.4", "project.split.dev=0.4", "train + dev < 1"),
    C("split.limit=2", "project.split.limit=2", "project.split.limit=2", ">= 3"),
    C("budget=-1", "budget.max_cost_usd=-1", "budget.max_cost_usd=-1.0", "or null"),
    C("best_of_n.n=0", "strategy=best_of_n strategy.n=0", "strategy.n=0", "[1, 64]"),
    C("num_retries=99", "model.num_retries=99", "model.num_retries=99", "[0, 20]"),
    C("litellm_model", "model.litellm_model=gpt-4o", "model.litellm_model='gpt-4o'", "<provider>/<model>"),
    # optimizer params
    C("mipro.auto=extreme", "optimizer=mipro_v2 optimizer.auto=extreme", "optimizer.auto='extreme'",
      "light, medium, heavy, null"),
    C("mipro.auto+candidates", "optimizer=mipro_v2 optimizer.auto=light", "optimizer.auto='light'",
      "optimizer.num_candidates=null"),
    C("gepa.two-budgets", "optimizer=gepa +optimizer.auto=light", "optimizer.max_metric_calls=800",
      "exactly one budget"),
    C("gepa.strategy", "optimizer=gepa +optimizer.candidate_selection_strategy=best",
      "optimizer.candidate_selection_strategy='best'", "pareto, current_best"),
    C("mipro.compile-typo", "optimizer=mipro_v2 +optimizer.compile.num_trails=3", "optimizer.compile.num_trails=3",
      "num_trials"),
    C("none+k", "optimizer=none +optimizer.k=3", "optimizer.k=3", "takes no parameters"),
    C("demos=-3", "optimizer.max_bootstrapped_demos=-3", "optimizer.max_bootstrapped_demos=-3", ">= 0"),
    # search params
    C("n_trials=0", "optimizer=labeled_few_shot search=optuna search.n_trials=0", "search.n_trials=0", ">= 1"),
    C("sampler=grid", "optimizer=labeled_few_shot search=optuna search.sampler=grid", "search.sampler='grid'",
      "tpe"),
    C("optuna+none", "optimizer=none search=optuna", "optimizer='none'", "hyperparameters"),
    C("space.type", "optimizer=labeled_few_shot search=optuna +search.space.k={type:weird,low:0,high:3}",
      "search.space.k.type='weird'", "int, float, categorical"),
    # tracking URIs
    C("uri=notascheme", "tracking.uri=notascheme://x", "tracking.uri='notascheme://x'", "sqlite:///", "http(s)://"),
    C("uri=unreachable", "tracking.uri=http://127.0.0.1:1", "tracking.uri='http://127.0.0.1:1'", "reachable"),
    C("uri=sqlite-no-folder", "tracking.uri=sqlite:////nonexistent/dir/x.db", "'sqlite:////nonexistent/dir/x.db'",
      "existing folder"),
    C("uri=postgres-no-driver", "tracking.uri=postgresql://u@127.0.0.1:1/db", "'postgresql://u@127.0.0.1:1/db'",
      "database"),  # its driver is not installed, or nothing listens there
    C("env-uri=notascheme", "optimizer=none", "tracking.uri='bogus://y'", "sqlite:///",
      env=(("MLFLOW_TRACKING_URI", "bogus://y"),)),
    # secrets: refused before Hydra writes anything
    C("+model.api_key", f"+model.api_key={SECRET}", "model.api_key='sk-...(", "model.api_key_env", secret=True),
    C("api_key_env=key", f"model.api_key_env={SECRET}", "model.api_key_env='sk-...(", "model.api_key_env",
      secret=True),
    C("provider_options.token", "+model.provider_options.token=abc12345", "model.provider_options.token='***'",
      "model.api_key_env", secret=True),
    C("key-in-run-name", f"tracking.run_name=mine-{SECRET}", "tracking.run_name='min", "model.api_key_env",
      secret=True),
    C("env_set.OPENAI_API_KEY", "hydra.job.env_set.OPENAI_API_KEY=x123", "OPENAI_API_KEY='***'", "api_key_env",
      secret=True),
    C("api_key_env=not-a-name", "model=gpt4o model.api_key_env=my-key", "model.api_key_env='my-key'",
      "NAME of the environment variable"),
    # projects
    C("module=missing", "project.module=no_such_pkg.task", "project.module", "no_such_pkg.task", "not found"),
    C("file=missing", "project.module=missing_file.py", "project.module", "missing_file.py", "not found"),
    C("file=broken", "project.module=broken.py", "broken.py", "failed to import", "SyntaxError"),
    C("file=no-metric", "project.module=nometric.py", "nometric.py", "no attribute 'metric'", "make_program"),
    C("factory-raises", "project.module=raises.py optimizer=none", "make_program(strategy=predict)",
      "RuntimeError: factory is broken"),
    # program.init_from (a registry lookup: the store exists, with no run)
    C("init_from=garbage", "program.init_from=garbage", "program.init_from='garbage'", "a registered program", store=True),
    C("init_from=missing", "program.init_from=models:/nope@production", "program.init_from='models:/nope@production'",
      "no registered model named 'nope'", store=True),
    # subcommands
    C("promote-no-args", "promote", "promote", "the following arguments are required", argparse=True),
    C("promote-missing", "promote no_such_model 1", "no registered model named 'no_such_model'", store=True),
    C("lineage-missing", "lineage no_such_model", "no registered model named 'no_such_model'", store=True),
    C("rollback-missing", "rollback no_such_model", "no registered model named 'no_such_model'", store=True),
    C("runs-uri=notascheme", "runs --tracking-uri notascheme://x", "--tracking-uri='notascheme://x'", "sqlite:///"),
    C("runs-uri=unreachable", "runs --tracking-uri http://127.0.0.1:1", "--tracking-uri='http://127.0.0.1:1'",
      "reachable"),
    C("runs-no-store", "runs --tracking-uri sqlite:///typo.db", "--tracking-uri='sqlite:///typo.db'",
      "an existing MLflow store"),
    C("runs-csv", "runs --experiment Default --csv /nonexistent/dir/out.csv", "--csv='/nonexistent/dir/out.csv'", "writable", store=True),
    C("ui-port", "ui --port many", "--port", "invalid int value: 'many'", argparse=True),
]
FAST = ("eval.progress=false", "tracking.log_model=false", "project.split.limit=20")


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    runs: int  # runs in the store (0 when there is no store)
    running: int
    files: list[str]  # files the case left in its working directory
    secret_seen: bool  # SECRET in any output or any file left behind
    seconds: float


def _store_counts(db: Path) -> tuple[int, int]:
    if not db.exists():
        return 0, 0
    with sqlite3.connect(db) as con:
        if not con.execute("select name from sqlite_master where name='runs'").fetchone():
            return 0, 0
        return (con.execute("select count(*) from runs").fetchone()[0],
                con.execute("select count(*) from runs where status='RUNNING'").fetchone()[0])


def _run_case(case: Case, workdir: Path, template: Path | None) -> Outcome:
    t0 = time.perf_counter()
    workdir.mkdir(parents=True)
    for name, text in FILES.items():
        (workdir / name).write_text(text)
    if case.store and template is not None:
        (workdir / "mlflow.db").write_bytes(template.read_bytes())
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/mlflow.db", **dict(case.env)}
    extra = FAST if "=" in case.args[0] else ()  # overrides: the job is small should it ever start
    proc = run_cli([*extra, *case.args], cwd=workdir, env=env, timeout=300)
    runs, running = _store_counts(workdir / "mlflow.db")
    left = sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*")
                  if p.is_file() and p.name not in FILES and p.name != "mlflow.db")
    seen = SECRET in proc.stdout + proc.stderr or any(
        SECRET in p.read_text(errors="ignore") for p in workdir.rglob("*") if p.is_file() and p.name != "mlflow.db")
    return Outcome(proc.returncode, proc.stdout, proc.stderr, runs, running, left, seen, time.perf_counter() - t0)


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory) -> dict[str, Outcome]:
    """Run the selected cases, POOL at a time; report their wall and CPU time."""
    selected = [item.callspec.params["case"] for item in request.session.items
                if getattr(item, "callspec", None) and isinstance(item.callspec.params.get("case"), Case)]
    root = tmp_path_factory.mktemp("bad_input")
    template = None
    if any(c.store for c in selected):
        from mlflow import MlflowClient

        template = root / "template.db"
        MlflowClient(f"sqlite:///{template}").search_experiments()  # an empty store with its schema
    cpu0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    with ThreadPoolExecutor(POOL) as pool:
        futures = {c.id: pool.submit(_run_case, c, root / f"case{i}", template) for i, c in enumerate(selected)}
        results = {cid: f.result() for cid, f in futures.items()}
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    slowest = sorted(results.items(), key=lambda kv: -kv[1].seconds)[:3]
    with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        print(f"\nbad-input corpus: {len(selected)} cases in {time.perf_counter() - t0:.1f} s wall, {cpu:.1f} s CPU "
              f"({POOL} at a time); slowest: " + ", ".join(f"{k} {o.seconds:.1f} s" for k, o in slowest))
    return results


def test_corpus_is_large_and_ids_are_unique():
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_leaves_no_run(case: Case, outcomes):
    out = outcomes[case.id]
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    assert out.returncode != 0, out.stdout[-1000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    if case.argparse:
        assert lines[0].startswith("usage:") and ": error: " in lines[-1], out.stderr
        line = lines[-1]
    else:
        assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr[-3000:]
        line = lines[0]
    missing = [x for x in case.expect if x not in line]
    assert not missing, f"{missing} not in: {line}"
    assert out.running == 0, "a run was left RUNNING"
    if case.config_error:
        assert out.runs == 0, f"{out.runs} run(s) created for a config error"
    assert not out.secret_seen, "the secret was echoed or written to a file"
    if case.secret:
        assert out.files == [], f"Hydra wrote {out.files}"
