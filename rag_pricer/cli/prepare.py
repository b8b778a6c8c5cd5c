"""``rag-pricer prepare``: the main job. Index, train, fit and calibrate what the default strategy
needs, then price a few demo items; a second run does only what is missing."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rag_pricer.cli.common import USER_ERRORS, console, errors, fail, require_items, settings_with
from rag_pricer.settings import Settings
from rag_pricer.training.prepare import MIN_FIT_ITEMS, Preparation, PreparationReport

#: unscored items of the dev distribution (knowledge and fitting items); relative: resolved as
#: settings resolve items_path
DEFAULT_EXTRA = Path("../shared/data/items_extra.jsonl.gz")


class ConsoleReporter:
    """Plain lines on stderr; progress as a rich bar in a terminal, else a line every ~10%."""

    def __init__(self, stream: Console, progress: bool = True) -> None:
        self.stream = stream
        self.console: Console | None = stream
        self.progress = progress

    def line(self, text: str) -> None:
        self.stream.print(text, markup=False, highlight=False, soft_wrap=True)

    def watch(self, label: str, total: int) -> AbstractContextManager[Callable[[int], None]]:
        return self._bar(label, total) if self.stream.is_terminal else self._lines(label, total)

    @contextmanager
    def _bar(self, label: str, total: int) -> Iterator[Callable[[int], None]]:
        columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=self.stream, transient=True, disable=not self.progress) as bar:
            task = bar.add_task(label, total=total)
            yield lambda done: bar.advance(task, done)

    @contextmanager
    def _lines(self, label: str, total: int) -> Iterator[Callable[[int], None]]:
        done, shown = [0], [0]

        def advance(count: int) -> None:
            done[0] += count
            tenth = done[0] * 10 // max(total, 1)
            if self.progress and tenth > shown[0]:
                shown[0] = tenth
                self.line(f"prepare: {label}: {done[0]:,}/{total:,} ({done[0] / max(total, 1):.0%})")

        yield advance


def prepare(
    items: Annotated[
        Path | None, typer.Option("--items", help="Curated items file (default: settings items_path).", dir_okay=False)
    ] = None,
    store: Annotated[
        Path | None, typer.Option("--store", help="Chroma directory (default: settings store_path).")
    ] = None,
    models_dir: Annotated[
        Path | None, typer.Option("--models-dir", help="Where models go (default: settings models_dir).")
    ] = None,
    extra: Annotated[
        Path | None,
        typer.Option(
            "--extra",
            help=f"Unscored items of the dev distribution, indexed as knowledge and used to fit the ensemble "
            f"(default: {DEFAULT_EXTRA}, when it exists).",
            dir_okay=False,
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            min=1,
            help=f"Quick run: N train items, a fifth as many dev items (at least {MIN_FIT_ITEMS}).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print what each step did as JSON.")] = False,
) -> None:
    """Make the default strategy ready: index the train split and the extra items, train the
    baselines it needs, fit and calibrate the ensemble on dev (and the extra items), then price a
    few items with their ranges. Steps whose output is current are skipped."""
    settings = settings_with(items_path=items, store_path=store, models_dir=models_dir)
    require_items(settings.items_path)
    reporter = ConsoleReporter(errors, progress=not (as_json and console.is_terminal))
    chosen_extra = _extra(settings, extra, reporter)
    try:
        report = Preparation(settings, chosen_extra, limit, reporter).run()
    except USER_ERRORS as error:
        fail(str(error), code=1)
        return
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        show(report)


def _extra(settings: Settings, given: Path | None, reporter: ConsoleReporter) -> Path | None:
    """``--extra`` (which must exist), else the default one when it exists (else none, said)."""
    if given is not None:
        return require_items(given, "check --extra")
    base = settings.base_dir or Path.cwd()
    default = Path(os.path.normpath(base / DEFAULT_EXTRA))
    if default.is_file():
        return default
    reporter.line(f"prepare: no extra items at {default}: the ensemble is fitted on dev only")
    return None


def show(report: PreparationReport) -> None:
    steps = Table(title=f"prepare: {report.seconds:,.1f} s")
    for column in ("step", "status", "seconds", "what"):
        steps.add_column(column, justify="right" if column == "seconds" else "left")
    for step in report.steps:
        steps.add_row(step.name, step.status, f"{step.seconds:,.1f}", step.detail)
    console.print(steps)
    demo = Table(title=f"{report.strategy}: estimates and their ranges")
    demo.add_column("item", no_wrap=True, overflow="ellipsis", max_width=46)
    for column in ("price", "low", "high"):
        demo.add_column(column, justify="right")
    for row in report.demo:
        covered = row.low is not None and row.high is not None
        demo.add_row(
            row.description,
            f"${row.price:,.2f}",
            f"${row.low:,.2f}" if covered else "-",
            f"${row.high:,.2f}" if covered else "-",
        )
    console.print(demo)
    ranged = next((row for row in report.demo if row.coverage), None)
    if ranged is not None:
        console.print(f"low-high: a {ranged.coverage:.0%} range (calibrated on dev)")
    for note in report.notes:
        console.print(note)
