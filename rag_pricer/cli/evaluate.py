"""``rag-pricer evaluate``: score one strategy on curated items, with metrics, intervals and charts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rag_pricer.api import Estimator
from rag_pricer.cli.common import (
    ITEMS_HINT,
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
    errors,
    fail,
    parse_options,
    require_items,
    settings_with,
)
from rag_pricer.evaluation import Bootstrap, Evaluation, EvaluationResult, LeakageError, schedule
from rag_pricer.evaluation.metrics import LABELS, METRICS, format_value
from rag_pricer.evaluation.scores import SCORED_SPLIT, ScoreRecord
from rag_pricer.items import Item, ItemReader, read_items
from rag_pricer.knowledge.store import StoreError
from rag_pricer.pricing.registry import UnknownStrategy, registry

ItemsOpt = Annotated[
    Path | None,
    typer.Option(
        "--items", help="Curated items file (JSONL, optionally .gz; default: settings items_path).", dir_okay=False
    ),
]
SplitOpt = Annotated[str, typer.Option("--split", help="Score only items of this split ('all' for every item).")]
LimitOpt = Annotated[
    int | None, typer.Option("--limit", min=1, help="Score only the first N items (of the split, in file order).")
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers", min=1, help="Items in flight at once for LLM strategies (default: settings llm_concurrency)."
    ),
]
ResamplesOpt = Annotated[
    int, typer.Option("--resamples", min=10, help="Bootstrap resamples for the confidence intervals.")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar (on stderr).")]


def load_items(path: Path, split: str, limit: int | None, hint: str = ITEMS_HINT) -> list[Item]:
    """The items to score, or a clear error (exit 2) when there are none; ``hint`` says what to
    do when the file is not there."""
    require_items(path, hint)
    try:
        items = read_items(path, split=None if split == "all" else split, limit=limit)
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read items from {path}: {error}")
        return []
    if not items:
        fail(f"no items of split {split!r} in {path}: {why_no_items(path, split)}")
    return items


def why_no_items(path: Path, split: str) -> str:
    """Why ``path`` gave no items of ``split``, in a few words: not the curated JSONL format,
    no prices (a catalogue to price, not to score), or no record of that split."""
    if path.suffix.lower() == ".csv":
        return (
            "evaluate reads curated JSONL (id, title, text, price, split); "
            "to price a catalogue use `rag-pricer price-file`"
        )
    reader = ItemReader(path)
    splits = Counter(item.split for item in reader)
    reasons = ", ".join(f"{n} {reason}" for reason, n in reader.skipped.most_common(3))
    if not splits:
        if reader.skipped.get("bad_price", 0) == sum(reader.skipped.values()) and reader.skipped:
            return (
                f"none of its {reader.read} records has a price (evaluate scores estimates against known prices); "
                "to price a catalogue use `rag-pricer price-file`"
            )
        return f"none of its {reader.read} records is a usable item ({reasons or 'the file is empty'})"
    if set(splits) == {None}:
        return f"its {splits[None]} items have no split: pass --split all"
    found = ", ".join(f"{name!r} ({n})" if name else f"no split ({n})" for name, n in splits.most_common())
    return f"its items have the splits {found}: pass --split with one of them, or --split all"


def evaluate(
    strategy: StrategyOpt = None,
    items: ItemsOpt = None,
    split: SplitOpt = "dev",
    limit: LimitOpt = None,
    store: StoreOpt = None,
    llm: LlmOpt = None,
    k: KOpt = None,
    category: CategoryOpt = None,
    mmr: MmrOpt = False,
    workers: WorkersOpt = None,
    option: StrategyOptionsOpt = None,
    chroma_host: ChromaHostOpt = None,
    chroma_port: ChromaPortOpt = None,
    json_out: Annotated[
        Path | None,
        typer.Option(
            "--json", help="Write the full result (metrics, settings, per-item rows) as JSON here ('-': stdout)."
        ),
    ] = None,
    chart: Annotated[
        Path | None,
        typer.Option("--chart", help="Write the charts (scatter, running error, by band, by category) to this PNG."),
    ] = None,
    resamples: ResamplesOpt = 1000,
    seed: SeedOpt = 0,
    progress: ProgressOpt = True,
) -> None:
    """Score a strategy on ITEMS (default: the dev split) and report MAE, RMSLE, hit rate and more,
    with 95% intervals."""
    settings = settings_with(
        store_path=store, llm=llm, chroma_host=chroma_host, chroma_port=chroma_port, items_path=items
    )
    scored_items = load_items(settings.items_path, split, limit)
    try:
        spec = registry.get(strategy or settings.strategy)
        given = {"k": k, "category": category, "mmr": mmr or None, "llm": llm, **parse_options(option)}
        pricer = Estimator.from_settings(settings).pricer(spec.name, given)
        pool, batch_size = schedule(spec.needs, settings.llm_concurrency, workers)
        result = Evaluation(
            pricer,
            scored_items,
            workers=pool,
            batch_size=batch_size,
            bootstrap=Bootstrap(resamples, seed=seed),
            progress=progress and str(json_out) != "-",
            settings=settings.public(),
            options=dict(pricer.options),
        ).run()
    except LeakageError as error:
        fail(str(error))
        return
    except (UnknownStrategy, StoreError, ImportError, OSError, ValueError) as error:
        # e.g. no store, models not trained, a bad --llm spec: say so, without a traceback
        fail(str(error))
        return
    recorded = None
    if split == SCORED_SPLIT and limit is None and result.n and not any((k, category, mmr, option)):
        # the whole split with the strategy's own options: the figure the strategy pickers show
        spec_llm = (result.llm or {}).get("spec")
        again = f"rag-pricer evaluate --strategy {result.strategy} --items {settings.items_path} --split {split}"
        record = ScoreRecord.of(
            result.strategy,
            result.metrics,
            result.n,
            items=str(settings.items_path),
            split=split,
            how="evaluated",
            command=again + (f" --llm {spec_llm}" if spec_llm else ""),
            llm=spec_llm,
        )
        recorded = record.save(settings.models_dir)
    if json_out is not None and str(json_out) == "-":
        typer.echo(result.to_json())
    else:
        show(result)
        if json_out is not None:
            console.print(f"wrote {result.save(json_out)}")
        if recorded is not None:
            console.print(f"recorded its {split} score in {recorded}")
    if chart is not None and result.n:
        from rag_pricer.evaluation.charts import dashboard  # matplotlib only when asked for

        errors.print(f"wrote {dashboard(result, chart)}")
    if not result.n:
        fail(f"all {result.failed} items failed; first error: {result.failures[0].error}", code=1)


def show(result: EvaluationResult) -> None:
    """The metrics as a table, then the counts and the first failures."""
    confidence = f"{result.bootstrap.confidence:.0%}"
    table = Table(title=f"{result.strategy} on {len(result.rows)} items")
    for column, justify in (("metric", "left"), ("value", "right"), (f"{confidence} CI", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for name in METRICS:
        interval = result.metrics.get(name)
        if interval is not None:
            table.add_row(
                LABELS[name][0],
                format_value(name, interval.value),
                f"{format_value(name, interval.low)} – {format_value(name, interval.high)}",
            )
    for name, value in (result.model_metrics or {}).items():
        table.add_row(f"model: {name}", str(value), "")
    ranges = result.ranges()
    if ranges and ranges["n"]:
        table.add_row(f"{ranges['nominal']:.0%} range coverage", f"{ranges['coverage']:.1%}", f"n={ranges['n']}")
        table.add_row("range median width", f"${ranges['median_width']:,.2f}", f"high/low {ranges['median_ratio']:.2f}")
    console.print(table)
    rate = len(result.rows) / result.seconds if result.seconds else float("inf")
    console.print(
        f"scored {result.n}, failed {result.failed}, fallbacks {result.fallbacks}, "
        f"{result.seconds:.1f} s ({rate:.1f} items/s)" + (f", {result.resumed} resumed" if result.resumed else "")
    )
    if ranges and ranges["excluded_calibration_items"]:
        console.print(
            f"range coverage leaves out the {ranges['excluded_calibration_items']} items the range was calibrated on "
            "(see the cross-fitted coverage of `rag-pricer calibrate`)"
        )
    elif ranges is None:
        console.print(f"no price ranges: calibrate with `rag-pricer calibrate --strategy {result.strategy}`")
    for row in result.failures[:5]:
        console.print(f"[red]failed[/] {row.id}: {row.error}")
    if result.failed > 5:
        console.print(f"[red]... and {result.failed - 5} more failures (see --json)[/]")
