"""``rag-pricer-ingest``: curate raw Amazon metadata, chart a dataset, build the knowledge base."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from rag_pricer.embeddings import Embedder
from rag_pricer.items import ItemReader
from rag_pricer.settings import Settings
from rag_pricer.store import ProductStore

from ingest.index import Indexer, IndexReport

app = typer.Typer(
    help="The data pipeline: raw Amazon metadata -> curated items -> Chroma knowledge base.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)


@app.callback()
def _group() -> None:
    """Keeps typer from collapsing a one-command app into that command."""


@app.command()
def index(
    items: Annotated[list[Path], typer.Argument(help="Curated items files (JSONL, optionally .gz).", exists=True, dir_okay=False)],
    store: Annotated[Optional[Path], typer.Option(help="Persistent Chroma directory [default: settings store_path].")] = None,
    split: Annotated[Optional[str], typer.Option(help="Index only items of this split (e.g. train).")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Index at most N items of each file.")] = None,
    collection: Annotated[Optional[str], typer.Option(help="Collection name [default: settings collection].")] = None,
    model: Annotated[Optional[str], typer.Option(help="sentence-transformers model [default: all-MiniLM-L6-v2, packaged].")] = None,
    chroma_host: Annotated[Optional[str], typer.Option(help="Write to a Chroma server at this host instead of a directory.")] = None,
    chroma_port: Annotated[Optional[int], typer.Option(help="Port of the Chroma server.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Texts per forward pass of the embedding model.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON on stdout.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Embed items and upsert them into a Chroma collection (idempotent: re-runs store only what is new)."""
    settings = Settings()
    overrides = {
        "store_path": store, "collection": collection, "embedding_model": model,
        "chroma_host": chroma_host, "chroma_port": chroma_port, "embedding_batch_size": batch_size,
    }
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    product_store = ProductStore.from_settings(settings)
    embedder = Embedder(settings.embedding_model, batch_size=settings.embedding_batch_size)
    indexer = Indexer(product_store, embedder, progress=progress and not as_json)
    report = IndexReport()
    for path in items:
        reader = ItemReader(path, split=split, limit=limit)
        indexer.run(reader, report)
        report.skipped.update(reader.skipped)
    _print_report(report, product_store.location, as_json)


def _print_report(report: IndexReport, location: str, as_json: bool) -> None:
    data = report.as_dict() | {"store": location}
    if as_json:
        typer.echo(json.dumps(data))
        return
    table = Table(title=f"Indexed into {location}", show_header=False)
    for key, value in data.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    Console().print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
