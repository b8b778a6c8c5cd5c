"""Charts of evaluation results (matplotlib, drawn off-screen).

Each ``draw_*`` function draws one chart on a matplotlib ``Axes``; ``dashboard`` puts the four
of one run on one PNG and ``comparison_chart`` sets several runs side by side. Figures are
built with ``matplotlib.figure.Figure`` (not pyplot): no GUI backend and no global state,
so charts can be drawn from any thread.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rag_pricer.evaluation.bootstrap import Bootstrap
from rag_pricer.evaluation.metrics import HIT_DOLLARS, HIT_SHARE, grades, hit_rate, mae
from rag_pricer.evaluation.results import EvaluationResult

GRADE_COLOURS = ("#2ca02c", "#ff7f0e", "#d62728")
GRADE_LABELS = (
    f"good: < ${HIT_DOLLARS:.0f} or < {HIT_SHARE:.0%}",
    f"fair: < ${2 * HIT_DOLLARS:.0f} or < {2 * HIT_SHARE:.0%}",
    "poor",
)
#: upper edges of the price bands of ``draw_error_by_band``
BAND_EDGES = (25.0, 50.0, 100.0, 250.0, 500.0, np.inf)
#: intervals of per-group bars need fewer resamples than the headline metrics
GROUP_BOOTSTRAP = Bootstrap(resamples=300)


def headline(result: EvaluationResult) -> str:
    """``knn: MAE $85.12 · RMSLE 0.912 · hit 41.2% (n=500)``"""
    if not result.n:
        return f"{result.strategy}: no item scored ({result.failed} failed)"
    text = (
        f"{result.strategy}: MAE ${result.value('mae'):,.2f} · RMSLE {result.value('rmsle'):.3f} · "
        f"hit {result.value('hit_rate'):.1%} (n={result.n}"
    )
    return text + (f", {result.failed} failed)" if result.failed else ")")


def _arrays(result: EvaluationResult) -> tuple[np.ndarray, np.ndarray]:
    scored = result.scored
    return np.array([r.truth for r in scored], dtype=float), np.array([r.estimate for r in scored], dtype=float)


def draw_scatter(ax: Axes, result: EvaluationResult) -> None:
    """Truth against estimate, coloured by how close each is, with the line of perfect estimates."""
    truth, estimate = _arrays(result)
    # The axes cover the true prices: a few wild estimates would otherwise squash the rest
    # into a corner. Estimates beyond the top are drawn on the edge as triangles.
    top = float(truth.max(initial=1.0)) * 1.1
    ax.plot([0, top], [0, top], color="#1f77b4", linewidth=1.2, label="estimate = truth")
    grade = grades(truth, estimate)
    above = estimate > top
    for level, (colour, label) in enumerate(zip(GRADE_COLOURS, GRADE_LABELS)):
        chosen = grade == level
        ax.scatter(
            truth[chosen & ~above],
            estimate[chosen & ~above],
            s=10,
            color=colour,
            alpha=0.7,
            label=f"{label} ({chosen.sum()})",
        )
        ax.scatter(
            truth[chosen & above],
            np.full((chosen & above).sum(), top * 0.985),
            s=25,
            marker="^",
            color=colour,
            alpha=0.9,
        )
    if above.any():
        ax.scatter([], [], marker="^", color="grey", label=f"estimate above ${top:,.0f} ({above.sum()})")
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="true price ($)", ylabel="estimate ($)", title=headline(result))
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    ax.grid(alpha=0.3)


def draw_running_error(ax: Axes, result: EvaluationResult) -> None:
    """Mean absolute error over the first 1..n items, with a normal-approximation 95% band:
    where it flattens, more items would not change the verdict much."""
    truth, estimate = _arrays(result)
    error = np.abs(estimate - truth)
    count = np.arange(1, len(error) + 1)
    mean = np.cumsum(error) / count
    variance = np.maximum(np.cumsum(error**2) / count - mean**2, 0.0) * count / np.maximum(count - 1, 1)
    half = 1.96 * np.sqrt(variance / count)
    ax.plot(count, mean, color="#1f77b4", label="running MAE")
    ax.fill_between(count[1:], (mean - half)[1:], (mean + half)[1:], color="#1f77b4", alpha=0.2, label="95% band")
    final = result.metrics.get("mae")
    if final:
        ax.axhline(final.value, color="black", linestyle="--", linewidth=1, label=f"final ${final.value:,.2f}")
        ax.axhspan(
            final.low, final.high, color="grey", alpha=0.15, label=f"bootstrap CI ${final.low:,.0f}-{final.high:,.0f}"
        )
    ax.set(
        xlabel="items scored",
        ylabel="mean absolute error ($)",
        title="Running mean absolute error",
        xlim=(1, max(len(error), 2)),
    )
    # The first few items swing wildly; scale to the rest so the settling is visible.
    settled = (mean + half)[min(9, len(mean) - 1) :]
    ax.set_ylim(0, float(np.nanmax(settled)) * 1.15 if np.isfinite(settled).any() and settled.max() > 0 else None)
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)


def _band_labels() -> list[str]:
    labels, low = [], 0.0
    for high in BAND_EDGES:
        labels.append(f"${low:.0f}+" if np.isinf(high) else f"${low:.0f}-{high:.0f}")
        low = high
    return labels


def _grouped_bars(
    ax: Axes, names: list[str], groups: list[np.ndarray], truth: np.ndarray, estimate: np.ndarray, horizontal: bool
) -> None:
    """MAE bars with bootstrap error bars; each group's size and hit rate go in its tick label."""
    values, lows, highs, labels = [], [], [], []
    for name, chosen in zip(names, groups):
        count = int(chosen.sum())
        if count == 0:
            values.append(0.0)
            lows.append(0.0)
            highs.append(0.0)
            labels.append(f"{name}\n(n=0)")
            continue
        interval = GROUP_BOOTSTRAP.interval(mae, truth[chosen], estimate[chosen])
        values.append(interval.value)
        lows.append(interval.value - interval.low)
        highs.append(interval.high - interval.value)
        labels.append(f"{name}\n(n={count}, hit {hit_rate(truth[chosen], estimate[chosen]):.0%})")
    positions = np.arange(len(names))
    ends = np.array(values) + np.array(highs)
    pad = float(ends.max(initial=1.0)) * 0.02
    if horizontal:
        ax.barh(positions, values, xerr=[lows, highs], capsize=3, color="#1f77b4", alpha=0.8)
        ax.set_yticks(positions, labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("mean absolute error ($)")
        for position, value, end in zip(positions, values, ends):
            ax.text(end + pad, float(position), f"${value:,.0f}", va="center", fontsize=8)
        ax.set_xlim(0, float(ends.max(initial=1.0)) * 1.15)
    else:
        ax.bar(positions, values, yerr=[lows, highs], capsize=3, color="#1f77b4", alpha=0.8)
        ax.set_xticks(positions, labels, fontsize=8)
        ax.set_ylabel("mean absolute error ($)")
        for position, value, end in zip(positions, values, ends):
            ax.text(float(position), end + pad, f"${value:,.0f}", ha="center", fontsize=8)
        ax.set_ylim(0, float(ends.max(initial=1.0)) * 1.1)
    ax.grid(alpha=0.3, axis="x" if horizontal else "y")


def draw_error_by_band(ax: Axes, result: EvaluationResult) -> None:
    """MAE by true-price band (bars with 95% bootstrap intervals)."""
    truth, estimate = _arrays(result)
    band = np.searchsorted(np.array(BAND_EDGES), truth, side="right")
    _grouped_bars(ax, _band_labels(), [band == b for b in range(len(BAND_EDGES))], truth, estimate, horizontal=False)
    ax.set(title="Error by true price band", xlabel="true price")


def draw_error_by_category(ax: Axes, result: EvaluationResult, top: int = 10) -> None:
    """MAE of the ``top`` most frequent categories (bars with 95% bootstrap intervals)."""
    truth, estimate = _arrays(result)
    categories = np.array([r.category or "(none)" for r in result.scored], dtype=object)
    names = [name for name, _ in Counter(categories.tolist()).most_common(top)]
    _grouped_bars(ax, names, [categories == name for name in names], truth, estimate, horizontal=True)
    ax.set(title="Error by category")


def dashboard(result: EvaluationResult, path: str | Path) -> Path:
    """The four charts of one run on one PNG."""
    if not result.n:
        raise ValueError(f"{result.strategy}: no item was scored, nothing to chart")
    figure = Figure(figsize=(15, 12), layout="constrained")
    axes = figure.subplots(2, 2)
    draw_scatter(axes[0, 0], result)
    draw_running_error(axes[0, 1], result)
    draw_error_by_band(axes[1, 0], result)
    draw_error_by_category(axes[1, 1], result)
    return _save(figure, path)


def comparison_chart(results: Sequence[EvaluationResult], path: str | Path) -> Path:
    """MAE (with its interval) and hit rate of several runs, best first."""
    ranked = sorted((r for r in results if r.n), key=lambda r: r.value("mae") or np.inf)
    if not ranked:
        raise ValueError("no run scored any item, nothing to chart")
    figure = Figure(figsize=(12, 1.2 + 0.5 * len(ranked)), layout="constrained")
    left, right = figure.subplots(1, 2, sharey=True)
    names = [r.strategy for r in ranked]
    positions = np.arange(len(ranked))
    for ax, metric, label, scale in (
        (left, "mae", "mean absolute error ($)", 1.0),
        (right, "hit_rate", "hit rate (%)", 100.0),
    ):
        values = np.array([r.metrics[metric].value for r in ranked]) * scale
        low = values - np.array([r.metrics[metric].low for r in ranked]) * scale
        high = np.array([r.metrics[metric].high for r in ranked]) * scale - values
        ax.barh(
            positions, values, xerr=[low, high], capsize=3, color="#1f77b4" if metric == "mae" else "#2ca02c", alpha=0.8
        )
        ends = values + high
        for position, value, end in zip(positions, values, ends):
            # after the error bar, not on it
            ax.text(end + ends.max() * 0.02, position, f"{value:,.1f}", va="center", fontsize=8)
        ax.set(xlabel=label)
        ax.set_xlim(0, float(ends.max()) * 1.15 + 1)
        ax.grid(alpha=0.3, axis="x")
    left.set_yticks(positions, names)
    left.invert_yaxis()
    figure.suptitle(f"Strategies on the same {max(len(r.rows) for r in ranked)} items (95% bootstrap intervals)")
    return _save(figure, path)


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path
