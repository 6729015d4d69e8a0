"""The sweep leaderboard: one row per job, best test score first."""

from __future__ import annotations

from pathlib import Path

COLUMNS = ["rank", "job", "model", "optimizer", "strategy", "status", "test/score", "dev/score",
           "dev/baseline_score", "cost/total_usd", "cost/list_usd", "eval/cache_hits", "eval/tokens_in", "eval/tokens_out", "compile/tokens_in",
           "compile/tokens_out", "compile/duration_s", "run_id", "error"]


def build_leaderboard(tracking_uri: str, jobs: list[dict]):
    import pandas as pd
    from mlflow import MlflowClient

    from dspy_mlflow.registry.compare import job_fields

    client = MlflowClient(tracking_uri)
    metric_keys = [k for k in COLUMNS if "/" in k]
    rows = []
    for job in jobs:
        row = {"job": job["job"], "status": job.get("status"), "run_id": job.get("run_id"),
               "error": job.get("error") or ""}
        if job.get("run_id"):
            row.update(job_fields(client.get_run(job["run_id"]), metric_keys))
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "rank"])
    frame = frame.sort_values(["test/score", "cost/total_usd"], ascending=[False, True], na_position="last")
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame.reset_index(drop=True)


def log_leaderboard(tracking_uri: str, parent_run_id: str, board, sweep_dir: str | Path) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    csv_path = Path(sweep_dir) / "leaderboard.csv"
    board.to_csv(csv_path, index=False)
    client.log_artifact(parent_run_id, str(csv_path))
    client.log_table(parent_run_id, data=board.fillna(""), artifact_file="leaderboard.json")
    best = board[board["status"].isin(["FINISHED", "SKIPPED"])].head(1)
    if not best.empty and best.iloc[0]["test/score"] == best.iloc[0]["test/score"]:
        client.log_metric(parent_run_id, "best/test_score", float(best.iloc[0]["test/score"]))
        client.set_tag(parent_run_id, "dspy_mlflow.best_run_id", str(best.iloc[0]["run_id"]))


def format_board(board) -> str:
    """A terminal-sized view: the CSV and the MLflow table keep every column."""
    view = board[["rank", "model", "optimizer", "strategy", "status", "test/score", "dev/score",
                  "dev/baseline_score", "cost/total_usd", "cost/list_usd", "run_id"]].copy()
    view.columns = ["rank", "model", "optimizer", "strategy", "status", "test", "dev", "baseline", "cost_usd",
                    "list_usd", "run"]
    view["run"] = view["run"].fillna("").str[:8]
    return view.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-")
