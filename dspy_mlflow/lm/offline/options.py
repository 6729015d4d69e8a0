"""The offline model's knobs (``model.provider_options``) and their validation.

    latency_ms: 0        sleep before every answer
    fault_rate: 0.0      legacy single knob: 429 (Retry-After: 0) or 500, chosen by prompt
    faults: {}           per-kind rates, e.g. {rate_limit: 0.1, no_usage: 0.2} (kinds: FAULT_KINDS)
    retry_after_s: 1     the Retry-After a rate_limit fault sends
    hang_s: 30           how long a hang fault stalls before answering
    seed: 0              fault draws are a function of (seed, prompt, attempt)
    fallback_label: null the Literal option to answer when no demo helps

``fault_rate`` plus all ``faults`` rates must sum to at most 1 (one fault per
attempt at most). :func:`check_options` validates a mapping without running
anything and raises :class:`~dspy_mlflow.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from dspy_mlflow.errors import ConfigError
from dspy_mlflow.lm.faults import FAULT_KINDS, LEGACY

_RATE_SUM_TOLERANCE = 1e-9


class OfflineOptionError(ConfigError, ValueError):
    """A bad offline option: a ConfigError (key, value, allowed) that is also a ValueError."""


@dataclass(frozen=True)
class OfflineOptions:
    """Knobs of the offline model (``model_cfg.provider_options``); see the module docstring."""

    latency_ms: float = 0.0
    fault_rate: float = 0.0
    faults: dict[str, float] = field(default_factory=dict)
    retry_after_s: float = 1.0
    hang_s: float = 30.0
    seed: int = 0
    fallback_label: str | None = None

    def fault_rates(self) -> list[tuple[str, float]]:
        """(kind, rate) with a rate above 0, legacy ``fault_rate`` first, then FAULT_KINDS order."""
        rates = [(LEGACY, self.fault_rate)] + [(k, self.faults.get(k, 0.0)) for k in FAULT_KINDS]
        return [(k, r) for k, r in rates if r > 0]

    @classmethod
    def from_mapping(cls, data: Mapping | None, prefix: str = "provider_options") -> OfflineOptions:
        """Parse and validate; a bad value raises OfflineOptionError (a ValueError) naming ``prefix.key``."""
        if not data:
            return cls()
        known = [f.name for f in fields(cls)]
        for key in data:
            if key not in known:
                raise OfflineOptionError(
                    f"{prefix}.{key}", data[key], f"not an offline option; options: {', '.join(known)}"
                )
        kw: dict[str, Any] = {}
        for name in ("latency_ms", "retry_after_s", "hang_s"):
            if data.get(name) is not None:
                kw[name] = _number(data[name], f"{prefix}.{name}", 0.0, math.inf, "a number >= 0")
        if data.get("fault_rate") is not None:
            kw["fault_rate"] = _number(
                data["fault_rate"], f"{prefix}.fault_rate", 0.0, 1.0, "a rate in [0, 1]"
            )
        if data.get("faults") is not None:
            kw["faults"] = _fault_rates(data["faults"], f"{prefix}.faults")
        if data.get("seed") is not None:
            kw["seed"] = _integer(data["seed"], f"{prefix}.seed")
        if data.get("fallback_label") is not None:
            kw["fallback_label"] = str(data["fallback_label"])
        opts = cls(**kw)
        total = sum(rate for _, rate in opts.fault_rates())
        if total > 1 + _RATE_SUM_TOLERANCE:
            raise OfflineOptionError(
                f"{prefix}.faults", dict(opts.faults),
                f"fault_rate plus all faults rates must sum to at most 1 (one fault per attempt), got {total:g}",
            )  # fmt: skip
        return opts


def check_options(mapping: Mapping | None, prefix: str = "model.provider_options") -> OfflineOptions:
    """Validate offline ``provider_options`` at config time; raises ConfigError naming ``prefix.key``."""
    if mapping is not None and not isinstance(mapping, Mapping):
        raise OfflineOptionError(prefix, mapping, "a mapping of offline options")
    return OfflineOptions.from_mapping(mapping, prefix)


def _number(value: Any, key: str, low: float, high: float, allowed: str) -> float:
    if isinstance(value, bool):
        raise OfflineOptionError(key, value, allowed)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise OfflineOptionError(key, value, allowed) from None
    if not (low <= number <= high) or math.isnan(number):
        raise OfflineOptionError(key, value, allowed)
    return number


def _integer(value: Any, key: str) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise OfflineOptionError(key, value, "an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise OfflineOptionError(key, value, "an integer") from None


def _fault_rates(value: Any, key: str) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise OfflineOptionError(
            key, value, f"a mapping of fault kind to rate; kinds: {', '.join(FAULT_KINDS)}"
        )
    rates = {}
    for kind, rate in value.items():
        if kind not in FAULT_KINDS:
            raise OfflineOptionError(
                f"{key}.{kind}", rate, f"not a fault kind; kinds: {', '.join(FAULT_KINDS)}"
            )
        number = _number(rate, f"{key}.{kind}", 0.0, 1.0, "a rate in [0, 1]")
        if number > 0:  # a kind at 0 is the same as an absent one
            rates[str(kind)] = number
    return rates
