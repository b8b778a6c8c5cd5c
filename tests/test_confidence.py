"""Confidence levels: thresholds placed on held-out evidence, the level and reason of an
estimate, saving, and "I don't know" for text the store has nothing like (through the real knn)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag_pricer.api import Estimator, attach_calibration
from rag_pricer.pricing.confidence import BUILT_IN, NO_COMPARABLES, ConfidenceLevels, confidence_path
from rag_pricer.pricing.evidence import Evidence
from rag_pricer.pricing.pricer import Pricer
from rag_pricer.pricing.ranges import CalibrationError
from rag_pricer.pricing.values import Comparable, Estimate
from rag_pricer.query import Query
from rag_pricer.settings import Settings


def held_out(n: int, seed: int) -> tuple[Evidence, np.ndarray, np.ndarray]:
    """Evidence of ``n`` items whose errors grow as the top similarity falls."""
    rng = np.random.default_rng(seed)
    top = rng.uniform(0.35, 0.98, n)
    spread = rng.uniform(0.05, 1.5, n)
    truth = np.exp(rng.uniform(2, 6, n))
    estimate = truth * np.exp(rng.normal(0, 0.1 + (1 - top) + 0.3 * spread))
    return Evidence(top, spread), truth, estimate


def test_thresholds_come_from_the_held_out_items_distribution() -> None:
    evidence, truth, estimate = held_out(1000, seed=1)
    levels = ConfidenceLevels.fit(evidence, truth, estimate, "knn", "test")
    assert levels.low_below == pytest.approx(np.quantile(evidence.top_similarity, 0.05))
    assert levels.high_from == pytest.approx(np.quantile(evidence.top_similarity, 0.75))
    found = levels.levels(evidence)
    assert found.count("low") == pytest.approx(50, abs=1)
    # the levels mean something: MAE grows from high to low
    mae = {level: levels.measured[level]["mae"] for level in ("high", "medium", "low")}
    assert mae["high"] < mae["medium"] < mae["low"]
    assert sum(v["n"] for v in levels.measured.values()) == 1000


def test_too_few_items_cannot_place_thresholds() -> None:
    evidence, truth, estimate = held_out(10, seed=2)
    with pytest.raises(CalibrationError, match="need at least 20"):
        ConfidenceLevels.fit(evidence, truth, estimate)


LEVELS = ConfidenceLevels(low_below=0.5, high_from=0.8)


@pytest.mark.parametrize(
    ("comparables", "level", "words"),
    [
        ([Comparable("a", "guitar amp", 98.0, 0.31), Comparable("b", "cable", 9.0, 0.3)], "low", "only 31% similar"),
        ([Comparable("a", "drill", 99.0, 0.9), Comparable("b", "drill", 104.0, 0.85)], "high", "90% similar"),
        ([Comparable("a", "drill", 99.0, 0.9), Comparable("b", "bit", 4.0, 0.89)], "high", "disagree"),
        ([Comparable("a", "drill", 99.0, 0.65)], "medium", "65% similar: a rough estimate"),
    ],
)
def test_an_estimate_s_level_and_reason_follow_its_comparables(
    comparables: list[Comparable], level: str, words: str
) -> None:
    found, reason = LEVELS.assess(comparables)
    assert found == level and words in reason
    if level == "low":
        assert "guess" in reason


def test_without_comparables_there_is_no_level_and_the_reason_says_why() -> None:
    assert LEVELS.assess([]) == (None, NO_COMPARABLES)


class Shown(Pricer):
    def __init__(self, comparables: list[Comparable]) -> None:
        self.comparables = comparables

    def _estimate_many(self, queries: list[Query]) -> list[Estimate]:
        return [Estimate(50.0, self.name, comparables=list(self.comparables)) for _ in queries]


def test_every_estimate_carries_its_level_and_saved_levels_replace_the_built_in_ones(tmp_path: Path) -> None:
    pricer = Shown([Comparable("a", "drill", 99.0, 0.6)])
    attach_calibration(pricer, "shown", tmp_path)
    assert pricer.confidence_levels == BUILT_IN
    data = pricer.estimate("a drill").to_dict()
    assert data["confidence"] in ("high", "medium", "low") and data["confidence_reason"]
    LEVELS.save(tmp_path)
    attach_calibration(pricer, "shown", tmp_path)
    assert pricer.confidence_levels == LEVELS
    assert pricer.estimate("a drill").confidence == "medium"
    assert Shown([]).estimate("a drill").confidence is None


def test_levels_round_trip_and_a_damaged_file_says_to_recalibrate(tmp_path: Path) -> None:
    evidence, truth, estimate = held_out(200, seed=3)
    saved = ConfidenceLevels.fit(evidence, truth, estimate, "knn", "test")
    path = saved.save(tmp_path)
    assert path == confidence_path(tmp_path) and ConfidenceLevels.load(tmp_path) == saved
    assert ConfidenceLevels.load(tmp_path / "none") is None
    for damaged in (
        '{"format": 1, "low_below": 0.5}',
        '{"format": 1, "low_below": 0.9, "high_from": 0.5}',
        "not json",
        '{"format": 1, "low_below": NaN, "high_from": 0.5}',
        '{"format": 1, "low_below": 0.4, "high_from": 0.5, "high_max_spread": 0.4}',
    ):
        path.write_text(damaged)
        with pytest.raises(CalibrationError, match="recalibrate with `rag-pricer calibrate`"):
            ConfidenceLevels.load(tmp_path)


def test_the_built_in_levels_are_measured_ones() -> None:
    assert 0.3 < BUILT_IN.low_below < BUILT_IN.high_from < 1
    assert BUILT_IN.n > 0 and set(BUILT_IN.measured) == {"high", "medium", "low"}


@pytest.mark.parametrize(
    "text",
    ["hello world", "qzx 7fj kwp0 vvb ryt 93k", "KitchenAid Artisan 5-quart tilt-head stand mixer, empire red"],
)
def test_text_the_store_knows_nothing_like_gets_low_through_the_real_knn(settings: Settings, text: str) -> None:
    found = Estimator.from_settings(settings).estimate(text, "knn")
    assert found.confidence == "low", (found.confidence_reason, [c.title for c in found.comparables][:3])
    assert found.confidence_reason is not None and "guess" in found.confidence_reason


def test_a_product_the_store_holds_gets_more_than_low(settings: Settings, train_items: list) -> None:
    item = train_items[3]
    found = Estimator.from_settings(settings).estimate(item.description, "knn")
    assert found.confidence in ("high", "medium")
    assert json.loads(json.dumps(found.to_dict()))["confidence"] == found.confidence
