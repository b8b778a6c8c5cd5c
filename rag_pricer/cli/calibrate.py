"""``rag-pricer calibrate``: a strategy's conformal price range, from its errors on held-out items,
and the confidence levels, from the retrieval evidence of its estimates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rag_pricer.api import Estimator
from rag_pricer.cli.common import StrategyOpt, console, errors, fail, settings_with
from rag_pricer.cli.evaluate import load_items
from rag_pricer.evaluation import LeakageError
from rag_pricer.pricing.confidence import MIN_ITEMS, ConfidenceLevels
from rag_pricer.pricing.evidence import Evidence
from rag_pricer.pricing.ranges import DEFAULT_METHOD, METHODS, CalibrationError, RangeCalibration
from rag_pricer.pricing.ranges.crossfit import cross_fitted_coverage
from rag_pricer.pricing.registry import UnknownStrategy
from rag_pricer.training.base_table import BaseTable


def calibrate(
    strategy: StrategyOpt = None,
    items: Annotated[
        Path | None, typer.Option("--items", help="Held-out items (default: settings items_path).", dir_okay=False)
    ] = None,
    split: Annotated[str, typer.Option("--split", help="Split of the calibration items.")] = "dev",
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Use only the first N items of the split.")
    ] = None,
    coverage: Annotated[
        float, typer.Option("--coverage", min=0.5, max=0.99, help="Share of true prices the range should hold.")
    ] = 0.8,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Folds of the cross-fitted coverage check.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the folds.")] = 0,
    method: Annotated[
        str, typer.Option("--method", help=f"How the range follows the item: {', '.join(METHODS)}.")
    ] = DEFAULT_METHOD,
    out: Annotated[Path | None, typer.Option("--out", help="Models directory (default: settings models_dir).")] = None,
    cache: Annotated[Path, typer.Option("--cache", help="Cache of the strategy's estimates.")] = Path(
        "var/ensemble-cache"
    ),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the calibration and its cross-fitted coverage as JSON.")
    ] = False,
) -> None:
    """Price ITEMS of SPLIT with STRATEGY, measure the K-fold cross-fitted coverage and width of
    its range, and save the calibration (all items) to OUT/calibration/STRATEGY.json, where
    `estimate`, `evaluate` and `serve` find it. When its estimates show comparables, the
    confidence levels placed on them go to OUT/calibration/confidence.json."""
    if method not in METHODS:
        fail(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
        return
    settings = settings_with(items_path=items, models_dir=out)
    name = strategy or settings.strategy
    scored = load_items(settings.items_path, split, limit)
    try:
        outputs = BaseTable(Estimator.from_settings(settings), cache).outputs(name, scored)
        truth, estimate = [i.price for i in scored], [o.price for o in outputs]
        evidence = Evidence.of([o.signals for o in outputs])
        report = cross_fitted_coverage(truth, estimate, coverage, folds, seed, evidence, method)
        source = f"{settings.items_path.name} split {split}"
        calibration = RangeCalibration.fit(
            name, truth, estimate, [i.id for i in scored], coverage, source, evidence, method
        )
        levels = None
        if evidence is not None and len(evidence) >= MIN_ITEMS:
            levels = ConfidenceLevels.fit(evidence, truth, estimate, name, source)
    except (LeakageError, UnknownStrategy, CalibrationError) as error:
        fail(str(error))
        return
    except (ImportError, OSError, ValueError) as error:
        fail(f"cannot price with {name!r}: {error}")
        return
    calibration.cross_fitted = report.as_dict()
    path = calibration.save(settings.models_dir)
    levels_path = levels.save(settings.models_dir) if levels is not None else None
    if as_json:
        shown = {k: v for k, v in calibration.to_dict().items() if k != "ids"}
        confidence = None if levels is None else {**levels.to_dict(), "path": str(levels_path)}
        typer.echo(json.dumps({**shown, "path": str(path), "confidence": confidence}, indent=2))
        return
    thirds = ", ".join(f"{c:.1%}" for c in report.by_third)
    console.print(
        f"{name}: {coverage:.0%} range ({report.method}) from {calibration.n} items; cross-fitted ({folds} folds): "
        f"coverage {report.coverage:.1%}"
        + (f" (by similarity third, least similar first: {thirds})" if thirds else "")
        + f", median width ${report.median_width:,.2f} (high/low {report.median_ratio:.2f})"
    )
    if levels is not None:
        console.print(
            f"confidence: low below top similarity {levels.low_below:.3f}, high from {levels.high_from:.3f}; "
            + ", ".join(f"{k} {v['n']} items MAE ${v['mae']:,.2f}" for k, v in levels.measured.items())
        )
    else:
        why = f"{name}'s estimates show no comparables" if evidence is None else f"fewer than {MIN_ITEMS} items"
        console.print(f"confidence: {why}: no levels placed (the saved or built-in ones stay)")
    errors.print(f"saved {path}" + (f" and {levels_path}" if levels_path else ""))
