"""The compile step: the optimizer resolved (``auto`` picks one), run, timed, and checked for effect."""

from __future__ import annotations

import json

import mlflow

from dspy_mlflow import names
from dspy_mlflow.errors import BudgetExceeded
from dspy_mlflow.steps.context import JobContext
from dspy_mlflow.steps.optimizers import auto_entry, compile_program
from dspy_mlflow.steps.progress import GepaProgress, log_progress


def state_of(program) -> str:
    return json.dumps(program.dump_state(), sort_keys=True, default=str)


def resolve_optimizer(ctx: JobContext, n_train: int) -> dict:
    """The optimizer entry this job compiles with (``auto``: picked for the training set's size)."""
    entry = dict(ctx.conf["optimizer"])
    if entry["name"] == "auto":
        entry = auto_entry(n_train)
        print(f"optimizer=auto picked {entry['name']} for {n_train} training examples")
    ctx.resolved_optimizer = entry["name"]
    mlflow.log_param(names.PARAM_OPTIMIZER_RESOLVED, entry["name"])
    mlflow.set_tag(names.OPTIMIZER, entry["name"])
    return entry


def announce(ctx: JobContext, entry: dict, n_train: int, n_dev: int) -> None:
    print(f"compiling with {entry['name']} on {n_train} train / {n_dev} dev examples ...")
    ctx.step = f"compiling with {entry['name']}"


def compile_plain(ctx: JobContext, entry: dict, program, *, trainset, devset, lm):
    """One optimizer run (no search), its candidates' scores logged as ``compile/candidate_score``."""
    from dspy.utils.exceptions import AdapterParseError  # DSPy: not imported by a skipped job

    gepa = GepaProgress() if entry["name"] == "gepa" else None
    try:
        compiled = compile_program(entry, program, metric=ctx.project.metric, trainset=trainset, devset=devset,
                                   lm=lm, num_threads=int(ctx.conf["eval"]["num_threads"]),
                                   seed=int(ctx.conf["seed"]), progress=gepa)
    except AdapterParseError as exc:
        # an optimizer's own prompt (an instruction proposal) answered unparsably: like an unparsable
        # demo, it costs the optimization, not the job; the program stays as it started, flagged
        ctx.compile_stopped = f"the model's answer to its {exc.signature.__name__} prompt did not parse"
        compiled = program
    ctx.metrics.update(log_progress(gepa, compiled))
    return compiled


def after_compile(ctx: JobContext, entry: dict, before, after) -> None:
    """A compile that changed nothing is flagged; a spent budget stops the job."""
    if entry["name"] != "none":
        warn_if_unchanged(ctx, before, after, entry["name"])
    if ctx.ledger.exceeded:
        raise BudgetExceeded(ctx.ledger.total.cost_usd, ctx.ledger.max_cost_usd)


def warn_if_unchanged(ctx: JobContext, before, after, optimizer: str) -> None:
    """A compile that changed nothing (no demos, no instructions) ran in vain: say so."""
    if state_of(before) != state_of(after):
        return
    warning = (f"optimizer={optimizer} changed nothing: the compiled program has the same demos and "
               f"instructions as the one it started from")
    if ctx.compile_stopped:
        warning += f" (it stopped: {ctx.compile_stopped})"
    elif names.CANDIDATES_PROPOSED in ctx.metrics:
        warning += (f" ({int(ctx.metrics[names.CANDIDATES_PROPOSED])} candidates proposed, "
                    f"{int(ctx.metrics[names.CANDIDATES_ACCEPTED])} accepted)")
    print(f"warning: {warning}")
    mlflow.set_tag(names.WARNING, warning)
