"""What an evaluation produces: one ``ItemResult`` per scored item and the ``EvaluationResult``
that summarises them (metrics with intervals), serialisable to and from JSON."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag_pricer.atomic_files import write_text_atomic
from rag_pricer.evaluation.bootstrap import Bootstrap, Interval
from rag_pricer.evaluation.metrics import METRICS

FORMAT_VERSION = 1


@dataclass
class ItemResult:
    """How one item went: its estimate, or the error that kept it from having one."""

    id: str
    truth: float
    estimate: float | None = None
    category: str | None = None
    fallback: str | None = None
    error: str | None = None
    latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    #: the estimate's price range (``None``: the strategy is not calibrated)
    low: float | None = None
    high: float | None = None
    #: True when the range was calibrated on this very item: its coverage would be in-sample
    calibrated_on: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.estimate is not None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["latency_s"] = round(self.latency_s, 5)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemResult:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class EvaluationResult:
    """The rows of one strategy's run, in item order, and their metrics.

    ``metrics`` are computed from the rows that have an estimate; failed rows are counted in
    ``failed`` and listed in ``rows`` but take no part in them.
    """

    strategy: str
    rows: list[ItemResult]
    seconds: float
    bootstrap: Bootstrap = field(default_factory=Bootstrap)
    settings: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    model_metrics: dict[str, Any] | None = None
    #: the LLM the strategy asked (``Pricer.llm_used()``: spec, model id, runtime, description)
    llm: dict[str, Any] | None = None
    #: rows taken over from an earlier, interrupted run instead of being scored again
    resumed: int = 0
    #: the stated coverage of the price ranges (the pricer's calibration), when it has one
    range_coverage: float | None = None
    metrics: dict[str, Interval] = field(init=False)

    def __post_init__(self) -> None:
        scored = self.scored
        if scored:
            truth = np.array([r.truth for r in scored], dtype=float)
            estimate = np.array([r.estimate for r in scored], dtype=float)
            self.metrics = self.bootstrap.intervals(truth, estimate)
        else:
            self.metrics = {}

    @property
    def scored(self) -> list[ItemResult]:
        return [r for r in self.rows if r.ok]

    @property
    def failures(self) -> list[ItemResult]:
        return [r for r in self.rows if not r.ok]

    @property
    def n(self) -> int:
        """Items with an estimate (the ones the metrics are computed on)."""
        return len(self.scored)

    @property
    def failed(self) -> int:
        return len(self.rows) - self.n

    @property
    def fallbacks(self) -> int:
        return sum(1 for r in self.scored if r.fallback)

    def ranges(self) -> dict[str, Any] | None:
        """Empirical coverage and median width of the price ranges, on the scored items whose
        range was not calibrated on them (``None`` when there are none)."""
        from rag_pricer.pricing.ranges.crossfit import coverage_report

        rows = [
            (r.truth, r.low, r.high)
            for r in self.scored
            if r.low is not None and r.high is not None and not r.calibrated_on
        ]
        excluded = sum(1 for r in self.scored if r.calibrated_on)
        if not rows:
            return (
                {"n": 0, "nominal": self.range_coverage, "excluded_calibration_items": excluded} if excluded else None
            )
        truth, low, high = [t for t, _, _ in rows], [lo for _, lo, _ in rows], [hi for _, _, hi in rows]
        data: dict[str, Any] = coverage_report(truth, low, high, self.range_coverage or 0.0).as_dict()
        del data["folds"]
        data["excluded_calibration_items"] = excluded
        return data

    def value(self, metric: str) -> float | None:
        """A metric's point value, ``None`` when nothing was scored."""
        interval = self.metrics.get(metric)
        return interval.value if interval else None

    def usage(self) -> dict[str, Any]:
        return {
            "prompt_tokens": sum(r.prompt_tokens for r in self.rows),
            "completion_tokens": sum(r.completion_tokens for r in self.rows),
            "cost_usd": round(sum(r.cost_usd for r in self.rows), 6),
        }

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "strategy": self.strategy,
            "n": self.n,
            "items": len(self.rows),
            "failed": self.failed,
            "fallbacks": self.fallbacks,
            "seconds": round(self.seconds, 3),
            "resumed": self.resumed,
        }
        suffix = self.bootstrap.label
        for name in METRICS:
            interval = self.metrics.get(name)
            data[name] = _finite(interval.value) if interval else None
            data[f"{name}_{suffix}"] = [_finite(interval.low), _finite(interval.high)] if interval else None
        data["bootstrap"] = {
            "resamples": self.bootstrap.resamples,
            "confidence": self.bootstrap.confidence,
            "seed": self.bootstrap.seed,
        }
        data["model_metrics"] = self.model_metrics
        data["llm"] = self.llm
        data["range_coverage"] = self.range_coverage
        data["ranges"] = self.ranges()
        data["usage"] = self.usage()
        data["options"] = self.options
        data["settings"] = self.settings
        data["errors"] = [{"id": r.id, "error": r.error} for r in self.failures]
        data["rows"] = [r.to_dict() for r in self.rows]
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], bootstrap: Bootstrap | None = None) -> EvaluationResult:
        """Rebuild a result from ``to_dict`` output; metrics are recomputed from the rows, with
        ``bootstrap`` (default: the settings recorded in ``data``)."""
        if not isinstance(data, dict) or "strategy" not in data or not isinstance(data.get("rows"), list):
            raise ValueError("not an evaluation result: expected an object with 'strategy' and 'rows'")
        if bootstrap is None:
            recorded = data.get("bootstrap") or {}
            bootstrap = Bootstrap(**{k: v for k, v in recorded.items() if k in ("resamples", "confidence", "seed")})
        return cls(
            strategy=str(data["strategy"]),
            rows=[ItemResult.from_dict(row) for row in data["rows"]],
            seconds=float(data.get("seconds", 0.0)),
            bootstrap=bootstrap,
            settings=data.get("settings") or {},
            options=data.get("options") or {},
            model_metrics=data.get("model_metrics"),
            llm=data.get("llm"),
            resumed=int(data.get("resumed", 0)),
            range_coverage=data.get("range_coverage"),
        )

    def save(self, path: str | Path) -> Path:
        """Write the JSON atomically (a crash never leaves half a file behind)."""
        return write_text_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path, bootstrap: Bootstrap | None = None) -> EvaluationResult:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")), bootstrap)


def _finite(value: float) -> float | None:
    # JSON has no NaN: an undefined value is written as null.
    return value if math.isfinite(value) else None
