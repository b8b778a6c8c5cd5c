"""``rag-pricer calibrate``: a strategy's conformal price range, from its errors on held-out items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rag_pricer.api import Estimator
from rag_pricer.cli.common import StrategyOpt, console, errors, fail, settings_with
from rag_pricer.cli.evaluate import load_items
from rag_pricer.evaluation import LeakageError
from rag_pricer.pricing.ranges import CalibrationError, RangeCalibration
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
    `estimate`, `evaluate` and `serve` find it."""
    settings = settings_with(items_path=items, models_dir=out)
    name = strategy or settings.strategy
    scored = load_items(settings.items_path, split, limit)
    try:
        outputs = BaseTable(Estimator.from_settings(settings), cache).outputs(name, scored)
        truth, estimate = [i.price for i in scored], [o.price for o in outputs]
        report = cross_fitted_coverage(truth, estimate, coverage, folds, seed)
        source = f"{settings.items_path.name} split {split}"
        calibration = RangeCalibration.fit(name, truth, estimate, [i.id for i in scored], coverage, source=source)
    except (LeakageError, UnknownStrategy, CalibrationError) as error:
        fail(str(error))
        return
    except (ImportError, OSError, ValueError) as error:
        fail(f"cannot price with {name!r}: {error}")
        return
    calibration.cross_fitted = report.as_dict()
    path = calibration.save(settings.models_dir)
    if as_json:
        typer.echo(
            json.dumps({**{k: v for k, v in calibration.to_dict().items() if k != "ids"}, "path": str(path)}, indent=2)
        )
        return
    console.print(
        f"{name}: {coverage:.0%} range = estimate x [{calibration.bounds(1.0)[0]:.3f}, "
        f"{calibration.bounds(1.0)[1]:.3f}] "
        f"from {calibration.n} items; cross-fitted ({folds} folds): coverage {report.coverage:.1%}, "
        f"median width ${report.median_width:,.2f} (high/low {report.median_ratio:.2f})"
    )
    errors.print(f"saved {path}")
