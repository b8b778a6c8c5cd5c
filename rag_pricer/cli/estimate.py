"""``rag-pricer estimate``: price one description and show the evidence."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from rag_pricer.cli.common import (
    USER_ERRORS,
    CategoryOpt,
    ChromaHostOpt,
    ChromaPortOpt,
    KOpt,
    LlmOpt,
    MmrOpt,
    StoreOpt,
    StrategyOpt,
    StrategyOptionsOpt,
    console,
    estimator_with,
    fail,
    parse_options,
)
from rag_pricer.pricing.readiness import Readiness
from rag_pricer.pricing.values import Estimate


def estimate(
    description: Annotated[str, typer.Argument(help="The product description ('-' reads it from stdin).")],
    strategy: StrategyOpt = None,
    llm: LlmOpt = None,
    store: StoreOpt = None,
    k: KOpt = None,
    category: CategoryOpt = None,
    mmr: MmrOpt = False,
    chroma_host: ChromaHostOpt = None,
    chroma_port: ChromaPortOpt = None,
    option: StrategyOptionsOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON: id, price, strategy, comparables, llm_answer, fallback, ...")
    ] = False,
    one: Annotated[
        bool, typer.Option("--one", help="With '-': price all of stdin as one description, whatever its lines.")
    ] = False,
) -> None:
    """Estimate the price of DESCRIPTION in USD and show the comparable products behind it."""
    if description == "-":
        description = from_stdin(typer.get_text_stream("stdin").read(), one)
    estimator = estimator_with(store_path=store, llm=llm, chroma_host=chroma_host, chroma_port=chroma_port)
    try:
        given = {"k": k, "category": category, "mmr": mmr or None, "llm": llm, **parse_options(option)}
        options = estimator.options(strategy, given)  # a mistyped option is the first thing to hear about
        # A strategy that cannot price here says what to run, before anything loads.
        readiness = Readiness(estimator.settings, llm_factory=estimator.resources.llm)
        readiness.require(strategy or estimator.settings.strategy, llm, options)
        # Loading apart: the latency shown is the estimate's, not the models' start-up.
        load_s = estimator.load(strategy, options)
        result = estimator.pricer(strategy, options).estimate(description)
    except USER_ERRORS as error:
        fail(str(error))
        return
    if as_json:
        typer.echo(json.dumps(result.to_dict() | {"load_s": round(load_s, 3)}, indent=2))
    else:
        show(result, load_s)


def from_stdin(text: str, one: bool) -> str:
    """The description read from stdin. Several non-blank lines may be one product's title and
    description, or a list of products: the command does not guess, it asks (``--one``) or points
    to ``price-file``, never merging ten products into one price."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and not one:
        fail(
            f"stdin holds {len(lines)} lines: to price one product per line use "
            "`rag-pricer price-file FILE --out OUT` (a .jsonl or .csv file), or pass --one to price the whole "
            "text as one description"
        )
    return text


def show(result: Estimate, load_s: float | None = None) -> None:
    loaded = f"; models loaded in {load_s:.1f} s" if load_s is not None else ""
    console.print(f"[bold green]${result.price:,.2f}[/]  ({result.strategy}, {result.latency_s * 1000:.0f} ms{loaded})")
    if result.low is not None and result.high is not None and result.coverage is not None:
        console.print(f"{result.coverage:.0%} range: ${result.low:,.2f} – ${result.high:,.2f}")
    if result.confidence_reason:
        colour = {"high": "green", "medium": "yellow", "low": "red"}.get(result.confidence or "", "dim")
        console.print(f"confidence: [{colour}]{result.confidence or 'none'}[/] — {result.confidence_reason}")
    if result.fallback:
        console.print(f"[yellow]fallback:[/] {result.fallback}")
    if result.llm_answer is not None:
        console.print(f"LLM answer: {result.llm_answer!r}")
    for note in result.notes:
        console.print(f"[dim]note: {note}[/]")
    if result.comparables:
        table = Table(title="Comparable products")
        for column, justify in (("similarity", "right"), ("price", "right"), ("category", "left"), ("title", "left")):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for c in result.comparables:
            table.add_row(f"{c.similarity:.3f}", f"${c.price:,.2f}", c.category or "-", c.title[:90])
        console.print(table)
