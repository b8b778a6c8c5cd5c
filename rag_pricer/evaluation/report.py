"""The markdown report of a comparison: one row per strategy, best MAE first."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from rag_pricer.evaluation.metrics import format_value
from rag_pricer.evaluation.results import EvaluationResult


def ranked(results: Sequence[EvaluationResult]) -> list[EvaluationResult]:
    """Sorted by MAE, lowest first; runs that scored nothing come last."""
    return sorted(results, key=lambda r: (r.value("mae") is None, r.value("mae") or math.inf, r.strategy))


def _with_ci(result: EvaluationResult, metric: str) -> tuple[str, str]:
    interval = result.metrics.get(metric)
    if interval is None:
        return "-", "-"
    return format_value(
        metric, interval.value
    ), f"{format_value(metric, interval.low)} – {format_value(metric, interval.high)}"


def _ranges(result: EvaluationResult) -> tuple[str, str]:
    ranges = result.ranges()
    if not ranges or not ranges["n"]:
        return "-", "-"
    return f"{ranges['coverage']:.1%} ({ranges['nominal']:.0%})", f"${ranges['median_width']:,.0f}"


def llms_used(results: Sequence[EvaluationResult]) -> dict[str, list[str]]:
    """The LLMs asked, each with the strategies that asked it: ``{"local (SmolLM2-..., llama-cpp)": ["rag", ...]}``."""
    asked: dict[str, list[str]] = {}
    for result in results:
        if result.llm:
            described = result.llm.get("description") or result.llm.get("spec") or "an unnamed LLM"
            asked.setdefault(str(described), []).append(result.strategy)
    return asked


def _llm_lines(results: Sequence[EvaluationResult]) -> list[str]:
    asked = llms_used(results)
    if not asked:
        return []
    lines = [f"- {', '.join(f'`{name}`' for name in names)}: {described}" for described, names in asked.items()]
    return ["", "## LLM", "", *lines]


def comparison_markdown(
    results: Sequence[EvaluationResult],
    skipped: Mapping[str, str] | None = None,
    title: str = "Strategy comparison",
    description: str = "",
) -> str:
    """A markdown document: the table, what each column means, and the strategies left out."""
    confidence = f"{results[0].bootstrap.confidence:.0%}" if results else "95%"
    lines = [f"# {title}", ""]
    if description:
        lines += [description, ""]
    header = [
        "#",
        "strategy",
        "MAE",
        f"MAE {confidence} CI",
        "hit rate",
        f"hit rate {confidence} CI",
        "RMSLE",
        f"RMSLE {confidence} CI",
        "within 20%",
        "bias",
        "range coverage",
        "range width",
        "n",
        "failed",
        "fallbacks",
        "seconds",
    ]
    lines += [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if h not in ("strategy",) else "---" for h in header) + "|",
    ]
    for rank, result in enumerate(ranked(results), start=1):
        mae, mae_ci = _with_ci(result, "mae")
        hit, hit_ci = _with_ci(result, "hit_rate")
        rmsle, rmsle_ci = _with_ci(result, "rmsle")
        cells = [
            str(rank),
            f"`{result.strategy}`",
            mae,
            mae_ci,
            hit,
            hit_ci,
            rmsle,
            rmsle_ci,
            _with_ci(result, "within_20")[0],
            _with_ci(result, "bias")[0],
            *_ranges(result),
            str(result.n),
            str(result.failed),
            str(result.fallbacks),
            f"{result.seconds:,.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"MAE: mean absolute error in dollars. Hit: off by less than $40 or less than 20% of the true price. "
        f"RMSLE: root mean squared log error. Bias: mean of estimate - truth. Intervals: {confidence} percentile "
        "bootstrap over items. Failed items (no estimate) are left out of the metrics; fallbacks are estimates "
        "produced by a fallback method (e.g. the LLM gave no usable number). Range coverage: share of true prices "
        "inside the strategy's calibrated range (its stated coverage in brackets), on the items it was not "
        "calibrated on; width: the median of high - low ('-': not calibrated, or calibrated on these very items).",
    ]
    lines += _llm_lines(results)
    if skipped:
        lines += ["", "## Not run", ""] + [f"- `{name}`: {reason}" for name, reason in sorted(skipped.items())]
    return "\n".join(lines) + "\n"
