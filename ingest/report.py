"""A first look at a curated dataset: summary statistics and the charts a data scientist plots first.

Charts are drawn on ``matplotlib.figure.Figure`` objects saved with the Agg renderer, not with
``pyplot``: no global backend or figure state, safe in servers, threads and tests.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ingest.tokens import TokenBudget
from rag_pricer.items import Item

CHARTS = ("price_histogram.png", "length_vs_price.png", "items_per_category.png", "token_lengths.png")
NONE_LABEL = "(none)"


def _stats(values: Sequence[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return {}
    quantiles = np.percentile(array, [50, 95])
    return {
        "mean": round(float(array.mean()), 2),
        "median": round(float(quantiles[0]), 2),
        "p95": round(float(quantiles[1]), 2),
        "min": round(float(array.min()), 2),
        "max": round(float(array.max()), 2),
    }


@dataclass
class DatasetSummary:
    """Counts and distributions of a curated dataset (token counts of each item's description)."""

    count: int
    price: dict[str, float]
    text_chars: dict[str, float]
    tokens: dict[str, float]
    tokenizer: str
    splits: dict[str, int] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(
        cls, items: Sequence[Item], token_counts: Sequence[int], tokenizer: str, skipped: dict[str, int] | None = None
    ) -> DatasetSummary:
        return cls(
            count=len(items),
            price=_stats([item.price for item in items]),
            text_chars=_stats([len(item.text) for item in items]),
            tokens=_stats(token_counts),
            tokenizer=tokenizer,
            splits=dict(Counter(item.split or NONE_LABEL for item in items).most_common()),
            categories=dict(Counter(item.category or NONE_LABEL for item in items).most_common()),
            skipped=dict(skipped or {}),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        lines = [f"items: {self.count:,}"]
        lines.append("price ($): " + _inline(self.price))
        lines.append("text length (chars): " + _inline(self.text_chars))
        lines.append(f"description tokens ({self.tokenizer}): " + _inline(self.tokens))
        lines.append("splits: " + ", ".join(f"{name} {n:,}" for name, n in self.splits.items()))
        lines.append("categories:")
        lines.extend(f"  {name}: {n:,}" for name, n in self.categories.items())
        if self.skipped:
            lines.append("skipped records: " + ", ".join(f"{reason} {n:,}" for reason, n in self.skipped.items()))
        return "\n".join(lines)


def _inline(stats: dict[str, float]) -> str:
    return ", ".join(f"{key} {value:,g}" for key, value in stats.items()) or "n/a"


@dataclass
class ReportResult:
    """Where the report was written and what it says."""

    summary: DatasetSummary
    summary_path: Path
    charts: list[Path]


class DatasetReport:
    """Writes ``summary.txt`` and the four PNG charts of ``CHARTS`` for a list of items."""

    def __init__(self, budget: TokenBudget | None = None, dpi: int = 110) -> None:
        self.budget = budget or TokenBudget()
        self.dpi = dpi

    def write(self, items: Sequence[Item], out_dir: str | Path, skipped: dict[str, int] | None = None) -> ReportResult:
        if not items:
            raise ValueError("no items to report on")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        tokens = self.budget.counts([item.description for item in items])
        summary = DatasetSummary.of(items, tokens, self.budget.tokenizer_name, skipped)
        summary_path = out / "summary.txt"
        summary_path.write_text(summary.to_text() + "\n", encoding="utf-8")
        (out / "summary.json").write_text(json.dumps(summary.as_dict(), indent=2) + "\n", encoding="utf-8")
        figures = (
            price_histogram(items),
            length_vs_price(items),
            items_per_category(summary.categories),
            token_lengths(tokens, self.budget.tokenizer_name, self.budget.max_tokens),
        )
        charts = [self._save(figure, out / name) for figure, name in zip(figures, CHARTS)]
        return ReportResult(summary, summary_path, charts)

    def _save(self, figure: Figure, path: Path) -> Path:
        figure.savefig(path, dpi=self.dpi)
        return path


def price_histogram(items: Sequence[Item]) -> Figure:
    """Linear bins (where the money is) beside log bins (where most items are: cheap products)."""
    prices = np.array([item.price for item in items])
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    linear, logarithmic = figure.subplots(1, 2)
    linear.hist(prices, bins=np.linspace(0, max(prices.max(), 1), 51), color="#4C72B0", edgecolor="white")
    log_bins = np.geomspace(max(prices.min(), 0.01), max(prices.max(), 1), 51)
    logarithmic.hist(prices, bins=log_bins, color="#4C72B0", edgecolor="white")
    logarithmic.set_xscale("log")
    for axes in (linear, logarithmic):
        for value, label, style in ((prices.mean(), "mean", "--"), (np.median(prices), "median", ":")):
            axes.axvline(value, color="#C44E52", linestyle=style, label=f"{label} ${value:,.2f}")
        axes.set(xlabel="price ($)", ylabel="items")
    linear.set_title("linear scale")
    logarithmic.set_title("log scale")
    linear.legend()
    figure.suptitle(f"Price distribution ({len(prices):,} items)")
    return figure


def length_vs_price(items: Sequence[Item]) -> Figure:
    lengths = [len(item.description) for item in items]
    prices = [item.price for item in items]
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.add_subplot()
    axes.scatter(lengths, prices, s=4, alpha=0.25, color="#4C72B0", linewidths=0)
    axes.set_yscale("log")  # prices span three orders of magnitude
    correlation = np.corrcoef(lengths, np.log(prices))[0, 1] if len(items) > 1 else float("nan")
    axes.set(
        title=f"Description length vs price (corr. with log price {correlation:.2f})",
        xlabel="description length (characters, title + text)",
        ylabel="price ($, log scale)",
    )
    return figure


def items_per_category(categories: dict[str, int]) -> Figure:
    names = list(categories)[::-1]  # largest at the top of a horizontal bar chart
    counts = [categories[name] for name in names]
    figure = Figure(figsize=(8, max(3, 0.4 * len(names) + 1.2)), layout="constrained")
    axes = figure.add_subplot()
    bars = axes.barh(names, counts, color="#55A868")
    axes.bar_label(bars, labels=[f"{n:,}" for n in counts], padding=3, fontsize=8)
    axes.margins(x=0.12)
    axes.set(title="Items per category", xlabel="items")
    return figure


def token_lengths(tokens: Sequence[int], tokenizer: str, budget: int) -> Figure:
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.add_subplot()
    axes.hist(tokens, bins=50, color="#8172B2", edgecolor="white")
    axes.axvline(budget, color="#C44E52", linestyle="--", label=f"curation budget {budget} tokens")
    axes.set(title=f"Description length in tokens ({tokenizer})", xlabel="tokens (title + text)", ylabel="items")
    axes.legend()
    return figure
