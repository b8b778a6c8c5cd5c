"""``rag-pricer train-ensemble``: fit the ensemble on dev (cross-fitted figures), save it and its range."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rag_pricer.api import Estimator
from rag_pricer.cli.common import console, errors, fail, settings_with
from rag_pricer.cli.evaluate import load_items
from rag_pricer.evaluation.metrics import format_value
from rag_pricer.evaluation.scores import SCORED_SPLIT
from rag_pricer.items import Item
from rag_pricer.training.ensemble_job import DEFAULT_BASES, KINDS, EnsembleJob
from rag_pricer.training.ensemble_trainer import EnsembleOutcome, EnsembleTrainer
from rag_pricer.training.prepare import record_scores


def train_ensemble(
    items: Annotated[
        Path | None,
        typer.Option(
            "--items", help="Items of the target distribution (default: settings items_path).", dir_okay=False
        ),
    ] = None,
    split: Annotated[str, typer.Option("--split", help="Split to fit and cross-fit on.")] = "dev",
    limit: Annotated[
        int | None, typer.Option("--limit", min=10, help="Use only the first N items of the split.")
    ] = None,
    extra: Annotated[
        Path | None,
        typer.Option(
            "--extra",
            help="More items of the target distribution, used for fitting only (never scored).",
            dir_okay=False,
        ),
    ] = None,
    extra_split: Annotated[
        str, typer.Option("--extra-split", help="Split of --extra to use ('all': every item).")
    ] = "all",
    bases: Annotated[
        str, typer.Option("--bases", help="Comma-separated base strategies; those that cannot be built are skipped.")
    ] = DEFAULT_BASES,
    kind: Annotated[
        str, typer.Option("--kind", help=f"Model: {', '.join(KINDS)} or auto (lowest cross-fitted MAE).")
    ] = "auto",
    kinds: Annotated[str, typer.Option("--kinds", help="Comma-separated kinds to cross-fit and compare.")] = ",".join(
        KINDS
    ),
    folds: Annotated[int, typer.Option("--folds", min=2, help="Folds of the cross-fitting.")] = 5,
    alpha: Annotated[float, typer.Option("--alpha", min=0.0, help="Ridge penalty.")] = 1.0,
    coverage: Annotated[
        float, typer.Option("--coverage", min=0.5, max=0.99, help="Coverage of the calibrated price range.")
    ] = 0.8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the folds and the bootstrap.")] = 0,
    out: Annotated[Path | None, typer.Option("--out", help="Models directory (default: settings models_dir).")] = None,
    cache: Annotated[Path, typer.Option("--cache", help="Cache of the bases' estimates.")] = Path("var/ensemble-cache"),
    report: Annotated[
        Path | None, typer.Option("--json", help="Write the report (cross-fitted metrics, weights, coverage) here.")
    ] = None,
) -> None:
    """Fit the ensemble of BASES on ITEMS of SPLIT (+ EXTRA), report cross-fitted metrics, save it
    to OUT/ensemble and its calibrated range to OUT/calibration/ensemble.json."""
    try:
        compared = EnsembleJob.compared_kinds(kind, kinds)
    except ValueError as error:
        fail(str(error))
        return
    settings = settings_with(items_path=items, models_dir=out)
    scored = load_items(settings.items_path, split, limit)
    added = _extra_items(extra, extra_split, {i.id for i in scored})
    job = EnsembleJob(Estimator.from_settings(settings), cache)
    try:
        outputs = job.outputs(
            bases.split(","), [*scored, *added], watch=_progress, on_skip=_skipped, unscored={i.id for i in added}
        )
        trainer = EnsembleTrainer(list(outputs), compared, kind, folds=folds, seed=seed, alpha=alpha, coverage=coverage)
        outcome = job.fit(trainer, outputs, scored, added)
    except ValueError as error:
        fail(str(error))
        return
    saved, calibrated = job.save(outcome, settings.models_dir)
    show(outcome, split)
    console.print(f"saved {saved} and {calibrated}")
    if split == SCORED_SPLIT and limit is None:  # the whole split: the figures the strategy pickers show
        again = f"rag-pricer train-ensemble --items {settings.items_path} --split {split}" + (
            f" --extra {extra}" if extra else ""
        )
        folder = record_scores(outcome, settings.models_dir, settings.items_path, split, again)
        console.print(f"recorded the {split} scores in {folder}")
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(outcome.to_dict(), indent=2) + "\n", encoding="utf-8")
        console.print(f"wrote {report}")


@contextmanager
def _progress(name: str, total: int) -> Iterator[Callable[[int], None]]:
    with Progress(
        TextColumn(f"base {name}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    ) as progress:
        task = progress.add_task(name, total=total)
        yield functools.partial(progress.advance, task)


def _skipped(name: str, why: str) -> None:
    errors.print(f"[yellow]skipped base {name}:[/] {why}")


def _extra_items(path: Path | None, split: str, taken: set[str]) -> list[Item]:
    if path is None:
        return []
    found = load_items(path, split, None, hint="check --extra")
    clash = [i.id for i in found if i.id in taken]
    if clash:
        fail(f"{len(clash)} items of --extra are also scored items (e.g. {clash[0]}): they must be distinct")
    return found


def show(outcome: EnsembleOutcome, split: str) -> None:
    table = Table(title=f"Cross-fitted on {outcome.n_scored} {split} items (+{outcome.n_extra} extra fitting items)")
    for column in ("model", "MAE", "MAE 95% CI", "RMSLE", "hit rate", "hit 95% CI", "bias", "80% cover", "width"):
        table.add_column(column, justify="left" if column == "model" else "right")
    rows = [
        (
            f"ensemble ({k})" + (" *" if k == outcome.chosen else ""),
            m,
            outcome.coverage if k == outcome.chosen else None,
        )
        for k, m in outcome.kinds.items()
    ]
    rows += [(name, m, outcome.base_coverage.get(name)) for name, m in outcome.bases.items()]
    for label, m, cover in rows:
        table.add_row(
            label,
            format_value("mae", m["mae"].value),
            f"{format_value('mae', m['mae'].low)} – {format_value('mae', m['mae'].high)}",
            format_value("rmsle", m["rmsle"].value),
            format_value("hit_rate", m["hit_rate"].value),
            f"{format_value('hit_rate', m['hit_rate'].low)} – {format_value('hit_rate', m['hit_rate'].high)}",
            format_value("bias", m["bias"].value),
            f"{cover.coverage:.1%}" if cover else "",
            f"${cover.median_width:,.0f}" if cover else "",
        )
    # Wide: nine columns of figures do not fit in 80 characters, and cut figures are useless.
    Console(width=max(console.width, 150)).print(table)
    for name, found in outcome.paired.items():
        mae_diff, hit_diff = found["mae"], found["hit_rate"]
        console.print(
            f"ensemble ({outcome.chosen}) - {name}, paired on the same items: MAE {mae_diff.value:+.2f} "
            f"({mae_diff.low:+.2f} to {mae_diff.high:+.2f}), hit rate {hit_diff.value:+.1%} "
            f"({hit_diff.low:+.1%} to {hit_diff.high:+.1%})"
        )
    label = "Feature gain shares" if outcome.model.kind == "boosted" else "Weights (log space)"
    console.print(
        f"* saved. {label}: "
        + ", ".join(f"{k} {v:+.3f}" for k, v in outcome.model.weights().items())
        + f", intercept {outcome.model.intercept_:+.3f}"
    )
