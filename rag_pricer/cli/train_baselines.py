"""``rag-pricer train-baselines``: fit the traditional ML baselines and save them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from rag_pricer.cli.common import console, errors, fail, settings_with
from rag_pricer.cli.evaluate import load_items
from rag_pricer.training.baselines import BASELINES, BaselineTrainer, TrainingStep

ItemsOpt = Annotated[
    Path | None, typer.Option("--items", help="Curated items JSONL(.gz) (default: settings items_path).")
]
SplitOpt = Annotated[str, typer.Option("--split", help="Split to train on ('all' for every item).")]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Directory of the saved models (default: settings models_dir).")
]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help="Train on the first N items of the split.")]
OnlyOpt = Annotated[
    str | None, typer.Option("--only", help=f"Comma-separated baselines (default: all: {', '.join(BASELINES)}).")
]
JobsOpt = Annotated[int, typer.Option("--jobs", min=1, help="Threads of the random forest and LightGBM.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of every random choice.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the steps as JSON.")]


def train_baselines(
    items: ItemsOpt = None,
    split: SplitOpt = "train",
    out: OutOpt = None,
    limit: LimitOpt = None,
    only: OnlyOpt = None,
    jobs: JobsOpt = 1,
    seed: SeedOpt = 42,
    as_json: JsonOpt = False,
) -> None:
    """Fit the traditional ML baselines on the training items and save them under OUT.

    Each goes to OUT/NAME, where the strategy of the same name loads it; the table gives the
    time of each step (word2vec is trained once and shared by the word2vec-* baselines)."""
    settings = settings_with(items_path=items, models_dir=out)
    names = [n.strip() for n in only.split(",") if n.strip()] if only else list(BASELINES)
    unknown = [n for n in names if n not in BASELINES]
    if unknown or not names:
        fail(f"unknown baseline(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(BASELINES)}")
    training = load_items(settings.items_path, split, limit)
    trainer = BaselineTrainer.for_settings(settings, names, n_jobs=jobs, seed=seed)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=errors,
        transient=as_json,
    ) as progress:
        task = progress.add_task("training", total=len(trainer.steps()))

        def on_step(step: str) -> None:
            progress.update(task, description=f"training {step}", completed=trainer.steps().index(step))

        steps = trainer.train(training, settings.models_dir, on_step=on_step)
        progress.update(task, description="trained", completed=len(steps))
    if as_json:
        report = {
            "items": str(settings.items_path),
            "split": split,
            "n_train": len(training),
            "out": str(settings.models_dir),
        }
        typer.echo(json.dumps({**report, "steps": [_as_dict(s) for s in steps]}, indent=2))
    else:
        show(steps, settings.models_dir)


def _as_dict(step: TrainingStep) -> dict[str, object]:
    return {
        "name": step.name,
        "seconds": round(step.seconds, 3),
        "n_train": step.n_train,
        "shared": step.shared,
        "path": str(step.path) if step.path else None,
    }


def show(steps: list[TrainingStep], out: Path) -> None:
    table = Table(title=f"Baselines trained on {steps[0].n_train:,} items, saved under {out}")
    for column, justify in (("step", "left"), ("seconds", "right"), ("saved to", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for step in steps:
        table.add_row(step.name, f"{step.seconds:.1f}", str(step.path) if step.path else "(reused by the next ones)")
    table.add_row("total", f"{sum(s.seconds for s in steps):.1f}", "")
    console.print(table)
