"""Seeded train/dev/test split of a project's examples."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from dspy_mlflow.errors import ConfigError


def split_examples(examples: Sequence, split: Mapping) -> tuple[list, list, list]:
    train_f, dev_f = float(split.get("train", 0.5)), float(split.get("dev", 0.25))
    if not (0 < train_f < 1 and 0 < dev_f < 1 and train_f + dev_f < 1):
        raise ConfigError(
            "project.split", {"train": train_f, "dev": dev_f},
            "fractions in (0, 1) with train + dev < 1 (test gets the rest)",
        )
    items = list(examples)
    random.Random(int(split.get("seed", 0))).shuffle(items)
    limit = split.get("limit")
    if limit is not None:
        if int(limit) < 3:
            raise ConfigError("project.split.limit", limit, "an integer >= 3, or null for all examples")
        items = items[: int(limit)]
    n_train, n_dev = max(1, int(len(items) * train_f)), max(1, int(len(items) * dev_f))
    train, dev, test = items[:n_train], items[n_train : n_train + n_dev], items[n_train + n_dev :]
    if not test:
        raise ConfigError("project.split", dict(split), f"leaves no test examples out of {len(items)}")
    return train, dev, test
