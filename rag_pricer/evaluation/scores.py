"""``ScoreRecord``: a strategy's measured dev figures, kept where every door that offers a choice
of strategy can show them (``rag-pricer strategies``, ``GET /v1/strategies``, the page).

A record is written wherever a strategy's dev MAE is measured on the whole split: ``rag-pricer
evaluate --split dev`` (no ``--limit``, default options) and ``train-ensemble`` / ``prepare``
(the ensemble's cross-fitted figures, and each base's on the same items). One JSON file per
strategy under ``models_dir/scores``; the latest measurement replaces the previous one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from rag_pricer.atomic_files import write_text_atomic
from rag_pricer.evaluation.bootstrap import Interval

#: where score records live under settings ``models_dir``
SCORES_DIR = "scores"
#: the split whose figures are shown next to a strategy's name
SCORED_SPLIT = "dev"


@dataclass(frozen=True)
class ScoreRecord:
    """``strategy``'s MAE and hit rate (with 95% intervals) on ``n`` items of ``split`` of ``items``;
    ``how`` says how they were measured (``evaluated``, ``cross-fitted``), ``command`` the command
    that measures them again."""

    strategy: str
    mae: float
    mae_ci: tuple[float, float]
    hit_rate: float
    hit_rate_ci: tuple[float, float]
    n: int
    items: str
    split: str
    how: str
    command: str
    date: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    llm: str | None = None

    @classmethod
    def of(cls, strategy: str, metrics: Mapping[str, Interval], n: int, **about: Any) -> Self:
        """A record from metrics as the evaluation and the ensemble trainer give them."""
        mae, hit = metrics["mae"], metrics["hit_rate"]
        return cls(
            strategy,
            round(mae.value, 2),
            (round(mae.low, 2), round(mae.high, 2)),
            round(hit.value, 4),
            (round(hit.low, 4), round(hit.high, 4)),
            n,
            **about,
        )

    def label(self) -> str:
        """``$106 on dev``: how a picker shows it."""
        return f"${self.mae:,.0f} on {self.split}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        values = dict(data)
        for name in ("mae_ci", "hit_rate_ci"):
            values[name] = tuple(values[name])
        return cls(**values)

    def save(self, models_dir: str | Path) -> Path:
        return write_text_atomic(score_path(models_dir, self.strategy), json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, models_dir: str | Path, strategy: str) -> Self | None:
        """The record of ``strategy``, ``None`` when there is none or it cannot be read (a
        damaged record is not worth failing a listing for)."""
        path = score_path(models_dir, strategy)
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError):
            return None


def score_path(models_dir: str | Path, strategy: str) -> Path:
    return Path(models_dir) / SCORES_DIR / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', strategy)}.json"


def dev_scores(models_dir: str | Path, strategies: list[str]) -> dict[str, ScoreRecord]:
    """The dev records on file of ``strategies``, by name."""
    found = {name: ScoreRecord.load(models_dir, name) for name in strategies}
    return {name: record for name, record in found.items() if record is not None and record.split == SCORED_SPLIT}


def recommended(scores: Mapping[str, ScoreRecord], default: str, ready: set[str] | None = None) -> str:
    """The strategy with the lowest dev MAE on record (among ``ready`` ones when given), else ``default``."""
    candidates = [r for name, r in scores.items() if ready is None or name in ready]
    return min(candidates, key=lambda r: r.mae).strategy if candidates else default
