"""``rag-pricer monitor``: how the estimates fare against the prices products really sold for."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated

import typer
from rich.table import Table

from rag_pricer.cli.common import console, errors, fail, settings_with
from rag_pricer.feedback.journal import FeedbackJournal
from rag_pricer.feedback.monitor import MonitorReport, Scores, monitor


def monitor_command(
    window: Annotated[
        int | None, typer.Option("--last", "-n", min=1, help="Latest feedbacks per strategy (default: settings).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when a strategy's ranges warn.")] = False,
) -> None:
    """Per strategy, over the last N feedbacks and in total: MAE, hit rate (< $40 or < 20%),
    bias and range coverage, with a warning when the ranges hold the sold price clearly less
    often than promised. Reads the feedback journal (settings feedback_path)."""
    settings = settings_with()
    if settings.feedback_path is None:
        fail("no feedback journal: RAG_PRICER_FEEDBACK_PATH is empty")
        return
    if not settings.feedback_path.is_file():
        fail(f"no feedback journal at {settings.feedback_path}: serve estimates and POST /v1/feedback first")
    journal = FeedbackJournal(settings.feedback_path)
    try:
        report = monitor(journal.feedbacks(), window or settings.monitor_window)
    finally:
        journal.close()
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        show(report)
    if strict and report.warnings:
        raise typer.Exit(1)


def show(report: MonitorReport) -> None:
    if not report.strategies:
        console.print(f"no scored feedback yet ({report.unmatched} unmatched)")
        return
    table = Table(title=f"Estimates against sold prices (latest {report.window} per strategy / all)")
    for column in ("strategy", "n", "MAE", "hit rate", "bias", "range coverage"):
        table.add_column(column, justify="left" if column == "strategy" else "right")
    for row in report.strategies:
        cells = [_pair(row.latest, row.total, f) for f in (_n, _mae, _hits, _bias, _coverage)]
        table.add_row(row.strategy, *cells)
    console.print(table)
    if report.unmatched:
        console.print(f"[dim]{report.unmatched} feedbacks matched no recorded estimate (not scored)[/]")
    for warning in report.warnings:
        errors.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)


def _pair(latest: Scores, total: Scores, shown: Callable[[Scores], str]) -> str:
    return f"{shown(latest)} / {shown(total)}"


def _n(s: Scores) -> str:
    return str(s.n)


def _mae(s: Scores) -> str:
    return "-" if s.mae is None else f"${s.mae:,.2f}"


def _hits(s: Scores) -> str:
    return "-" if s.hit_rate is None else f"{s.hit_rate:.1%}"


def _bias(s: Scores) -> str:
    return "-" if s.bias is None else f"{s.bias:+,.2f}"


def _coverage(s: Scores) -> str:
    if s.coverage is None or s.promised is None:
        return "-"
    return f"{s.coverage:.0%} of {s.promised:.0%} ({s.ranged})"
