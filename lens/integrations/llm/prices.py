"""What a reply costs: USD per million tokens, for the models of the vendors Lens names.

The cost cap (LENS_TUTOR_DAILY_COST_CAP_USD) is only as good as these prices, so a model
Lens does not know is never counted as free when it runs at a vendor: it costs that
vendor's dearest price here. Only a model served from LENS_LLM_API_BASE (a local or
self-hosted server) that nobody prices costs nothing.

Lookup, first match wins:
1. LENS_LLM_PRICES, the site's own (JSON: {"model": [input, output]} per million tokens);
2. the table below (list prices, checked 2026-12), matched on the name without its
   vendor prefix, a dated name (`claude-sonnet-4-20250514`) matching its family's entry;
3. litellm's bundled price list, read as a file (importing litellm takes seconds);
4. the vendor's dearest price below, or 0 for a model at LENS_LLM_API_BASE.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Price:
    input_per_mtok: float
    output_per_mtok: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok
        ) / 1_000_000


# Families, most specific first (the first prefix that matches the name wins).
TABLE: dict[str, list[tuple[str, Price]]] = {
    "anthropic": [
        ("claude-opus-4-5", Price(5.0, 25.0)),
        ("claude-opus-4", Price(15.0, 75.0)),
        ("claude-3-opus", Price(15.0, 75.0)),
        ("claude-sonnet-4", Price(3.0, 15.0)),
        ("claude-3-7-sonnet", Price(3.0, 15.0)),
        ("claude-3-5-sonnet", Price(3.0, 15.0)),
        ("claude-haiku-4", Price(1.0, 5.0)),
        ("claude-3-5-haiku", Price(0.8, 4.0)),
        ("claude-3-haiku", Price(0.25, 1.25)),
    ],
    "openai": [
        ("gpt-4o-mini", Price(0.15, 0.6)),
        ("gpt-4o", Price(2.5, 10.0)),
        ("gpt-4.1-nano", Price(0.1, 0.4)),
        ("gpt-4.1-mini", Price(0.4, 1.6)),
        ("gpt-4.1", Price(2.0, 8.0)),
        ("gpt-5-nano", Price(0.05, 0.4)),
        ("gpt-5-mini", Price(0.25, 2.0)),
        ("gpt-5", Price(1.25, 10.0)),
        ("o4-mini", Price(1.1, 4.4)),
        ("o3-mini", Price(1.1, 4.4)),
        ("o3", Price(2.0, 8.0)),
        ("o1", Price(15.0, 60.0)),
    ],
    "gemini": [
        ("gemini-2.5-flash-lite", Price(0.1, 0.4)),
        ("gemini-2.5-flash", Price(0.3, 2.5)),
        # Prompts over 200k tokens cost twice as much; the dearer price keeps the cap safe.
        ("gemini-2.5-pro", Price(2.5, 15.0)),
        ("gemini-2.0-flash-lite", Price(0.075, 0.3)),
        ("gemini-2.0-flash", Price(0.1, 0.4)),
        ("gemini-1.5-flash", Price(0.15, 0.6)),
        ("gemini-1.5-pro", Price(2.5, 10.0)),
    ],
}


def dearest(vendor: str) -> Price | None:
    family = TABLE.get(vendor)
    if not family:
        return None
    return max((p for _, p in family), key=lambda p: p.output_per_mtok + p.input_per_mtok)


def split(model: str) -> tuple[str, str]:
    """("anthropic", "claude-sonnet-4-20250514") from "anthropic/claude-sonnet-4-20250514";
    a name without a vendor is OpenAI's, as litellm reads it."""
    vendor, sep, name = model.partition("/")
    return (vendor.lower(), name) if sep else ("openai", model)


def price_of(model: str, *, local: bool = False, overrides: dict[str, Any] | None = None) -> Price:
    """The price of `model` (a `vendor/name` string). `local`: it is served from
    LENS_LLM_API_BASE, where an unpriced model costs nothing."""
    vendor, name = split(model)
    for key in (model, name):
        given = (overrides or {}).get(key)
        if given is not None:
            return Price(float(given[0]), float(given[1]))
    for prefix, price in TABLE.get(vendor, []):
        if name == prefix or re.match(re.escape(prefix) + r"([-.@:]|$)", name):
            return price
    bundled = _bundled().get(model) or _bundled().get(name)
    if bundled and bundled.get("input_cost_per_token") is not None:
        return Price(
            float(bundled["input_cost_per_token"]) * 1_000_000,
            float(bundled.get("output_cost_per_token") or 0.0) * 1_000_000,
        )
    if local:
        return Price(0.0, 0.0)
    return dearest(vendor) or max(
        (p for family in TABLE.values() for _, p in family), key=lambda p: p.output_per_mtok
    )


@cache
def _bundled() -> dict[str, Any]:
    """litellm's bundled price list, if litellm is installed (found without importing)."""
    try:
        spec = importlib.util.find_spec("litellm")
    except (ImportError, ValueError):
        return {}
    if spec is None or not spec.submodule_search_locations:
        return {}
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "model_prices_and_context_window_backup.json"
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return {}
            return data if isinstance(data, dict) else {}
    return {}
