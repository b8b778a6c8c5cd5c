"""Decodings of the fine-tuned model side by side on the same items: greedy, expectation, median,
and the base model alone through the same prompt and decoder (what fine-tuning added).

Every variant is the ``finetuned`` strategy built from the registry, so guard and fallbacks are
those users get. Variants of one model share its distributions (``Resources.price_model``): the
model reads each description once per model, not once per decoding. Paired differences of the
absolute error against greedy decoding come with a bootstrap 95% interval over items.

    python scripts/compare_decodings.py --items ../shared/data/items.jsonl.gz --split dev --limit 500 \\
        --run var/models/finetuned --out var/decodings

Per-item rows are checkpointed (``OUT/NAME.jsonl``): a rerun resumes and prices only what is
missing, so variants can be added to an earlier run's folder.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rag_pricer.api import Estimator
from rag_pricer.evaluation import Bootstrap, EvaluationResult
from rag_pricer.evaluation.metrics import mae
from rag_pricer.evaluation.paired import paired_differences, scored_variant
from rag_pricer.evaluation.report import comparison_markdown
from rag_pricer.items import read_items
from rag_pricer.settings import Settings

VARIANTS = {
    "finetuned-greedy": {"decoding": "greedy"},
    "finetuned-expectation": {"decoding": "expectation"},
    "finetuned-median": {"decoding": "median"},
    "base-greedy": {"decoding": "greedy", "adapter": False},
    "base-expectation": {"decoding": "expectation", "adapter": False},
}


def paired_difference(
    a: EvaluationResult, b: EvaluationResult, resamples: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Mean of |error of a| - |error of b| over the items both scored, with a 95% interval."""
    n, found = paired_differences(a, b, {"abs_error": mae}, Bootstrap(resamples, seed=seed))
    d = found["abs_error"]
    return {"mean": d.value, "low": d.low, "high": d.high, "n": n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=Path, required=True)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--run", type=Path, default=Path("var/models/finetuned"))
    parser.add_argument("--out", type=Path, default=Path("var/decodings"))
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from: " + ", ".join(VARIANTS))
    args = parser.parse_args()

    items = read_items(args.items, split=args.split, limit=args.limit)
    args.out.mkdir(parents=True, exist_ok=True)
    estimator = Estimator.from_settings(Settings())
    results: dict[str, EvaluationResult] = {}
    for name in args.variants.split(","):
        options = {"run": str(args.run), **VARIANTS[name]}
        pricer = estimator.pricer("finetuned", **options)
        pricer.name = name
        results[name] = scored_variant(pricer, items, args.out, options)

    report = comparison_markdown(
        list(results.values()),
        title=f"Decodings on {args.split} ({len(items)} items)",
        description=f"Fine-tuned run: `{args.run}`. Seconds of variants after the first of a model are "
        "near zero: they reuse its distributions.",
    )
    differences: dict[str, dict[str, float]] = {}
    if "finetuned-greedy" in results:
        lines = [
            "",
            "## Paired difference of absolute error vs finetuned-greedy (negative: better than greedy)",
            "",
            "| variant | mean $ | 95% CI | n |",
            "|---|---:|---:|---:|",
        ]
        for name, result in results.items():
            if name != "finetuned-greedy":
                d = differences[name] = paired_difference(result, results["finetuned-greedy"])
                lines.append(f"| `{name}` | {d['mean']:+.2f} | {d['low']:+.2f} – {d['high']:+.2f} | {d['n']} |")
        report += "\n".join(lines) + "\n"
    pairs = [(name, "base-" + name.removeprefix("finetuned-")) for name in results if name.startswith("finetuned-")]
    pairs = [(tuned, base) for tuned, base in pairs if base in results]
    if pairs:
        lines = [
            "",
            "## What fine-tuning added: paired difference of absolute error vs the base model, same decoding",
            "",
            "| variant | vs | mean $ | 95% CI | n |",
            "|---|---|---:|---:|---:|",
        ]
        for tuned, base in pairs:
            d = differences[f"{tuned} vs {base}"] = paired_difference(results[tuned], results[base])
            lines.append(f"| `{tuned}` | `{base}` | {d['mean']:+.2f} | {d['low']:+.2f} – {d['high']:+.2f} | {d['n']} |")
        report += "\n".join(lines) + "\n"
    (args.out / "decodings.md").write_text(report)
    (args.out / "differences.json").write_text(json.dumps(differences, indent=1) + "\n")
    print(report)


if __name__ == "__main__":
    main()
