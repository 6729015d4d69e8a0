"""One job: split, evaluate the baseline, compile, evaluate, log to MLflow."""
