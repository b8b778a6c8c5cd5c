"""``rag-pricer config``: the settings in effect, as the other commands will see them."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from rag_pricer.cli.common import console
from rag_pricer.settings import Settings


def config(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """Show the effective settings (environment, .env and defaults; secrets only as <set>)."""
    public = Settings().public()
    if as_json:
        typer.echo(json.dumps(public, indent=2))
        return
    table = Table(title="rag-pricer settings (RAG_PRICER_<NAME>)")
    table.add_column("name")
    table.add_column("value", overflow="fold")
    table.add_column("description", overflow="fold")
    for name, value in public.items():
        table.add_row(name, "" if value is None else str(value), Settings.model_fields[name].description or "")
    console.print(table)
