"""What known OpenAI models charge, to account for the cost of an evaluation.

USD per million tokens (input, output), standard tier, as published by OpenAI when this table
was written; check https://openai.com/api/pricing before trusting a bill to it. A dated
snapshot (``gpt-4o-mini-2024-07-18``) is priced like its family (longest matching prefix).
Unknown models (and every local or self-hosted endpoint) cost 0.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelPrice:
    input_per_million: float
    output_per_million: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million) / 1e6


OPENAI_PRICES: dict[str, ModelPrice] = {
    "gpt-4o-mini": ModelPrice(0.15, 0.60),
    "gpt-4o": ModelPrice(2.50, 10.00),
    "gpt-4.1-nano": ModelPrice(0.10, 0.40),
    "gpt-4.1-mini": ModelPrice(0.40, 1.60),
    "gpt-4.1": ModelPrice(2.00, 8.00),
    "gpt-5-nano": ModelPrice(0.05, 0.40),
    "gpt-5-mini": ModelPrice(0.25, 2.00),
    "gpt-5": ModelPrice(1.25, 10.00),
    "o4-mini": ModelPrice(1.10, 4.40),
    "gpt-3.5-turbo": ModelPrice(0.50, 1.50),
}


def price_of(model: str, table: dict[str, ModelPrice] = OPENAI_PRICES) -> ModelPrice | None:
    """The price of ``model``: an exact entry, else the longest entry that prefixes it."""
    if model in table:
        return table[model]
    prefixes = [name for name in table if model.startswith(name + "-")]
    return table[max(prefixes, key=len)] if prefixes else None
