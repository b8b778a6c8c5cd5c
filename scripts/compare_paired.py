"""Strategies scored on the same items, with paired bootstrap differences against references.

Each variant is ``NAME=STRATEGY[:OPTION=VALUE,...]`` built from the registry (guard, fallbacks and
leak refusal are those users get). For every variant and every reference, the script reports the
mean difference of absolute error and of hit rate over the items both scored, with a bootstrap
95% interval over items (pairs resampled together: the items' difficulty cancels out).

    python scripts/compare_paired.py --items ../shared/data/items.jsonl.gz --split dev --limit 500 \\
        --variant knn=knn --variant boosting=boosting \\
        --variant rag-ft-median=rag-finetuned:decoding=median --reference knn --reference boosting \\
        --out var/rag-finetuned-dev

Per-item rows are checkpointed (``OUT/NAME.jsonl``): a rerun resumes and prices only what is missing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rag_pricer.api import Estimator
from rag_pricer.cli.common import parse_options
from rag_pricer.evaluation import Bootstrap, EvaluationResult
from rag_pricer.evaluation.metrics import hit_rate, mae
from rag_pricer.evaluation.paired import paired_differences, scored_variant
from rag_pricer.evaluation.report import comparison_markdown
from rag_pricer.items import read_items
from rag_pricer.settings import Settings


def parse_variant(text: str) -> tuple[str, str, dict[str, Any]]:
    name, _, spec = text.partition("=")
    strategy, _, options = spec.partition(":")
    if not name or not strategy:
        raise SystemExit(f"a variant is NAME=STRATEGY[:OPTION=VALUE,...], not {text!r}")
    return name, strategy, parse_options([o for o in options.split(",") if o])


def paired(a: EvaluationResult, b: EvaluationResult, resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Mean differences (a - b) of absolute error and hit rate, with bootstrap 95% intervals."""
    n, found = paired_differences(a, b, {"abs_error": mae, "hit": hit_rate}, Bootstrap(resamples, seed=seed))
    return {"n": n, **{key: {"mean": d.value, "low": d.low, "high": d.high} for key, d in found.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=Path, required=True)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--variant", action="append", required=True, help="NAME=STRATEGY[:OPTION=VALUE,...]")
    parser.add_argument("--reference", action="append", default=[], help="a variant NAME the others are paired against")
    parser.add_argument("--out", type=Path, default=Path("var/paired"))
    args = parser.parse_args()

    items = read_items(args.items, split=args.split, limit=args.limit)
    args.out.mkdir(parents=True, exist_ok=True)
    estimator = Estimator.from_settings(Settings())
    results: dict[str, EvaluationResult] = {}
    for name, strategy, options in map(parse_variant, args.variant):
        pricer = estimator.pricer(strategy, **options)
        pricer.name = name
        results[name] = scored_variant(pricer, items, args.out, {"strategy": strategy, **options})

    report = comparison_markdown(
        list(results.values()), title=f"{args.split}: {len(items)} items", description=" ".join(args.variant)
    )
    differences: dict[str, Any] = {}
    for reference in args.reference:
        lines = [
            "",
            f"## Paired differences vs `{reference}` (variant minus reference; negative error / positive hit: better)",
            "",
            "| variant | MAE diff $ | 95% CI | hit-rate diff | 95% CI | n |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, result in results.items():
            if name == reference:
                continue
            d = differences[f"{name} vs {reference}"] = paired(result, results[reference])
            e, h = d["abs_error"], d["hit"]
            lines.append(
                f"| `{name}` | {e['mean']:+.2f} | {e['low']:+.2f} – {e['high']:+.2f} | {h['mean']:+.1%} | "
                f"{h['low']:+.1%} – {h['high']:+.1%} | {d['n']} |"
            )
        report += "\n".join(lines) + "\n"
    (args.out / "paired.md").write_text(report)
    (args.out / "differences.json").write_text(json.dumps(differences, indent=1) + "\n")
    print(report)


if __name__ == "__main__":
    main()
