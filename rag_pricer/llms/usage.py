"""Token and cost accounting of LLM calls (no LangChain needed to read it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Usage:
    """Token and cost accounting of the LLM calls behind one estimate."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cached: bool = False

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cost_usd + other.cost_usd,
            self.cached and other.cached,
        )
