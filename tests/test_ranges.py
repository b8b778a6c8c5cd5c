"""Calibrated price ranges: split conformal coverage on synthetic data, saving, attaching to
pricers, and the coverage the evaluation harness reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag_pricer.api import attach_calibration
from rag_pricer.evaluation import Bootstrap, Evaluation
from rag_pricer.items import Item
from rag_pricer.pricing.evidence import Evidence
from rag_pricer.pricing.pricer import Pricer
from rag_pricer.pricing.ranges import CalibrationError, RangeCalibration, calibration_path, conformal_bounds
from rag_pricer.pricing.ranges.crossfit import cross_fitted_coverage
from rag_pricer.pricing.values import Comparable, Estimate
from rag_pricer.query import Query


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True prices and estimates that are biased low with a skewed log error."""
    rng = np.random.default_rng(seed)
    truth = np.exp(rng.uniform(1, 7, n))
    error = rng.gumbel(0.3, 0.5, n)  # log(truth / estimate): skewed, not centred
    return truth, truth * np.exp(-error)


@pytest.mark.parametrize("coverage", [0.8, 0.9])
def test_conformal_ranges_hold_the_stated_share_of_new_true_prices(coverage: float) -> None:
    truth, estimate = synthetic(1000, seed=1)
    calibration = RangeCalibration.fit("s", truth, estimate, coverage=coverage)
    new_truth, new_estimate = synthetic(50_000, seed=2)
    low, high = calibration.bounds(new_estimate)
    inside = np.mean((new_truth >= low) & (new_truth <= high))
    # conformal guarantee: at least `coverage`, at most coverage + 2/(n+1) (+ sampling noise)
    assert coverage - 0.01 <= inside <= coverage + 2 / 1001 + 0.01
    assert np.all(np.isfinite(low)) and np.all(low > 0) and np.all(high > low)
    # the tails are apart: a low-biased strategy gets a range that reaches further up than down
    assert calibration.q_high > -calibration.q_low


def test_cross_fitted_coverage_is_close_to_nominal_on_exchangeable_data() -> None:
    truth, estimate = synthetic(500, seed=3)
    report = cross_fitted_coverage(truth, estimate, 0.8, folds=5, seed=0)
    assert 0.76 <= report.coverage <= 0.85 and report.n == 500
    assert report.median_width > 0 and report.median_ratio > 1


def test_a_range_cannot_be_calibrated_on_too_few_items() -> None:
    with pytest.raises(CalibrationError, match="need at least 9"):
        conformal_bounds(np.zeros(5), 0.8)
    with pytest.raises(CalibrationError, match="positive"):
        RangeCalibration.fit("s", [10.0, 0.0], [5.0, 5.0])


def test_calibration_round_trips_as_json_and_a_damaged_file_is_refused(tmp_path: Path) -> None:
    truth, estimate = synthetic(100, seed=4)
    saved = RangeCalibration.fit("knn", truth, estimate, ids=["b", "a"], source="test")
    path = saved.save(tmp_path)
    assert path == calibration_path(tmp_path, "knn") and json.loads(path.read_text())["coverage"] == 0.8
    loaded = RangeCalibration.load(tmp_path, "knn")
    assert loaded == saved and loaded.ids == ["a", "b"]
    assert RangeCalibration.load(tmp_path, "other") is None
    path.write_text('{"format": 1, "strategy": "knn"}')
    with pytest.raises(CalibrationError, match="rag-pricer calibrate"):
        RangeCalibration.load(tmp_path, "knn")


class Half(Pricer):
    """Prices every item at half its true price (read from the id table)."""

    def __init__(self, prices: dict[str, float]) -> None:
        self.prices = prices

    def _estimate_many(self, queries: list[Query]) -> list[Estimate]:
        return [Estimate(self.prices.get(q.id or "", 20.0) / 2, self.name) for q in queries]


def make_items(n: int, seed: int) -> list[Item]:
    rng = np.random.default_rng(seed)
    return [
        Item(id=f"{seed}-{i}", title=f"thing {i}", text="text", price=float(p), split="dev")
        for i, p in enumerate(np.round(np.exp(rng.uniform(1, 6, n)), 2))
    ]


def test_estimates_carry_the_range_or_say_they_have_none(tmp_path: Path) -> None:
    pricer = Half({})
    pricer.name = "half"
    attach_calibration(pricer, "half", tmp_path)
    plain = pricer.estimate("a thing")
    assert plain.low is None and plain.high is None and plain.coverage is None
    assert "no price range for this strategy (it is not calibrated)" in plain.notes  # no command: any reader sees it
    RangeCalibration("half", 0.8, 0.5, 0.9, 100).save(tmp_path)
    attach_calibration(pricer, "half", tmp_path)
    ranged = pricer.estimate("a thing")
    assert ranged.price == 10.0 and ranged.coverage == 0.8
    assert ranged.low == pytest.approx(10 * np.exp(0.5)) and ranged.high == pytest.approx(10 * np.exp(0.9))
    data = ranged.to_dict()
    assert data["low"] == round(ranged.low, 2) and data["high"] == round(ranged.high, 2) and data["coverage"] == 0.8


def test_the_harness_reports_coverage_only_on_items_the_range_was_not_calibrated_on(tmp_path: Path) -> None:
    calibrate_on, score = make_items(40, seed=5), make_items(30, seed=6)
    prices = {i.id: i.price for i in [*calibrate_on, *score]}
    pricer = Half(prices)
    pricer.name = "half"
    # estimates are exactly half: log(truth / estimate) = log 2 for every item
    RangeCalibration.fit(
        "half", [i.price for i in calibrate_on], [i.price / 2 for i in calibrate_on], ids=[i.id for i in calibrate_on]
    ).save(tmp_path)
    attach_calibration(pricer, "half", tmp_path)
    result = Evaluation(pricer, [*calibrate_on[:10], *score], bootstrap=Bootstrap(resamples=50)).run()
    ranges = result.ranges()
    assert ranges is not None and ranges["n"] == 30 and ranges["excluded_calibration_items"] == 10
    assert ranges["coverage"] == 1.0 and ranges["nominal"] == 0.8
    data = json.loads(result.to_json())
    assert data["ranges"]["n"] == 30 and data["rows"][0]["calibrated_on"] is True and data["rows"][0]["low"] > 0


def test_the_comparison_report_shows_coverage_and_width() -> None:
    from rag_pricer.evaluation.report import comparison_markdown
    from rag_pricer.evaluation.results import EvaluationResult, ItemResult

    rows = [ItemResult(f"i{n}", 100.0, 90.0, low=50.0 + n, high=150.0 + n) for n in range(4)]
    rows.append(ItemResult("i9", 300.0, 90.0, low=50.0, high=150.0))  # outside its range
    rows.append(ItemResult("c", 100.0, 90.0, low=1.0, high=2.0, calibrated_on=True))  # not counted
    ranged = EvaluationResult("ranged", rows, 1.0, Bootstrap(resamples=20), range_coverage=0.8)
    plain = EvaluationResult("plain", [ItemResult("i0", 100.0, 90.0)], 1.0, Bootstrap(resamples=20))
    assert ranged.ranges() == {
        "coverage": 0.8,
        "nominal": 0.8,
        "median_width": 100.0,
        "median_ratio": round(151 / 51, 4),
        "n": 5,
        "excluded_calibration_items": 1,
    }
    table = [line for line in comparison_markdown([ranged, plain]).splitlines() if line.startswith("| ")]
    assert "range coverage" in table[0] and "range width" in table[0]
    assert "| 80.0% (80%) | $100 |" in next(line for line in table if "`ranged`" in line)
    assert "| - | - |" in next(line for line in table if "`plain`" in line)


# item-dependent ranges ------------------------------------------------------------------------


def hard_and_easy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, Evidence]:
    """Prices whose log error grows as the top similarity falls and the comparables disagree,
    biased low (every strategy here is)."""
    rng = np.random.default_rng(seed)
    top = rng.uniform(0.3, 0.95, n)
    spread = rng.uniform(0.1, 1.2, n)
    scale = 0.08 + 0.4 * spread + 1.2 * (1 - top)
    error = 0.2 + scale * rng.gumbel(0.0, 0.6, n)
    truth = np.exp(rng.uniform(1, 7, n))
    return truth, truth * np.exp(-error), Evidence(top, spread)


def coverage_by_third(truth: np.ndarray, low: np.ndarray, high: np.ndarray, evidence: Evidence) -> list[float]:
    inside = (truth >= low) & (truth <= high)
    order = np.argsort(evidence.top_similarity)
    return [float(inside[rows].mean()) for rows in np.array_split(order, 3)]


@pytest.mark.parametrize("method", ["mondrian", "mondrian-normalised", "mondrian-glm"])
def test_item_dependent_ranges_hold_their_coverage_in_each_third_by_similarity(method: str) -> None:
    truth, estimate, evidence = hard_and_easy(3000, seed=11)
    calibration = RangeCalibration.fit("s", truth, estimate, coverage=0.8, evidence=evidence, method=method)
    assert calibration.method == method and len(calibration.bins) == 3 and len(calibration.edges) == 2
    new_truth, new_estimate, new_evidence = hard_and_easy(60_000, seed=12)
    low, high = calibration.bounds(new_estimate, new_evidence)
    for share in coverage_by_third(new_truth, low, high, new_evidence):
        assert 0.78 <= share <= 0.83
    # one global width misses the hard third and wastes width on the easy one
    plain_low, plain_high = calibration.bounds(new_estimate)
    global_thirds = coverage_by_third(new_truth, plain_low, plain_high, new_evidence)
    assert global_thirds[0] < 0.75 and global_thirds[2] > 0.85
    # and the easiest third's range is narrower than the hardest third's
    ratio = high / low
    order = np.argsort(new_evidence.top_similarity)
    assert np.median(ratio[order[-1000:]]) < np.median(ratio[order[:1000]])


def test_normalised_ranges_widen_with_the_spread_and_the_dissimilarity() -> None:
    truth, estimate, evidence = hard_and_easy(2000, seed=13)
    calibration = RangeCalibration.fit("s", truth, estimate, evidence=evidence, method="normalised")
    assert calibration.scale is not None and calibration.scale.spread > 0 and calibration.scale.dissimilarity > 0
    near = Evidence(np.array([0.95]), np.array([0.1]))
    far = Evidence(np.array([0.35]), np.array([1.1]))
    near_low, near_high = calibration.bounds(100.0, near)
    far_low, far_high = calibration.bounds(100.0, far)
    assert far_high / far_low > 2 * (near_high / near_low)
    # the tails stay apart: biased-low estimates get a range reaching further up than down
    assert near_high[0] / 100 > 100 / near_low[0]


def test_cross_fitted_coverage_reports_each_third_and_item_ranges_are_narrower() -> None:
    truth, estimate, evidence = hard_and_easy(600, seed=14)
    plain = cross_fitted_coverage(truth, estimate, 0.8, folds=5, seed=0, evidence=evidence, method="global")
    dependent = cross_fitted_coverage(truth, estimate, 0.8, folds=5, seed=0, evidence=evidence)
    assert len(dependent.by_third) == 3 and dependent.method == "mondrian-glm"
    assert all(0.72 <= c <= 0.88 for c in dependent.by_third)
    assert dependent.median_ratio < plain.median_ratio
    assert dependent.as_dict()["by_similarity_third"] == [round(c, 4) for c in dependent.by_third]


def test_small_calibration_sets_use_fewer_bins() -> None:
    truth, estimate, evidence = hard_and_easy(40, seed=15)
    calibration = RangeCalibration.fit("s", truth, estimate, evidence=evidence)
    assert len(calibration.bins) == 1 and calibration.edges == []


def test_an_item_dependent_calibration_round_trips_and_format_1_still_loads(tmp_path: Path) -> None:
    truth, estimate, evidence = hard_and_easy(300, seed=16)
    saved = RangeCalibration.fit("knn", truth, estimate, ids=["a"], evidence=evidence)
    path = saved.save(tmp_path)
    data = json.loads(path.read_text())
    assert data["format"] == 3 and data["method"] == "mondrian-glm" and len(data["bins"]) == 3
    loaded = RangeCalibration.load(tmp_path, "knn")
    assert loaded == saved
    assert np.allclose(
        loaded.bounds(np.array([50.0]), evidence.take([0])), saved.bounds(np.array([50.0]), evidence.take([0]))
    )
    old = {"format": 1, "strategy": "knn", "coverage": 0.8, "q_low": -0.5, "q_high": 0.75, "n": 200}
    path.write_text(json.dumps(old))
    legacy = RangeCalibration.load(tmp_path, "knn")
    assert legacy is not None and legacy.method == "global"
    assert legacy.bounds(10.0, evidence.take([0]))[1] == pytest.approx(10 * np.exp(0.75))


@pytest.mark.parametrize(
    "change",
    [
        {"bins": [{"q_low": 0.5, "q_high": -0.5, "n": 10}]},
        {"centre": [0.1]},
        {"edges": [0.5, 0.6]},
        {"method": "magic"},
        {"scale": {"intercept": 1.0}},
        {"format": 4},
        {"scale": {"intercept": 1.0, "spread": 0.0, "dissimilarity": 0.0, "link": "magic"}},
        {"held_within": {"log_estimate": [5.0, 1.0], "top_similarity": [0.3, 0.9], "log_spread": [0.1, 1.0]}},
        {"held_within": {"log_estimate": [1.0, 5.0]}},
        {"held_within": [1.0, 5.0]},
    ],
)
def test_a_damaged_item_dependent_file_says_to_recalibrate(tmp_path: Path, change: dict) -> None:
    truth, estimate, evidence = hard_and_easy(300, seed=17)
    path = RangeCalibration.fit("knn", truth, estimate, evidence=evidence, method="normalised").save(tmp_path)
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(CalibrationError, match="recalibrate with `rag-pricer calibrate`"):
        RangeCalibration.load(tmp_path, "knn")


class Shown(Pricer):
    """Prices at 100 and shows the comparables it is given (or none)."""

    def __init__(self, comparables: list[Comparable]) -> None:
        self.comparables = comparables

    def _estimate_many(self, queries: list[Query]) -> list[Estimate]:
        return [Estimate(100.0, self.name, comparables=list(self.comparables)) for _ in queries]


def test_a_pricer_s_range_follows_its_comparables_or_falls_back_to_the_global_one() -> None:
    truth, estimate, evidence = hard_and_easy(1500, seed=18)
    calibration = RangeCalibration.fit("s", truth, estimate, evidence=evidence)
    close = [Comparable("a", "drill", 99.0, 0.93), Comparable("b", "drill kit", 105.0, 0.9)]
    far = [Comparable("c", "cable", 9.0, 0.36), Comparable("d", "amplifier", 400.0, 0.33)]
    widths = {}
    for name, shown in (("close", close), ("far", far), ("none", [])):
        pricer = Shown(shown)
        pricer.calibration = calibration
        found = pricer.estimate("a thing")
        assert found.low is not None and found.high is not None and 0 < found.low < found.high
        widths[name] = found.high / found.low
    assert widths["close"] < widths["none"] < widths["far"]
    assert widths["none"] == pytest.approx(np.exp(calibration.q_high - calibration.q_low))


# ranges whose scale reads the price level too (mondrian-glm) -----------------------------------


def price_dependent(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, Evidence, np.ndarray]:
    """Biased-low estimates whose log error's scale is known: it grows with the spread and the
    dissimilarity and shrinks as the estimate gets dearer (cheap estimates miss by more in
    proportion), ``exp(-1.9 + 0.8 * spread + 1.5 * (1 - top) - 0.25 * log(estimate))``.
    Returns truth, estimates, evidence and that true scale."""
    rng = np.random.default_rng(seed)
    top, spread = rng.uniform(0.3, 0.95, n), rng.uniform(0.1, 1.2, n)
    log_estimate = rng.uniform(1, 7, n)
    scale = np.exp(-1.9 + 0.8 * spread + 1.5 * (1 - top) - 0.25 * log_estimate)
    error = 0.2 + scale * (rng.gumbel(0.0, 1.0, n) - np.euler_gamma)  # skewed, of mean 0.2 whatever the scale
    return np.exp(log_estimate + error), np.exp(log_estimate), Evidence(top, spread), scale


def thirds_by(values: np.ndarray, inside: np.ndarray) -> list[float]:
    return [float(inside[rows].mean()) for rows in np.array_split(np.argsort(values), 3)]


def test_a_log_link_scale_recovers_the_known_scale_and_holds_coverage_by_similarity_and_by_price() -> None:
    truth, estimate, evidence, _ = price_dependent(4000, seed=21)
    glm = RangeCalibration.fit("s", truth, estimate, evidence=evidence, method="mondrian-glm")
    linear = RangeCalibration.fit("s", truth, estimate, evidence=evidence, method="mondrian-normalised")
    assert glm.scale is not None and glm.scale.link == "log"
    # the fitted scale is proportional to the true one: same slopes (the intercept absorbs E|gumbel|)
    assert glm.scale.spread == pytest.approx(0.8, abs=0.15)
    assert glm.scale.dissimilarity == pytest.approx(1.5, abs=0.25)
    assert glm.scale.log_estimate == pytest.approx(-0.25, abs=0.05)
    new_truth, new_estimate, new_evidence, new_scale = price_dependent(60_000, seed=22)
    low, high = glm.bounds(new_estimate, new_evidence)
    inside = (new_truth >= low) & (new_truth <= high)
    assert 0.79 <= inside.mean() <= 0.82
    for share in [*thirds_by(new_evidence.top_similarity, inside), *thirds_by(new_estimate, inside)]:
        assert 0.77 <= share <= 0.83
    # a scale blind to the price level over-covers dear items and under-covers cheap ones ...
    old_low, old_high = linear.bounds(new_estimate, new_evidence)
    by_price = thirds_by(new_estimate, (new_truth >= old_low) & (new_truth <= old_high))
    assert by_price[0] < 0.77 and by_price[2] > 0.83
    # ... and pays for it in dollars: the log link's median width is narrower at the same coverage
    assert np.median(high - low) < 0.95 * np.median(old_high - old_low)
    # the log link's width tracks the oracle's: log(high / low) is the true scale times one constant
    width = np.log(high / low) / new_scale
    assert np.std(width) / np.mean(width) < 0.1


def test_a_log_link_range_does_not_extrapolate_beyond_the_calibration_items() -> None:
    truth, estimate, evidence, _ = price_dependent(1000, seed=23)
    calibration = RangeCalibration.fit("s", truth, estimate, evidence=evidence, method="mondrian-glm")
    lowest, highest = calibration.held_within["log_estimate"]
    assert lowest == pytest.approx(np.log(estimate).min()) and highest == pytest.approx(np.log(estimate).max())
    assert calibration.held_within["top_similarity"][0] == pytest.approx(evidence.top_similarity.min())
    one = evidence.take([0])
    at_edge, far_beyond = np.exp(highest), np.exp(highest) * 1000
    edge_low, edge_high = calibration.bounds(at_edge, one)
    far_low, far_high = calibration.bounds(far_beyond, one)
    # beyond the dearest calibration estimate the range keeps the edge's proportions
    assert far_high / far_low == pytest.approx(edge_high / edge_low)
    assert far_low / far_beyond == pytest.approx(edge_low / at_edge)
    cheap_low, cheap_high = calibration.bounds(0.01, one)
    assert np.isfinite(cheap_high) and 0 < cheap_low < 0.01 < cheap_high
    # a text less similar to anything than every calibration item ("hello world") gets the scale of
    # the least similar one, with the most spread seen: wide, but not exponentially wider
    least = float(evidence.top_similarity.min())
    most_spread = float(evidence.log_spread.max())
    edge = calibration.bounds(100.0, Evidence(np.array([least]), np.array([most_spread])))
    beyond = calibration.bounds(100.0, Evidence(np.array([0.05]), np.array([5.0])))
    assert beyond[1] / beyond[0] == pytest.approx(edge[1] / edge[0])


def test_a_log_link_scale_of_errors_all_at_their_centre_is_the_narrowest() -> None:
    _, estimate, evidence, _ = price_dependent(200, seed=24)
    calibration = RangeCalibration.fit("s", estimate * 2, estimate, evidence=evidence, method="mondrian-glm")
    low, high = calibration.bounds(estimate, evidence)
    assert np.allclose(low, 2 * estimate) and np.allclose(high, 2 * estimate)


#: a calibration as format 2 saved it (``mondrian-normalised``, linear scale, no price range)
FORMAT_2 = {
    "format": 2,
    "strategy": "ensemble",
    "coverage": 0.8,
    "q_low": -0.84,
    "q_high": 0.82,
    "n": 500,
    "ids": ["a"],
    "source": "out-of-fold median estimates",
    "cross_fitted": {"coverage": 0.806},
    "method": "mondrian-normalised",
    "edges": [0.5934, 0.7028],
    "bins": [
        {"q_low": -1.51, "q_high": 1.56, "n": 167},
        {"q_low": -1.65, "q_high": 1.75, "n": 166},
        {"q_low": -1.50, "q_high": 1.83, "n": 167},
    ],
    "scale": {"intercept": 0.22, "spread": 0.22, "dissimilarity": 0.38},
    "centre": [0.08, -0.025],
}


def test_a_format_2_calibration_still_loads_and_gives_the_ranges_it_gave(tmp_path: Path) -> None:
    path = calibration_path(tmp_path, "ensemble")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(FORMAT_2))
    loaded = RangeCalibration.load(tmp_path, "ensemble")
    assert loaded is not None and loaded.method == "mondrian-normalised" and loaded.held_within == {}
    assert loaded.scale is not None and loaded.scale.link == "identity" and loaded.scale.log_estimate == 0.0
    evidence = Evidence(np.array([0.65, 0.8]), np.array([0.4, 0.9]))
    prices = np.array([50.0, 20_000.0])  # the second far beyond any calibration price: format 2 did not hold it
    low, high = loaded.bounds(prices, evidence)
    for row, third in ((0, 1), (1, 2)):
        scale = 0.22 + 0.22 * evidence.log_spread[row] + 0.38 * (1 - evidence.top_similarity[row])
        centre = 0.08 - 0.025 * np.log(prices[row])
        bins = FORMAT_2["bins"]
        assert low[row] == pytest.approx(prices[row] * np.exp(centre + scale * bins[third]["q_low"]))
        assert high[row] == pytest.approx(prices[row] * np.exp(centre + scale * bins[third]["q_high"]))
    # saved again, it is written as the current format and reads back the same
    loaded.save(tmp_path)
    assert json.loads(path.read_text())["format"] == 3 and RangeCalibration.load(tmp_path, "ensemble") == loaded
