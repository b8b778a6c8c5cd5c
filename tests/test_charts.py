"""Charts: files are real PNGs of the expected size, and what is drawn matches the data."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from rag_pricer.evaluation.bootstrap import Bootstrap
from rag_pricer.evaluation.charts import (
    GRADE_COLOURS,
    comparison_chart,
    dashboard,
    draw_error_by_band,
    draw_error_by_category,
    draw_running_error,
    draw_scatter,
    headline,
)
from rag_pricer.evaluation.results import EvaluationResult, ItemResult
from rag_pricer.items import Item

FAST = Bootstrap(resamples=100)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def result(dev_items: list[Item]) -> EvaluationResult:
    """Real dev items with estimates off by a seeded log-normal factor, one failed item."""
    rng = np.random.default_rng(0)
    rows = [
        ItemResult(i.id, i.price, float(i.price * np.exp(rng.normal(0, 0.5))), category=i.category) for i in dev_items
    ]
    rows[3] = ItemResult(rows[3].id, rows[3].truth, category=rows[3].category, error="RuntimeError: boom")
    return EvaluationResult("demo", rows, seconds=2.0, bootstrap=FAST)


def test_dashboard_is_a_non_trivial_png(result: EvaluationResult, tmp_path: Path) -> None:
    path = dashboard(result, tmp_path / "charts" / "demo.png")
    assert png_size(path) == (1500, 1200)
    assert path.stat().st_size > 50_000  # four drawn panels, not a blank canvas


def test_comparison_chart_is_a_png(result: EvaluationResult, tmp_path: Path) -> None:
    worse = EvaluationResult(
        "worse", [ItemResult(r.id, r.truth, r.truth * 3) for r in result.rows], seconds=1.0, bootstrap=FAST
    )
    path = comparison_chart([worse, result], tmp_path / "comparison.png")
    width, height = png_size(path)
    assert width == 1200 and height > 100 and path.stat().st_size > 10_000


def test_headline_names_strategy_and_metrics(result: EvaluationResult) -> None:
    text = headline(result)
    assert text.startswith("demo: MAE $") and "RMSLE" in text and "hit" in text
    assert f"${result.value('mae'):,.2f}" in text and f"n={result.n}" in text and "1 failed" in text


def test_scatter_colours_follow_the_grades(result: EvaluationResult) -> None:
    ax = Figure().subplots()
    draw_scatter(ax, result)
    assert ax.get_title() == headline(result)
    counts = {}
    for collection in ax.collections:
        colours = collection.get_facecolor()
        if len(colours):
            counts[to_hex(colours[0])] = counts.get(to_hex(colours[0]), 0) + len(collection.get_offsets())
    truth = np.array([r.truth for r in result.scored])
    error = np.abs(np.array([r.estimate for r in result.scored]) - truth)
    good = (error < 40) | (error < 0.2 * truth)
    fair = ~good & ((error < 80) | (error < 0.4 * truth))
    assert counts.get(GRADE_COLOURS[0], 0) == good.sum()
    assert counts.get(GRADE_COLOURS[1], 0) == fair.sum()
    assert counts.get(GRADE_COLOURS[2], 0) == (~good & ~fair).sum()
    # the y = x line is there
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == list(line.get_ydata())


def test_running_error_ends_at_the_mae(result: EvaluationResult) -> None:
    ax = Figure().subplots()
    draw_running_error(ax, result)
    running = ax.get_lines()[0].get_ydata()
    assert len(running) == result.n
    assert running[-1] == pytest.approx(result.value("mae"))
    assert running[0] == pytest.approx(abs(result.scored[0].estimate - result.scored[0].truth))


def test_band_and_category_bars(result: EvaluationResult) -> None:
    ax = Figure().subplots()
    draw_error_by_band(ax, result)
    assert len(ax.patches) == 6  # one bar per price band
    ax = Figure().subplots()
    draw_error_by_category(ax, result)
    categories = {r.category or "(none)" for r in result.scored}
    assert len(ax.patches) == min(len(categories), 10)
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    assert all("n=" in label for label in labels)


def test_tiny_and_empty_results(tmp_path: Path) -> None:
    one = EvaluationResult("one", [ItemResult("a", 10.0, 12.0)], seconds=0.1, bootstrap=FAST)
    assert png_size(dashboard(one, tmp_path / "one.png")) == (1500, 1200)
    none = EvaluationResult("none", [ItemResult("a", 10.0, error="boom")], seconds=0.1, bootstrap=FAST)
    with pytest.raises(ValueError, match="no item"):
        dashboard(none, tmp_path / "none.png")
    with pytest.raises(ValueError):
        comparison_chart([none], tmp_path / "none-cmp.png")
