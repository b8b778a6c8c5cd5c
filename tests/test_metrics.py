"""Metrics against hand-computed values, bootstrap intervals, and the result's bookkeeping."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rag_pricer.evaluation.bootstrap import Bootstrap
from rag_pricer.evaluation.metrics import METRICS, bias, format_value, grades, hit_rate, hits, mae, rmsle, within
from rag_pricer.evaluation.results import EvaluationResult, ItemResult

TRUTH = np.array([100.0, 50.0, 10.0])
ESTIMATE = np.array([120.0, 20.0, 10.0])  # errors +20, -30, 0


def test_mae_is_the_mean_absolute_dollar_error() -> None:
    assert mae(TRUTH, ESTIMATE) == pytest.approx(50 / 3)  # (20 + 30 + 0) / 3 = 16.666...
    assert mae(TRUTH, ESTIMATE) == pytest.approx(16.6667, abs=1e-4)


def test_bias_is_signed_estimate_minus_truth() -> None:
    assert bias(TRUTH, ESTIMATE) == pytest.approx(-10 / 3)  # (20 - 30 + 0) / 3
    assert bias(np.array([10.0]), np.array([15.0])) == pytest.approx(5.0)


def test_rmsle_by_hand() -> None:
    # log1p(120) - log1p(100) = ln(121/101); log1p(20) - log1p(50) = ln(21/51); the third is 0
    expected = math.sqrt((math.log(121 / 101) ** 2 + math.log(21 / 51) ** 2) / 3)
    assert expected == pytest.approx(0.522796, abs=1e-6)
    assert rmsle(TRUTH, ESTIMATE) == pytest.approx(expected)
    assert rmsle(TRUTH, TRUTH) == 0.0


def test_hit_rate_is_within_40_dollars_or_20_percent() -> None:
    # errors 20, 30, 0: all under $40
    assert hit_rate(TRUTH, ESTIMATE) == pytest.approx(1.0)
    truth = np.array([100.0, 300.0, 20.0, 500.0])
    estimate = np.array([145.0, 250.0, 65.0, 350.0])
    # $45 / 45% miss; $50 but 16.7% hit; $45 / 225% miss; $150 / 30% miss
    assert hits(truth, estimate).tolist() == [False, True, False, False]
    assert hit_rate(truth, estimate) == pytest.approx(0.25)
    # the rule is strict: exactly $40 off (and 40% off) is not a hit
    assert hit_rate(np.array([100.0]), np.array([140.0])) == 0.0
    assert hit_rate(np.array([100.0]), np.array([139.0])) == 1.0


def test_within_shares() -> None:
    truth = np.array([100.0, 300.0, 20.0, 500.0])
    estimate = np.array([145.0, 250.0, 65.0, 350.0])  # relative errors 0.45, 0.167, 2.25, 0.30
    assert within(0.10)(truth, estimate) == pytest.approx(0.0)
    assert within(0.20)(truth, estimate) == pytest.approx(0.25)
    assert within(0.50)(truth, estimate) == pytest.approx(0.75)
    assert within(0.10)(TRUTH, ESTIMATE) == pytest.approx(1 / 3)  # only the exact one
    assert within(0.50)(TRUTH, ESTIMATE) == pytest.approx(2 / 3)  # 60% off is out
    # the boundary is included: exactly half off is "within 50%"
    assert within(0.50)(np.array([200.0]), np.array([300.0])) == 1.0
    assert set(METRICS) >= {"mae", "rmsle", "hit_rate", "within_10", "within_20", "within_50", "bias"}


def test_metrics_reduce_over_the_last_axis_for_stacks_of_resamples() -> None:
    stacked_truth = np.stack([TRUTH, TRUTH[::-1]])
    stacked_estimate = np.stack([ESTIMATE, ESTIMATE[::-1]])
    for metric in METRICS.values():
        values = metric(stacked_truth, stacked_estimate)
        assert values.shape == (2,)
        assert values[0] == pytest.approx(values[1])  # same items, other order
        assert values[0] == pytest.approx(metric(TRUTH, ESTIMATE))


def test_grades_colour_good_fair_poor() -> None:
    truth = np.array([100.0, 100.0, 100.0, 1000.0, 10.0])
    estimate = np.array([130.0, 170.0, 190.0, 1350.0, 95.0])
    # $30 good; $70 fair (< $80); $90 & 90% poor; $350 but 35% fair; $85 & 850% poor
    assert grades(truth, estimate).tolist() == [0, 1, 2, 1, 2]


def test_format_value() -> None:
    assert format_value("mae", 1234.5) == "$1,234.50"
    assert format_value("bias", -62.654) == "-$62.65"
    assert format_value("hit_rate", 0.4567) == "45.7%"
    assert format_value("rmsle", 0.81234) == "0.812"
    assert format_value("mae", None) == "-"
    assert format_value("mae", float("nan")) == "-"


def _lognormal(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = np.exp(rng.normal(4.5, 1.0, n))
    return truth, truth * np.exp(rng.normal(0.0, 0.5, n))


def test_bootstrap_intervals_contain_the_point_estimate() -> None:
    truth, estimate = _lognormal(300, seed=1)
    intervals = Bootstrap(resamples=500, seed=3).intervals(truth, estimate)
    assert set(intervals) == set(METRICS)
    for name, interval in intervals.items():
        assert interval.low < interval.value < interval.high, name
        assert interval.value == pytest.approx(float(METRICS[name](truth, estimate)))


def _noisy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.uniform(50, 500, n)
    return truth, truth * np.exp(rng.normal(0, 0.3, n))


def test_bootstrap_narrows_with_more_items() -> None:
    bootstrap = Bootstrap(resamples=400, seed=0)
    small = bootstrap.intervals(*_noisy(40, seed=5))
    large = bootstrap.intervals(*_noisy(1600, seed=5))
    for name in ("mae", "rmsle", "hit_rate", "within_20", "bias"):
        # 40x the items: the width should shrink about sqrt(40) = 6.3x; 2.5x leaves room for noise
        assert (large[name].high - large[name].low) * 2.5 < small[name].high - small[name].low, name


def test_bootstrap_is_a_seeded_percentile_bootstrap() -> None:
    truth, estimate = _lognormal(50, seed=2)
    interval = Bootstrap(resamples=200, seed=7).interval(mae, truth, estimate)
    # the same computation written out as a loop over resamples
    rng = np.random.default_rng(7)
    index = rng.integers(0, 50, size=(200, 50))
    values = [np.mean(np.abs(estimate[i] - truth[i])) for i in index]
    assert interval.low == pytest.approx(np.percentile(values, 2.5))
    assert interval.high == pytest.approx(np.percentile(values, 97.5))
    assert Bootstrap(resamples=200, seed=7).interval(mae, truth, estimate) == interval
    assert Bootstrap(resamples=200, seed=8).interval(mae, truth, estimate) != interval
    # processing the resamples in small blocks keeps memory bounded and changes little
    blocked = Bootstrap(resamples=200, seed=7, block_cells=120).interval(mae, truth, estimate)
    assert blocked.value == interval.value
    assert blocked.low == pytest.approx(interval.low, rel=0.15)


def test_bootstrap_confidence_sets_the_width_and_label() -> None:
    truth, estimate = _lognormal(200, seed=4)
    wide = Bootstrap(resamples=400, confidence=0.99).interval(mae, truth, estimate)
    narrow = Bootstrap(resamples=400, confidence=0.80).interval(mae, truth, estimate)
    assert wide.high - wide.low > narrow.high - narrow.low
    assert Bootstrap().label == "ci95" and Bootstrap(confidence=0.9).label == "ci90"


def test_bootstrap_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="no scored items"):
        Bootstrap().intervals(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="one length"):
        Bootstrap().intervals(np.array([1.0, 2.0]), np.array([1.0]))
    with pytest.raises(ValueError):
        Bootstrap(resamples=0)
    with pytest.raises(ValueError):
        Bootstrap(confidence=1.5)


def _rows() -> list[ItemResult]:
    return [
        ItemResult("a", 100.0, 120.0, category="Toys", latency_s=0.1),
        ItemResult("b", 50.0, 20.0, fallback="no number in the answer", latency_s=0.2),
        ItemResult("c", 10.0, None, error="RuntimeError: boom"),
        ItemResult("d", 10.0, 10.0),
    ]


def test_result_excludes_failed_rows_from_the_metrics_but_counts_them() -> None:
    result = EvaluationResult("demo", _rows(), seconds=1.5, bootstrap=Bootstrap(resamples=100))
    assert (result.n, result.failed, result.fallbacks) == (3, 1, 1)
    assert result.value("mae") == pytest.approx(50 / 3)  # the same three items as above
    data = json.loads(result.to_json())
    for key in (
        "strategy",
        "n",
        "mae",
        "rmsle",
        "hit_rate",
        "mae_ci95",
        "hit_rate_ci95",
        "rmsle_ci95",
        "bias",
        "within_10_ci95",
        "seconds",
        "failed",
        "fallbacks",
        "settings",
        "rows",
        "errors",
        "model_metrics",
    ):
        assert key in data, key
    assert data["mae_ci95"][0] <= data["mae"] <= data["mae_ci95"][1]
    assert [row["id"] for row in data["rows"]] == ["a", "b", "c", "d"]
    assert data["rows"][2]["error"] == "RuntimeError: boom" and data["rows"][2]["estimate"] is None
    assert data["errors"] == [{"id": "c", "error": "RuntimeError: boom"}]
    assert data["rows"][1]["fallback"] == "no number in the answer"


def test_result_round_trips_through_json(tmp_path) -> None:
    result = EvaluationResult(
        "demo", _rows(), seconds=1.5, bootstrap=Bootstrap(resamples=100, seed=2), settings={"k": 5}
    )
    path = result.save(tmp_path / "sub" / "demo.json")
    again = EvaluationResult.load(path)
    assert again.to_dict() == result.to_dict()
    with pytest.raises(ValueError, match="not an evaluation result"):
        EvaluationResult.from_dict({"rows": "nope"})


def test_result_with_every_item_failed_is_valid_json() -> None:
    result = EvaluationResult("demo", [ItemResult("a", 10.0, error="boom")], seconds=0.1)
    data = json.loads(result.to_json())
    assert data["n"] == 0 and data["failed"] == 1
    assert data["mae"] is None and data["mae_ci95"] is None
    assert "NaN" not in result.to_json()


def test_paired_differences_resample_both_runs_together() -> None:
    rng = np.random.default_rng(1)
    truth = rng.lognormal(4, 1, size=300)
    ours, theirs = truth * rng.lognormal(0, 0.3, size=300), truth * rng.lognormal(0, 0.6, size=300)
    found = Bootstrap(resamples=500, seed=4).differences(truth, ours, theirs, {"mae": mae, "hit_rate": hit_rate})
    # the point value is the difference of the metrics ...
    assert found["mae"].value == pytest.approx(mae(truth, ours) - mae(truth, theirs))
    assert found["hit_rate"].value == pytest.approx(hit_rate(truth, ours) - hit_rate(truth, theirs))
    # ... and the interval the percentile interval of the mean per-item difference over the same resamples
    index = np.random.default_rng(4).integers(0, 300, size=(500, 300))
    per_item = np.abs(ours - truth) - np.abs(theirs - truth)
    assert [found["mae"].low, found["mae"].high] == pytest.approx(
        np.percentile(per_item[index].mean(axis=1), [2.5, 97.5])
    )
    assert found["mae"].high < 0  # the better run is better with confidence: pairing removes the items' spread


def test_paired_differences_of_two_runs_use_the_items_both_scored() -> None:
    from rag_pricer.evaluation.paired import paired_differences

    run = EvaluationResult("a", _rows(), seconds=1.0)  # scored a, b, d
    reference = EvaluationResult(
        "b", [ItemResult("a", 100.0, 100.0), ItemResult("d", 10.0, 30.0), ItemResult("z", 5.0, 5.0)], seconds=1.0
    )
    n, found = paired_differences(run, reference, {"mae": mae}, Bootstrap(resamples=50))
    assert n == 2  # a and d
    assert found["mae"].value == pytest.approx((20 + 0) / 2 - (0 + 20) / 2)
    with pytest.raises(ValueError, match="no item in common"):
        paired_differences(
            run, EvaluationResult("c", [ItemResult("z", 5.0, 5.0)], seconds=1.0), {"mae": mae}, Bootstrap(resamples=50)
        )
