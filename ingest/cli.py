"""``rag-pricer-ingest``: curate raw Amazon metadata, chart a dataset, build the knowledge base."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

import rag_pricer.help_format  # noqa: F401 - flags show no value type in --help
from ingest.curate import CurationParams, CurationReport, Curator
from ingest.index import Indexer, IndexReport
from ingest.raw import HuggingFaceMetaReader, JsonlMetaReader, RawSourceUnavailable
from ingest.tokens import DEFAULT_MAX_TOKENS, DEFAULT_TOKENIZER, TokenBudget
from rag_pricer.items import ItemReader, write_items
from rag_pricer.knowledge.embeddings import Embedder
from rag_pricer.knowledge.store import BUILD_HINT, ProductStore, StoreError
from rag_pricer.knowledge.writer import KnowledgeWriter
from rag_pricer.settings import InvalidSettings, Settings

app = typer.Typer(
    help=(
        "The data pipeline: raw Amazon metadata -> curated items -> Chroma knowledge base; "
        "`add` and `remove` change a knowledge base while it serves."
    ),
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)


@app.callback()
def _group() -> None:
    """Keeps typer from collapsing a one-command app into that command."""


@app.command()
def index(
    items: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Curated items files (JSONL, optionally .gz) (default: settings items_path).", dir_okay=False
        ),
    ] = None,
    store: Annotated[
        Path | None, typer.Option(help="Persistent Chroma directory (default: settings store_path).")
    ] = None,
    split: Annotated[str | None, typer.Option(help="Index only items of this split (e.g. train).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Index at most N items of each file.")] = None,
    collection: Annotated[str | None, typer.Option(help="Collection name (default: settings collection).")] = None,
    model: Annotated[
        str | None, typer.Option(help="sentence-transformers model (default: all-MiniLM-L6-v2, packaged).")
    ] = None,
    chroma_host: Annotated[
        str | None, typer.Option(help="Write to a Chroma server at this host instead of a directory.")
    ] = None,
    chroma_port: Annotated[int | None, typer.Option(help="Port of the Chroma server.")] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Texts per forward pass of the embedding model.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON on stdout.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Embed items and upsert them into a Chroma collection (idempotent: re-runs store only what is new)."""
    try:
        settings = Settings.load(
            store_path=store,
            collection=collection,
            embedding_model=model,
            chroma_host=chroma_host,
            chroma_port=chroma_port,
            embedding_batch_size=batch_size,
        )
    except InvalidSettings as error:
        console.print(f"[bold red]error:[/] {error}", soft_wrap=True)
        raise typer.Exit(2) from None
    paths = items or [settings.items_path]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        console.print(f"[bold red]error:[/] items file not found: {', '.join(missing)}")
        raise typer.Exit(2)
    product_store = ProductStore.from_settings(settings)
    embedder = Embedder(
        settings.embedding_model,
        batch_size=settings.embedding_batch_size,
        backend=settings.embedding_backend,
        threads=settings.embedding_threads,
    )
    indexer = Indexer(product_store, embedder, progress=progress and not as_json)
    report = IndexReport()
    for path in paths:
        reader = ItemReader(path, split=split, limit=limit)
        try:
            indexer.run(reader, report)
        except StoreError as error:  # disk full, server gone, another model's store: one line
            console.print(
                f"[bold red]error:[/] {error} ({report.stored:,} products stored by this run)", soft_wrap=True
            )
            raise typer.Exit(1) from None
        finally:
            report.skipped.update(reader.skipped)
        for damage in ("truncated_file", "corrupt_file"):
            if reader.skipped[damage]:
                console.print(
                    f"[yellow]warning:[/] {path}: {damage.replace('_', ' ')}; the items read before the damage "
                    "were indexed"
                )
    _print_report(report, product_store.location, as_json)


StoreOpt = Annotated[Path | None, typer.Option(help="Persistent Chroma directory (default: settings store_path).")]
CollectionOpt = Annotated[str | None, typer.Option(help="Collection name (default: settings collection).")]
ChromaHostOpt = Annotated[
    str | None, typer.Option(help="Write to a Chroma server at this host instead of a directory.")
]
ChromaPortOpt = Annotated[int | None, typer.Option(help="Port of the Chroma server.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print what was written as JSON on stdout.")]


@app.command()
def add(
    items: Annotated[
        Path, typer.Argument(help="Products in the curated items format (JSONL, optionally .gz).", dir_okay=False)
    ],
    store: StoreOpt = None,
    collection: CollectionOpt = None,
    chroma_host: ChromaHostOpt = None,
    chroma_port: ChromaPortOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add or replace products in a knowledge base, also one a server is using: it retrieves them
    from its next request. Every record is checked as `index` checks it; one bad record writes
    nothing and is reported with its line."""
    settings = _settings(store_path=store, collection=collection, chroma_host=chroma_host, chroma_port=chroma_port)
    if not items.is_file():
        _fail(f"items file not found: {items}", 2)
    reader = ItemReader(items)
    loaded = list(reader)
    duplicates = sorted(i for i, n in Counter(item.id for item in loaded).items() if n > 1)
    if reader.problems or duplicates:
        for problem in reader.problems:
            console.print(f"[bold red]error:[/] {items}: {problem}", soft_wrap=True, highlight=False)
        hidden = sum(reader.skipped.values()) - len(reader.problems)
        if hidden > 0:
            console.print(f"[bold red]error:[/] {items}: {hidden} more bad record(s)")
        for product_id in duplicates:
            console.print(f"[bold red]error:[/] {items}: id {product_id!r} appears more than once", highlight=False)
        _fail("nothing was written: fix the records above and run again", 1)
    if not loaded:
        _fail(f"no products in {items}", 1)
    product_store = _writable_store(settings)
    embedder = _embedder(settings)
    started = time.perf_counter()
    try:
        written = KnowledgeWriter(product_store, embedder).upsert(loaded)
        total = product_store.count()
    except StoreError as error:
        _fail(str(error), 1)
    _print_written(
        {"upserted": len(written), "total_in_store": total, "seconds": round(time.perf_counter() - started, 2)},
        product_store.location,
        as_json,
    )


@app.command()
def remove(
    ids: Annotated[list[str], typer.Option("--ids", help="Ids of the products to delete (repeat or comma-separate).")],
    store: StoreOpt = None,
    collection: CollectionOpt = None,
    chroma_host: ChromaHostOpt = None,
    chroma_port: ChromaPortOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete products from a knowledge base, also one a server is using: it stops retrieving
    them from its next request. Ids that are not stored are reported, not an error."""
    settings = _settings(store_path=store, collection=collection, chroma_host=chroma_host, chroma_port=chroma_port)
    wanted = list(dict.fromkeys(part.strip() for value in ids for part in value.split(",") if part.strip()))
    if not wanted:
        _fail("give the ids to delete with --ids", 2)
    product_store = _writable_store(settings, create=False)
    try:
        deleted = KnowledgeWriter(product_store, embedder=None).delete(wanted)
        total = product_store.count()
    except StoreError as error:
        _fail(str(error), 1)
    missing = [i for i in wanted if i not in set(deleted)]
    if missing and not as_json:
        console.print(f"[yellow]warning:[/] not stored, so not deleted: {', '.join(missing)}", highlight=False)
    _print_written(
        {"deleted": len(deleted), "missing": missing, "total_in_store": total}, product_store.location, as_json
    )


@app.command()
def partition(
    store: StoreOpt = None,
    collection: CollectionOpt = None,
    chroma_host: ChromaHostOpt = None,
    chroma_port: ChromaPortOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Partition a knowledge base by category: a collection of each category's vectors beside
    the main one, so that a category filter searches its category alone (ms at 400k products
    instead of Chroma's filter, linear in the store). Costs the vectors' writes again; from then
    on every writer (index, add, remove) keeps the partitions current. Rerunning rebuilds them."""
    settings = _settings(store_path=store, collection=collection, chroma_host=chroma_host, chroma_port=chroma_port)
    product_store = _writable_store(settings, create=False)
    started = time.perf_counter()
    try:
        counts = product_store.partition_by_category()
    except StoreError as error:
        _fail(str(error), 1)
    data: dict[str, object] = {
        "categories": len(counts),
        "partitioned_products": sum(counts.values()),
        "seconds": round(time.perf_counter() - started, 1),
    }
    _print_written(data, product_store.location, as_json)


def _settings(**overrides: object) -> Settings:
    try:
        return Settings.load(**overrides)
    except InvalidSettings as error:
        _fail(str(error), 2)


def _fail(message: str, code: int) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False)
    raise typer.Exit(code)


def _writable_store(settings: Settings, create: bool = True) -> ProductStore:
    """The configured store; an embedded one must exist (``add`` to a mistyped path must not
    create a new store beside the one a server uses), and must hold the collection to delete from."""
    product_store = ProductStore.from_settings(settings)
    if settings.chroma_host is None and not (settings.store_path / "chroma.sqlite3").is_file():
        _fail(f"no store at {settings.store_path}: {BUILD_HINT}", 1)
    try:
        product_store.collection(create=create)
    except StoreError as error:
        _fail(str(error), 1)
    return product_store


def _embedder(settings: Settings) -> Embedder:
    return Embedder(
        settings.embedding_model,
        batch_size=settings.embedding_batch_size,
        backend=settings.embedding_backend,
        threads=settings.embedding_threads,
    )


def _print_written(data: dict[str, object], location: str, as_json: bool) -> None:
    data = data | {"store": location}
    if as_json:
        typer.echo(json.dumps(data))
        return
    table = Table(title=f"Written to {location}", show_header=False)
    for key, value in data.items():
        table.add_row(key, json.dumps(value) if isinstance(value, list) else str(value))
    Console().print(table)


def _print_report(report: IndexReport, location: str, as_json: bool) -> None:
    data = report.as_dict() | {"store": location}
    if as_json:
        typer.echo(json.dumps(data))
        return
    table = Table(title=f"Indexed into {location}", show_header=False)
    for key, value in data.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    Console().print(table)


@app.command()
def curate(
    out: Annotated[
        Path, typer.Option(help="Curated items file to write (JSONL; gzipped when it ends in .gz).", dir_okay=False)
    ],
    raw: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Raw Amazon Reviews 2023 metadata files, meta_<Category>.jsonl(.gz).", exists=True, dir_okay=False
        ),
    ] = None,
    category: Annotated[
        str | None,
        typer.Option(
            help="Category of the RAW files' items (default: from a meta_<Category> name, else main_category)."
        ),
    ] = None,
    hf_category: Annotated[
        list[str] | None,
        typer.Option(
            "--hf-category",
            help=(
                "Also read raw_meta_<NAME> of McAuley-Lab/Amazon-Reviews-2023 (downloaded into the Hugging Face "
                "cache); repeatable."
            ),
        ),
    ] = None,
    hf_cache_only: Annotated[bool, typer.Option(help="Use only Hugging Face files already cached.")] = False,
    test_fraction: Annotated[
        float, typer.Option(min=0.0, max=0.99, help="Fraction of kept items put in the test split.")
    ] = 0.1,
    test_size: Annotated[
        int | None, typer.Option(min=0, help="Number of test items (overrides --test-fraction).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of balancing and of the shuffle before the split.")] = 42,
    balance: Annotated[bool, typer.Option(help="Cap the items per (category, price bucket).")] = False,
    max_per_bucket: Annotated[int, typer.Option(min=1, help="With --balance: items kept per bucket.")] = 50,
    bucket_width: Annotated[float, typer.Option(min=0.01, help="With --balance: price bucket width ($).")] = 10.0,
    max_tokens: Annotated[int, typer.Option(min=8, help="Token budget of title + text.")] = DEFAULT_MAX_TOKENS,
    min_chars: Annotated[int, typer.Option(min=0, help="Skip items whose scrubbed text is shorter.")] = 300,
    tokenizer: Annotated[str, typer.Option(help="Tokenizer (name or folder) for the budget.")] = DEFAULT_TOKENIZER,
    train_split: Annotated[str, typer.Option(help="Name of the training split.")] = "train",
    test_split: Annotated[str, typer.Option(help="Name of the test split.")] = "test",
    limit: Annotated[int | None, typer.Option(min=1, help="Read at most N records of each source.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON on stdout.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Curate raw metadata into priced, scrubbed, deduplicated, split items; counts every skipped record."""
    params = CurationParams(
        min_chars=min_chars,
        max_tokens=max_tokens,
        tokenizer=tokenizer,
        balance=balance,
        max_per_bucket=max_per_bucket,
        bucket_width=bucket_width,
        test_fraction=test_fraction,
        test_size=test_size,
        seed=seed,
        train_split=train_split,
        test_split=test_split,
    )
    sources: list[JsonlMetaReader | HuggingFaceMetaReader] = [
        JsonlMetaReader(path, category=category, limit=limit) for path in raw or []
    ]
    try:
        hf_readers = [
            HuggingFaceMetaReader(name, limit=limit, local_files_only=hf_cache_only) for name in hf_category or []
        ]
        for reader in hf_readers:
            reader.fetch()  # fail before hours of curation, not after
    except (ValueError, RawSourceUnavailable) as error:
        console.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(1) from error
    sources.extend(hf_readers)
    if not sources:
        console.print("[bold red]error:[/] give RAW files and/or --hf-category NAME")
        raise typer.Exit(2)
    curator = Curator(params, progress=progress and not as_json)
    result = curator.run(record for source in sources for record in source)
    write_items(result.items, out)
    _print_curation(result, out, as_json)


def _print_curation(report: CurationReport, out: Path, as_json: bool) -> None:
    data = report.as_dict() | {"out": str(out)}
    if as_json:
        typer.echo(json.dumps(data))
        return
    table = Table(title=f"Curated into {out}", show_header=False)
    table.add_row("read", f"{report.read:,}")
    table.add_row("kept", f"{report.kept:,}")
    for reason, count in report.skipped.most_common():
        table.add_row(f"skipped: {reason}", f"{count:,}")
    for split, count in report.splits.items():
        table.add_row(f"split: {split}", f"{count:,}")
    table.add_row("categories", json.dumps(data["categories"]))
    table.add_row("seconds", f"{report.seconds:.1f}")
    Console().print(table)


@app.command()
def report(
    items: Annotated[
        Path, typer.Argument(help="Curated items file (JSONL, optionally .gz).", exists=True, dir_okay=False)
    ],
    out: Annotated[
        Path, typer.Option(help="Folder for the PNG charts, summary.txt and summary.json.", file_okay=False)
    ],
    split: Annotated[str | None, typer.Option(help="Report on this split only.")] = None,
    tokenizer: Annotated[
        str, typer.Option(help="Tokenizer (name or folder) for the token lengths.")
    ] = DEFAULT_TOKENIZER,
    max_tokens: Annotated[
        int, typer.Option(min=1, help="Token budget drawn on the token-length chart.")
    ] = DEFAULT_MAX_TOKENS,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
) -> None:
    """Chart a curated dataset (price, length vs price, categories, token lengths) and summarise it."""
    from ingest.report import DatasetReport  # matplotlib: imported only by the command that draws

    reader = ItemReader(items, split=split)
    loaded = list(reader)
    if not loaded:
        console.print(f"[bold red]error:[/] no usable items in {items}" + (f" for split {split!r}" if split else ""))
        raise typer.Exit(1)
    result = DatasetReport(TokenBudget(tokenizer, max_tokens)).write(loaded, out, skipped=dict(reader.skipped))
    if as_json:
        typer.echo(json.dumps(result.summary.as_dict() | {"charts": [str(path) for path in result.charts]}))
        return
    typer.echo(result.summary.to_text())
    typer.echo(f"\nwrote {result.summary_path} and {len(result.charts)} charts to {out}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
