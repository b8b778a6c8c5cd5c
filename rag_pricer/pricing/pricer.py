"""The one contract every pricing strategy implements."""

from __future__ import annotations

import hashlib
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from rag_pricer.items import Item
from rag_pricer.pricing.confidence import BUILT_IN, ConfidenceLevels
from rag_pricer.pricing.evidence import Evidence
from rag_pricer.pricing.ranges import RangeCalibration
from rag_pricer.pricing.values import CEILING, FLOOR, Estimate
from rag_pricer.query import Query

QueryLike = str | Item | Query


class UnusablePrice(ValueError):
    """A strategy computed something that is not a price (NaN, infinite, zero or negative)."""


class Pricer(ABC):
    """Estimates prices. Subclasses implement ``_estimate_many`` on validated queries.

    ``estimate`` and ``estimate_many`` validate inputs (empty descriptions raise
    ``InvalidQuery``; long ones are truncated) and time the work; a batch shares its latency
    evenly between its estimates. Every estimate they return is a finite price within
    [``FLOOR``, ``CEILING``], whatever the strategy computed (see ``_bounded``).
    """

    #: registry name, set by ``rag_pricer.pricing.registry.register``
    name: str = "pricer"
    #: the validated options it was built with, defaults filled in (set by ``Strategy.build``)
    options: Mapping[str, Any] = MappingProxyType({})
    #: descriptions longer than this are truncated before pricing
    max_chars: int = 4000
    #: the strategy's conformal calibration (``Estimator.pricer`` loads it from ``models_dir``):
    #: with one, every estimate carries ``low``/``high`` at its coverage
    calibration: RangeCalibration | None = None
    #: without one, this note (how to calibrate) goes on every estimate instead of a range
    uncalibrated_note: str | None = None
    #: the thresholds of every estimate's confidence level (``Estimator.pricer`` loads the saved ones)
    confidence_levels: ConfidenceLevels = BUILT_IN

    def estimate(self, query: QueryLike) -> Estimate:
        return self.estimate_many([query])[0]

    def estimate_many(self, queries: Sequence[QueryLike]) -> list[Estimate]:
        prepared = [Query.of(query, self.max_chars) for query in queries]
        if not prepared:
            return []
        started = time.perf_counter()
        estimates = self._estimate_many(prepared)
        per_item = (time.perf_counter() - started) / len(prepared)
        for query, estimate in zip(prepared, estimates):
            _bounded(estimate)
            estimate.latency_s = estimate.latency_s or per_item
            if query.truncated:
                estimate.notes.append(f"description truncated to {self.max_chars} characters")
            self._add_range(estimate)
            estimate.confidence, estimate.confidence_reason = self.confidence_levels.assess(estimate.comparables)
        return estimates

    def _add_range(self, estimate: Estimate) -> None:
        if self.calibration is None:
            if self.uncalibrated_note:
                estimate.notes.append(self.uncalibrated_note)
            return
        low, high = self.calibration.bounds(estimate.price, Evidence.of_estimate(estimate.comparables))
        estimate.low, estimate.high = float(np.ravel(low)[0]), float(np.ravel(high)[0])
        estimate.coverage = self.calibration.coverage

    @abstractmethod
    def _estimate_many(self, queries: list[Query]) -> list[Estimate]:
        """Price validated queries, one ``Estimate`` each, in order."""

    def fingerprint(self) -> dict[str, Any]:
        """What this pricer's answers depend on besides its options and the items priced: the
        settings it reads, the store it searches, its model files, its LLM and how it generates.
        The evaluation harness hashes it (with ``options``) to know when a saved run is stale,
        without knowing any strategy's internals. A pricer that depends on nothing else: ``{}``."""
        return {}

    def leaked_ids(self, ids: Sequence[str]) -> list[str]:
        """Those ``ids`` that this pricer has seen in training or can retrieve: scoring them
        would measure memory, not estimation. Pricers that learn nothing return ``[]``."""
        return []

    def trained_ids(self, ids: Sequence[str]) -> list[str]:
        """Those ``ids`` whose own prices shaped this pricer (trained or fitted on them): its
        answer for one of them is in-sample. A subset of ``leaked_ids``: a product it can only
        retrieve is not here when retrieval drops the item asked about (its id and copies of its
        text), so that such an item is priced from the other products, leave-one-out, as a new
        one is. Fitting an ensemble on the unscored items of the knowledge base relies on it.
        By default every leaked id (the safe answer)."""
        return self.leaked_ids(ids)

    def llm_used(self) -> dict[str, Any] | None:
        """The LLM this pricer asks (``PricingLLM.identity()``: spec, model id, runtime), for the
        reports of its results; ``None`` when it asks none."""
        return None


def files_digest(path: str | Path) -> str:
    """A hash of the files under ``path`` (names and contents), ``"absent"`` when there are none:
    a model retrained in the same folder gets another digest."""
    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else ([root] if root.is_file() else [])
    if not files:
        return "absent"
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.relative_to(root) if root.is_dir() else file.name}\x00".encode())
        with file.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:20]


def _bounded(estimate: Estimate) -> Estimate:
    """Hold ``estimate`` inside [``FLOOR``, ``CEILING``], saying so in ``fallback``; what is
    not a positive finite number is a bug of the strategy, raised (``UnusablePrice``) rather
    than turned into a price."""
    price = estimate.price
    if isinstance(price, bool) or not isinstance(price, (int, float)) or not math.isfinite(price) or price <= 0:
        raise UnusablePrice(f"{estimate.strategy} returned {price!r}, not a finite positive price")
    if not FLOOR <= price <= CEILING:
        estimate.price = min(max(float(price), FLOOR), CEILING)
        problem = f"the estimate ${price:,.2f} is outside ${FLOOR:,.2f}-${CEILING:,.0f}: held at ${estimate.price:,.2f}"
        estimate.fallback = f"{estimate.fallback}; {problem}" if estimate.fallback else problem
    estimate.price = float(estimate.price)
    return estimate
