"""``rag-pricer strategies``: list the registered strategies."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from rag_pricer.cli.common import console
from rag_pricer.pricing.registry import NEEDS, registry


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
    for strategy in registry.all():
        options = "\n".join(f"{o.name}: {o.type} = {o.default!r}" for o in strategy.option_info()) or "-"
        needs = ", ".join(strategy.needs) or "-"
        extra = f"\n[{strategy.extra}] extra" if strategy.extra else ""
        table.add_row(strategy.name, escape(needs + extra), options, strategy.summary)
    console.print(table)
    console.print("needs: " + "; ".join(f"{k} = {v}" for k, v in NEEDS.items()))
    console.print("options: `-o NAME=VALUE` (estimate, evaluate, compare); unknown names and bad values are refused")
