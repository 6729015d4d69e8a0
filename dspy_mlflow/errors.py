"""One error hierarchy for everything dspy_mlflow raises on purpose.

    DspyMlflowError
    ├── ConfigError        a key has a bad value: names the key, the value, what is allowed
    ├── ProjectError       a project module, attribute or callable is missing or wrong
    ├── ProviderError      a model cannot be reached, loaded or authenticated
    ├── BudgetExceeded     budget.max_cost_usd would be exceeded
    ├── LostExamples       more test examples unanswered after retries than eval.max_error_rate allows
    ├── RegistryError      a registered model, version or alias is missing or refused
    └── CompareError       two programs' outputs cannot be compared (no raw outputs, examples that do not pair)

Every message is one line, so the CLI can print it as it is.
"""

from __future__ import annotations


class DspyMlflowError(Exception):
    """Base class: a one-line, user-facing reason."""


class ConfigError(DspyMlflowError):
    def __init__(self, key: str, value: object, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is not allowed: {allowed}")


class ProjectError(DspyMlflowError):
    pass


class ProviderError(DspyMlflowError):
    pass


class BudgetExceeded(DspyMlflowError):
    def __init__(self, spent: float, limit: float):
        self.spent, self.limit = spent, limit
        super().__init__(f"budget.max_cost_usd={limit} exceeded: spent ${spent:.6f}; partial results kept")


class LostExamples(DspyMlflowError):
    pass


class RegistryError(DspyMlflowError):
    pass


class CompareError(DspyMlflowError):
    pass


def one_line(exc: BaseException) -> str:
    """A single-line description of any exception, for tags and terminals."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    if isinstance(exc, DspyMlflowError):
        return text or name
    return f"{name}: {text}" if text else name
