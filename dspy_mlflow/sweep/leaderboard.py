"""The sweep leaderboard: one row per job, best test score first.

``test/score_ci_low``/``_high`` (and dev's) are the jobs' own interval metrics, NaN when a job did
not log them. ``not_worse_than_best`` is a paired sign-flip test of each FINISHED or SKIPPED job's
test rows in raw_outputs.jsonl against the best job's: False when the job scores lower and the
difference is not noise (p < 0.05), blank when its outputs cannot be paired with the best's.
"""

from __future__ import annotations

from pathlib import Path

from dspy_mlflow import names
from dspy_mlflow.compare.paired import align, sign_flip_p_value
from dspy_mlflow.errors import CompareError
from dspy_mlflow.report.runs_table import job_fields
from dspy_mlflow.tracking.raw_outputs import load_raw_outputs

COLUMNS = ["rank", "job", "model", "optimizer", "strategy", "status", "test/score", "test/score_ci_low",
           "test/score_ci_high", "not_worse_than_best", "dev/score", "dev/score_ci_low", "dev/score_ci_high",
           "dev/baseline_score", "cost/total_usd", "cost/list_usd", "eval/cache_hits", "eval/tokens_in", "eval/tokens_out", "compile/tokens_in",
           "compile/tokens_out", "compile/duration_s", "run_id", "reused_run", "error"]
COMPARED = ("FINISHED", "SKIPPED")  # jobs whose outputs are whole: a FAILED job's may stop part-way
ALPHA = 0.05


def build_leaderboard(tracking_uri: str, jobs: list[dict]):
    import pandas as pd
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    metric_keys = [k for k in COLUMNS if "/" in k]
    rows = []
    for job in jobs:
        skipped = job.get("status") == "SKIPPED"  # its run is an earlier one, from outside this sweep
        row = {"job": job["job"], "status": job.get("status"), "run_id": job.get("run_id"),
               "reused_run": job.get("run_id") if skipped else "", "error": job.get("error") or ""}
        if job.get("run_id"):
            row.update(job_fields(client.get_run(job["run_id"]), metric_keys))
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "rank"])
    for key in metric_keys:  # a metric no job logged stays NaN, not None
        frame[key] = pd.to_numeric(frame[key], errors="coerce")
    frame = frame.sort_values(["test/score", "cost/total_usd"], ascending=[False, True], na_position="last")
    frame["not_worse_than_best"] = not_worse_than_best(client, frame)
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame.reset_index(drop=True)


def not_worse_than_best(client, frame):
    """Per row (in ``frame``'s order, best first): True/False by a paired test on the test split, NA if unpaired."""
    import pandas as pd

    verdicts = pd.Series(pd.NA, index=frame.index, dtype="boolean")
    compared = frame[frame["status"].isin(COMPARED) & frame["run_id"].notna() & frame["test/score"].notna()]
    if compared.empty:
        return verdicts
    try:
        best_rows = load_raw_outputs(client, compared.iloc[0]["run_id"])
    except CompareError:
        return verdicts
    for index, job in compared.iterrows():
        try:
            pairs = align(best_rows, load_raw_outputs(client, job["run_id"]), split="test",
                          labels=("the best job", f"job {job['job']}"))
        except CompareError:
            continue  # no raw outputs, or other examples: left blank
        diffs = [b - a for a, b in zip(pairs.a, pairs.b, strict=True)]
        worse = sum(diffs) < 0 and sign_flip_p_value(diffs) < ALPHA
        verdicts[index] = not worse
    return verdicts


def log_leaderboard(tracking_uri: str, parent_run_id: str, board, sweep_dir: str | Path) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    csv_path = Path(sweep_dir) / "leaderboard.csv"
    board.to_csv(csv_path, index=False)
    client.log_artifact(parent_run_id, str(csv_path))
    # blanks for the UI table (a plain fillna("") on float and boolean columns is deprecated in pandas 3)
    client.log_table(parent_run_id, data=board.astype(object).where(board.notna(), ""), artifact_file="leaderboard.json")
    best = board[board["status"].isin(["FINISHED", "SKIPPED"])].head(1)
    if not best.empty and best.iloc[0]["test/score"] == best.iloc[0]["test/score"]:
        client.log_metric(parent_run_id, "best/test_score", float(best.iloc[0]["test/score"]))
        client.set_tag(parent_run_id, names.BEST_RUN_ID, str(best.iloc[0]["run_id"]))
    reused = [r for r in board["reused_run"] if r]
    if reused:  # runs --sweep lists them with the sweep's own runs
        client.set_tag(parent_run_id, names.REUSED_RUNS, ",".join(reused))


def _interval(low, high) -> str:
    return "-" if low != low or high != high else f"[{low:.3f}, {high:.3f}]"


def format_board(board) -> str:
    """A terminal-sized view, rounded for display: the CSV and the MLflow table keep every column unrounded."""
    view = board[["rank", "model", "optimizer", "strategy", "status", "test/score", "dev/score",
                  "dev/baseline_score", "cost/total_usd", "cost/list_usd", "run_id"]].copy()
    view.columns = ["rank", "model", "optimizer", "strategy", "status", "test", "dev", "baseline", "cost_usd",
                    "list_usd", "run"]
    view.insert(6, "test_95ci", [_interval(lo, hi) for lo, hi in zip(board["test/score_ci_low"],
                                                                    board["test/score_ci_high"], strict=True)])
    view.insert(7, "not_worse", board["not_worse_than_best"].map({True: "yes", False: "no"}).astype(object))
    view["run"] = view["run"].fillna("").str[:8]
    view["status"] = [f"reused {run}" if status == "SKIPPED" else status  # an earlier run: its id follows
                      for status, run in zip(view["status"], view["run"], strict=True)]
    return view.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-")
