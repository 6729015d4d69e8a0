"""Study figures as run artifacts under ``search/``: Plotly HTML (self-contained, opens
offline) and a matplotlib PNG of each. A figure that cannot be drawn is skipped with a
printed reason; it never fails the job."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

from optuna.trial import TrialState


def _varying_params(trials) -> list[str]:
    names = sorted({n for t in trials for n in t.params})
    return [n for n in names if len({repr(t.params.get(n)) for t in trials}) > 1]


def figures(study, objectives: list[str]) -> dict[str, tuple]:
    """name -> (plotly builder, matplotlib builder) for the figures this study can show."""
    import optuna.visualization as pv
    import optuna.visualization.matplotlib as pm

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    multi = len(objectives) > 1
    kw = {"target": (lambda t: t.values[0]), "target_name": "dev_score"} if multi else {"target_name": "dev_score"}
    out: dict[str, tuple] = {}
    if complete:
        out["optimization_history"] = (lambda: pv.plot_optimization_history(study, **kw),
                                       lambda: pm.plot_optimization_history(study, **kw))
    varying = _varying_params(complete)
    if len(complete) >= 2 and varying and len({t.values[0] for t in complete}) > 1:
        out["param_importances"] = (lambda: pv.plot_param_importances(study, params=varying, **kw),
                                    lambda: pm.plot_param_importances(study, params=varying, **kw))
    if len(objectives) == 2 and complete:
        names = list(objectives)
        out["pareto_front"] = (lambda: pv.plot_pareto_front(study, target_names=names),
                               lambda: pm.plot_pareto_front(study, target_names=names))
    return out


def log_figures(study, objectives: list[str]) -> list[str]:
    """Log the figures to the active MLflow run; returns the artifact paths written."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import mlflow

    logged: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (plotly_fig, mpl_fig) in figures(study, objectives).items():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fig = plotly_fig()
                path = Path(tmp) / f"{name}.html"
                fig.write_html(str(path), include_plotlyjs=True, full_html=True)
                mlflow.log_artifact(str(path), artifact_path="search")
                logged.append(f"search/{name}.html")
            except Exception as exc:  # a figure must never fail the job
                print(f"search: figure {name} (plotly) skipped: {type(exc).__name__}: {exc}")
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ax = mpl_fig()
                figure = (ax.flat[0] if hasattr(ax, "flat") else ax).get_figure()
                path = Path(tmp) / f"{name}.png"
                figure.savefig(str(path), dpi=100, bbox_inches="tight")
                plt.close(figure)
                mlflow.log_artifact(str(path), artifact_path="search")
                logged.append(f"search/{name}.png")
            except Exception as exc:
                print(f"search: figure {name} (matplotlib) skipped: {type(exc).__name__}: {exc}")
    return logged
