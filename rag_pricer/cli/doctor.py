"""``rag-pricer doctor``: check each configured part on its own and report what works."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from rag_pricer.cli.common import LlmOpt, StoreOpt, console, settings_with
from rag_pricer.diagnostics import Doctor

STYLE = {"ok": "green", "failed": "bold red", "skipped": "yellow"}


def doctor(
    store: StoreOpt = None,
    llm: LlmOpt = None,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Seconds each LLM check may take.")] = 120.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Check the store, the embedder, knn, the local LLM and the configured LLM endpoint, each
    on its own (one failing part does not hide the others). Exits 1 if any part failed; a part
    that is not configured is reported as skipped."""
    findings = Doctor(settings_with(store_path=store, llm=llm), llm_timeout_s=timeout).run()
    if as_json:
        typer.echo(json.dumps([f.to_dict() for f in findings], indent=2))
    else:
        table = Table(title="rag-pricer doctor")
        for column in ("part", "status", "seconds", "what was found"):
            table.add_column(column, overflow="fold")
        for f in findings:
            table.add_row(f.part, f"[{STYLE[f.status]}]{f.status}[/]", f"{f.seconds:.1f}", f.detail)
        console.print(table)
    if any(f.status == "failed" for f in findings):
        raise typer.Exit(1)
