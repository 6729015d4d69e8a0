"""The release gate: may a candidate version replace NAME@production?

Each version's source run (version tag ``source_run``) holds raw_outputs.jsonl. The two runs'
rows of one split are paired by their inputs and compared with a paired test (paired.py). The
candidate fails the gate only when it is worse and the difference is not noise: diff < 0 and
p < alpha. A smaller score that could be noise passes, and so does an equal or better one; the
verdict says how small a drop the test could have seen (compare/power.py).

With a margin M (non-inferiority) the candidate passes only when the lower bound of the paired 95%
interval of candidate - production is above -M: "worse" when the whole interval is below -M,
"inconclusive" otherwise, with how many more test examples would decide.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from dspy_mlflow import names
from dspy_mlflow.compare.paired import Paired, align, paired
from dspy_mlflow.compare.power import (
    BOUNDED_SD,
    POWER,
    examples_to_decide,
    mde,
    sd_from_scores,
    sd_of_differences,
)
from dspy_mlflow.errors import ConfigError, RegistryError
from dspy_mlflow.registry import versions as C
from dspy_mlflow.tracking import store
from dspy_mlflow.tracking.raw_outputs import load_raw_outputs

ALPHA = 0.05
METRIC = "test/score"
EXIT_NOT_WORSE, EXIT_WORSE = 0, 1


@dataclass(frozen=True)
class GateResult:
    name: str
    candidate: str  # "v3" or "run 1a2b3c4d"
    production: str  # "v2"
    metric: str
    candidate_score: float  # means over the paired examples
    production_score: float
    result: Paired  # candidate minus production
    examples: int  # rows of the split on the larger side
    alpha: float
    sd_diff: float = 0.0  # of the paired per-example differences
    margin: float | None = None  # non-inferiority margin; None: "not significantly worse"

    @property
    def mde(self) -> float:
        """The smallest difference this comparison detects with 80% power at ``alpha``."""
        return mde(self.sd_diff, self.result.n, alpha=self.alpha)

    @property
    def worse(self) -> bool:
        if self.margin is not None:
            return not self.result.low > -self.margin
        return self.result.significantly_worse(self.alpha)

    @property
    def exit_code(self) -> int:
        return EXIT_WORSE if self.worse else EXIT_NOT_WORSE

    def _margin_verdict(self) -> str:
        r, m = self.result, self.margin
        if r.low > -m:
            return f"not worse by more than {m:g}"
        if r.high < -m:
            return f"worse: the whole interval is below -{m:g}"
        more = examples_to_decide(r.diff, self.sd_diff, r.n, m)
        decide = (f"{more} more test examples would decide" if more is not None else
                  f"the observed difference is below -{m:g}: more examples would not clear the margin")
        return f"inconclusive: the interval [{r.low:+.3f}, {r.high:+.3f}] reaches below -{m:g}; {decide}"

    def summary(self) -> str:
        r, split = self.result, self.metric.split("/")[0]
        on = f"{r.n}" if r.n == self.examples else f"{r.n} of {self.examples}"
        head = (f"gate {self.name} {self.candidate} vs production {self.production} on {on} {split} examples: "
                f"{self.metric} {self.candidate_score:.3f} vs {self.production_score:.3f}, diff {r.diff:+.3f} "
                f"[{r.low:+.3f}, {r.high:+.3f}], p={r.p_value:.2g}")
        if self.margin is not None:
            return f"{head}, margin {self.margin:g}: {self._margin_verdict()} (exit {self.exit_code})"
        verdict = "significantly worse" if self.worse else "not worse"
        return (f"{head}: {verdict} (exit {self.exit_code})\n"
                f"power: on {r.n} paired examples this test detects a drop of {self.mde:.3f} or more "
                f"{POWER:.0%} of the time (alpha {self.alpha:g}); a smaller drop passes unseen "
                f"(--margin M asks for non-inferiority instead)")


def _split_of(metric: str) -> str:
    split, _, field = metric.partition("/")
    if not split or field != "score":
        raise ConfigError("--metric", metric, "SPLIT/score, the per-example score in raw_outputs.jsonl (e.g. test/score)")
    return split


def _candidate(c: MlflowClient, name: str, ref: str) -> tuple[str, str]:
    """(label, run id) of a version number, a models:/ URI of ``name``, or a run id."""
    ref = str(ref).strip()
    if ref.isdigit() or ref.startswith("models:/"):
        mv = C.resolve(c, ref, name)
        return f"v{mv.version}", C.source_run(mv)
    try:
        run = c.get_run(ref)
    except MlflowException:
        raise ConfigError("VERSION", ref, f"a version number of {name!r}, a models:/{name}/... URI or an "
                          "existing run id") from None
    return f"run {run.info.run_id[:8]}", run.info.run_id


def gate(
    name: str,
    version: str | int,
    *,
    metric: str = METRIC,
    alpha: float = ALPHA,
    margin: float | None = None,
    seed: int = 0,
    tracking_uri: str | None = None,
) -> GateResult:
    """Compare ``version`` (number, models:/ URI or run id) with ``name``@production on ``metric``'s split."""
    split = _split_of(metric)
    if not 0 < alpha < 1:
        raise ConfigError("--alpha", alpha, "a significance level between 0 and 1, e.g. 0.05")
    if margin is not None and not (0 <= margin < 1):
        raise ConfigError("--margin", margin, "a non-inferiority margin >= 0 on the metric's scale, e.g. 0.02")
    c = store.client(tracking_uri)
    C.get_registered_model(c, name)
    production = C.get_alias(c, name, names.PRODUCTION)
    if production is None:
        raise RegistryError(f"registered model {name!r} has no production version (alias @{names.PRODUCTION}); "
                            f"promote one first: python -m dspy_mlflow promote {name} VERSION")
    candidate_label, candidate_run = _candidate(c, name, version)
    production_label = f"v{production.version}"
    pairs = align(load_raw_outputs(c, C.source_run(production)), load_raw_outputs(c, candidate_run), split=split,
                  labels=(f"production {production_label}", f"{name} {candidate_label}"))
    result = paired(pairs.a, pairs.b, seed=seed)
    return GateResult(
        name=name, candidate=candidate_label, production=production_label, metric=metric,
        candidate_score=sum(pairs.b) / pairs.matched, production_score=sum(pairs.a) / pairs.matched,
        result=result, examples=max(pairs.n_a, pairs.n_b), alpha=alpha,
        sd_diff=_spread(pairs.a, pairs.b), margin=margin,
    )


def _spread(production: list[float], candidate: list[float]) -> float:
    """The observed spread of the paired differences; when they are all equal (it says nothing about a
    real drop's spread), production's score spread, else the bound of a score in [0, 1]."""
    sd = sd_of_differences(b - a for a, b in zip(production, candidate, strict=True))
    if sd == 0:
        sd = sd_from_scores(production)[0]
    return sd or BOUNDED_SD


def production_rows(c: MlflowClient, name: str) -> tuple[str, list[dict]] | None:
    """(label, raw output rows) of ``name@production``'s source run, or None when there is none."""
    try:
        mv = c.get_model_version_by_alias(name, names.PRODUCTION)
    except MlflowException:
        return None
    return f"v{mv.version}", load_raw_outputs(c, C.source_run(mv))
