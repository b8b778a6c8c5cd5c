"""``rag-pricer strategies``: list the registered strategies."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from rag_pricer.cli.common import console
from rag_pricer.pricing.registry import NEEDS, registry


def strategies(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """List the pricing strategies, what each needs, and its options."""
    rows = [
        {"name": s.name, "summary": s.summary, "needs": list(s.needs), "options": s.options()} for s in registry.all()
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Strategies")
    for column in ("name", "needs", "options", "summary"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], ", ".join(row["needs"]) or "-", ", ".join(row["options"]), row["summary"])
    console.print(table)
    console.print("needs: " + "; ".join(f"{k} = {v}" for k, v in NEEDS.items()))
