"""``rag-pricer llms``: list the LLM backends and the spec each takes."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.text import Text

from rag_pricer.cli.common import console, print_indented


def llms(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """List the LLM backends; pass one as --llm SPEC to estimate, evaluate, compare or serve."""
    from rag_pricer.llms import available_backends  # here: LangChain takes seconds to import, --help needs none of it

    rows = [{"name": b.name, "example": b.example, "summary": b.summary} for b in available_backends()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    # A block per backend: a table at 80 columns cut the specs, the one thing to copy from it.
    console.print("LLM backends: pass one as --llm SPEC")
    for row in rows:
        console.print(Text.assemble((row["name"], "bold"), "  --llm ", row["example"]), soft_wrap=True)
        print_indented(row["summary"])
