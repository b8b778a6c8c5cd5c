"""``rag-pricer config``: the settings in effect, as the other commands will see them."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from rag_pricer.cli.common import console, settings_with


def config(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """Show the effective settings (environment, the project's .env and defaults; secrets only as
    <set>) and which .env file was read."""
    settings = settings_with()
    public = settings.public()
    source = str(settings.env_file) if settings.env_file else None
    if as_json:
        typer.echo(json.dumps({**public, "env_file": source}, indent=2))
        return
    table = Table(title="rag-pricer settings (RAG_PRICER_<NAME>)")
    table.add_column("name")
    table.add_column("value", overflow="fold")
    table.add_column("description", overflow="fold")
    for name, value in public.items():
        table.add_row(name, "" if value is None else str(value), type(settings).model_fields[name].description or "")
    console.print(table)
    console.print(f".env: {source}" if source else f".env: none found (looked from here up to {settings.base_dir})")
    console.print(f"relative paths are resolved against {settings.base_dir}")
