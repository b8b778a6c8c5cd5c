"""``rag-pricer strategies``: list the registered strategies."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from rag_pricer.cli.common import console
from rag_pricer.pricing.registry import NEEDS, OptionInfo, registry


def strategies(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """List the pricing strategies, what each needs, and its options (type, default)."""
    rows = [
        {
            "name": s.name,
            "summary": s.summary,
            "needs": list(s.needs),
            "extra": s.extra,
            "options": [asdict(option) for option in s.option_info()],
        }
        for s in registry.all()
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Strategies")
    for column in ("name", "needs", "options", "summary"):
        table.add_column(column)
    for row in rows:
        options = "\n".join(_shown(OptionInfo(**o)) for o in row["options"]) or "-"
        needs = ", ".join(row["needs"]) or "-"
        table.add_row(row["name"], needs + (f"\n[{row['extra']}] extra" if row["extra"] else ""), options, row["summary"])
    console.print(table)
    console.print("needs: " + "; ".join(f"{k} = {v}" for k, v in NEEDS.items()))
    console.print("options: `-o NAME=VALUE` on estimate, evaluate and compare; an unknown name or a bad value is an error")


def _shown(option: OptionInfo) -> str:
    return f"{option.name}: {option.type} = {option.default!r}"
