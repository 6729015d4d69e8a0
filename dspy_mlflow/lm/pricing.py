"""Dollar cost of LM calls: configured prices, else LiteLLM's price map."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    input_per_1m: float
    output_per_1m: float
    source: str  # "config", "litellm" or "unknown"

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input_per_1m + tokens_out * self.output_per_1m) / 1_000_000


def litellm_price(litellm_model: str) -> Price | None:
    """Per-million prices LiteLLM knows for this model string, if any."""
    import litellm

    candidates = [litellm_model, litellm_model.split("/", 1)[-1]]
    for key in candidates:
        info = litellm.model_cost.get(key)
        if info and info.get("input_cost_per_token") is not None:
            return Price(
                float(info["input_cost_per_token"]) * 1e6,
                float(info.get("output_cost_per_token") or 0.0) * 1e6,
                "litellm",
            )
    return None


def resolve_price(model_cfg: Mapping) -> Price:
    """Configured pricing wins; missing halves come from LiteLLM; unknown is zero, marked as such."""
    pricing = model_cfg.get("pricing") or {}
    p_in, p_out = pricing.get("input_per_1m"), pricing.get("output_per_1m")
    if p_in is not None and p_out is not None:
        return Price(float(p_in), float(p_out), "config")
    known = litellm_price(str(model_cfg["litellm_model"]))
    if known is None:
        return Price(float(p_in or 0.0), float(p_out or 0.0), "config" if p_in or p_out else "unknown")
    return Price(
        float(p_in) if p_in is not None else known.input_per_1m,
        float(p_out) if p_out is not None else known.output_per_1m,
        "litellm" if p_in is None and p_out is None else "config+litellm",
    )
