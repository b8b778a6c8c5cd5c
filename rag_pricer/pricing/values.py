"""What every strategy returns (``Estimate``, with its ``Comparable`` evidence) and the bounds
every price is held in."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from rag_pricer.llms.usage import Usage

#: no product this service prices sells outside these bounds (USD)
FLOOR = 0.5
CEILING = 10_000.0

#: how far to trust an estimate, read from its retrieval evidence (``pricing.confidence``)
Confidence = Literal["high", "medium", "low"]
CONFIDENCE_LEVELS: tuple[Confidence, ...] = ("high", "medium", "low")


@dataclass(frozen=True)
class Comparable:
    """A stored product used as evidence."""

    id: str
    title: str
    price: float
    similarity: float
    category: str | None = None


@dataclass
class Estimate:
    """A price in USD with its evidence. ``fallback`` says why another method produced the
    price (e.g. the LLM answer had no usable number) and is ``None`` when none was needed.

    ``low`` and ``high`` bound the true price with probability ``coverage`` (split conformal
    calibration of the strategy on held-out items, see ``rag_pricer.pricing.ranges``); all three are
    ``None`` when the strategy has no calibration, and a note then says how to make one. ``id`` is
    new for every estimate: the service, ``price-file`` and ``estimate --json`` return it, and
    feedback on the price a product really sold for names it.

    ``confidence`` (``high``/``medium``/``low``) says how far to trust the price, and
    ``confidence_reason`` why, in words (``pricing.confidence``): ``low`` when the store knows
    nothing like the item. A strategy that shows no comparables gets ``None`` and a reason."""

    price: float
    strategy: str
    #: names this answer (feedback refers to it); not part of equality: two runs that price alike are equal
    id: str = field(default_factory=lambda: uuid.uuid4().hex, compare=False)
    comparables: list[Comparable] = field(default_factory=list)
    llm_answer: str | None = None
    fallback: str | None = None
    usage: Usage | None = None
    latency_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    low: float | None = None
    high: float | None = None
    coverage: float | None = None
    confidence: Confidence | None = None
    confidence_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["price"] = round(self.price, 2)
        data["latency_s"] = round(self.latency_s, 4)
        for bound in ("low", "high"):
            data[bound] = None if data[bound] is None else round(data[bound], 2)
        return data
