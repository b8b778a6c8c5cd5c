"""``rag-pricer llms``: list the LLM backends and the spec each takes."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from rag_pricer.cli.common import console


def llms(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """List the LLM backends; pass one as --llm SPEC to estimate, evaluate, compare or serve."""
    from rag_pricer.llms import available_backends  # here: LangChain takes seconds to import, --help needs none of it

    rows = [{"name": b.name, "example": b.example, "summary": b.summary} for b in available_backends()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="LLM backends (--llm SPEC)")
    for column in ("name", "example", "summary"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["example"], row["summary"])
    console.print(table)
