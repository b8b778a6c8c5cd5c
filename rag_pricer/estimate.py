"""What every strategy takes (``Query``) and returns (``Estimate``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rag_pricer.items import Item


class InvalidQuery(ValueError):
    """A description that cannot be priced (empty, whitespace only, not text)."""


@dataclass(frozen=True)
class Query:
    """A description ready to price. ``id`` (when it comes from a known item) lets retrieval
    leave the item itself out of its own evidence; ``truncated`` records that it was cut."""

    text: str
    id: str | None = None
    category: str | None = None
    #: raw details JSON of an Item (weight, rank, brand ...), for strategies that use them
    details: str | None = None
    truncated: bool = False

    @classmethod
    def of(cls, value: str | Item | Query, max_chars: int = 4000) -> Query:
        if isinstance(value, Query):
            return value
        details = None
        if isinstance(value, Item):
            text, item_id, category, details = value.description, value.id, value.category, value.details
        elif isinstance(value, str):
            text, item_id, category = value, None, None
        else:
            raise InvalidQuery(f"a description must be text, not {type(value).__name__}")
        text = text.strip()
        if not text:
            raise InvalidQuery("the description is empty")
        truncated = len(text) > max_chars
        # Cut at a word boundary: the embedding model reads ~256 tokens anyway, the LLM a few hundred.
        if truncated:
            text = text[:max_chars].rsplit(" ", 1)[0]
        return cls(text=text, id=item_id, category=category, details=details, truncated=truncated)


@dataclass(frozen=True)
class Comparable:
    """A stored product used as evidence."""

    id: str
    title: str
    price: float
    similarity: float
    category: str | None = None


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


@dataclass
class Estimate:
    """A price in USD with its evidence. ``fallback`` says why another method produced the
    price (e.g. the LLM answer had no usable number) and is ``None`` when none was needed.

    ``low`` and ``high`` bound the true price with probability ``coverage`` (split conformal
    calibration of the strategy on held-out items, see ``rag_pricer.ranges``); all three are
    ``None`` when the strategy has no calibration, and a note then says how to make one."""

    price: float
    strategy: str
    comparables: list[Comparable] = field(default_factory=list)
    llm_answer: str | None = None
    fallback: str | None = None
    usage: Usage | None = None
    latency_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    low: float | None = None
    high: float | None = None
    coverage: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["price"] = round(self.price, 2)
        data["latency_s"] = round(self.latency_s, 4)
        for bound in ("low", "high"):
            data[bound] = None if data[bound] is None else round(data[bound], 2)
        return data
