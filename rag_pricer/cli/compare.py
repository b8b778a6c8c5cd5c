"""``rag-pricer compare``: several strategies on the same items, side by side, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from rag_pricer.cli.common import (
    CategoryOpt,
    ChromaHostOpt,
    ChromaPortOpt,
    KOpt,
    LlmOpt,
    MmrOpt,
    StoreOpt,
    StrategyOptionsOpt,
    TrackOpt,
    console,
    fail,
    parse_options,
    settings_with,
    track,
    tracker_for,
)
from rag_pricer.cli.evaluate import (
    ItemsOpt,
    LimitOpt,
    ProgressOpt,
    ResamplesOpt,
    SeedOpt,
    SplitOpt,
    WorkersOpt,
    load_items,
)
from rag_pricer.evaluation import Bootstrap, Comparison, LeakageError, resolve_strategies
from rag_pricer.evaluation.metrics import format_value
from rag_pricer.evaluation.report import llms_used, ranked
from rag_pricer.pricing.registry import UnknownStrategy
from rag_pricer.pricing.resources import Resources


def compare(
    strategies: Annotated[
        str,
        typer.Option(
            "--strategies", help="Comma-separated names, 'all-cpu' (every strategy that needs no GPU) or 'all'."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Directory for comparison.md, charts and each run's JSON.", file_okay=False)
    ],
    items: ItemsOpt = None,
    split: SplitOpt = "dev",
    limit: LimitOpt = None,
    store: StoreOpt = None,
    llm: LlmOpt = None,
    k: KOpt = None,
    category: CategoryOpt = None,
    mmr: MmrOpt = False,
    workers: WorkersOpt = None,
    chroma_host: ChromaHostOpt = None,
    chroma_port: ChromaPortOpt = None,
    cache: Annotated[
        Path | None,
        typer.Option("--cache", help="Where finished runs are kept for reuse (default: OUT/cache).", file_okay=False),
    ] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Ignore cached runs and score everything again.")] = False,
    option: StrategyOptionsOpt = None,
    resamples: ResamplesOpt = 1000,
    seed: SeedOpt = 0,
    progress: ProgressOpt = True,
    track_run: TrackOpt = None,
) -> None:
    """Run STRATEGIES on the same items and write OUT/comparison.md (sorted by MAE), charts and JSON.

    Reruns reuse finished runs (same strategy, options, store and items), so an interrupted
    comparison picks up where it stopped."""
    settings = settings_with(
        store_path=store, llm=llm, chroma_host=chroma_host, chroma_port=chroma_port, items_path=items, track=track_run
    )
    tracker = tracker_for(settings)
    scored_items = load_items(settings.items_path, split, limit)
    try:
        names = resolve_strategies(strategies)
        outcome = Comparison(
            Resources(settings),
            names,
            scored_items,
            out,
            options={"k": k, "category": category, "mmr": mmr or None, "llm": llm, **parse_options(option)},
            workers=workers,
            bootstrap=Bootstrap(resamples, seed=seed),
            cache_dir=cache,
            fresh=fresh,
            progress=progress,
            description=f"{len(scored_items)} items of split `{split}` from `{settings.items_path}`"
            + (f" (first {limit})" if limit else "")
            + ".",
        ).run()
    except LeakageError as error:
        fail(str(error))
        return
    except (UnknownStrategy, ValueError) as error:
        fail(str(error))
        return
    table = Table(title=f"{len(scored_items)} items, sorted by MAE", box=box.SIMPLE_HEAD)
    widest = max((len(r.strategy) + 1 for r in outcome.results), default=8)
    table.add_column("strategy", min_width=widest)  # names stay whole; numbers give way on narrow terminals
    for column in ("MAE", "95% CI", "hit rate", "RMSLE", "n", "failed", "seconds"):
        table.add_column(column, justify="right")
    for result in ranked(outcome.results):
        mae = result.metrics.get("mae")
        table.add_row(
            result.strategy + ("*" if result.strategy in outcome.reused else ""),
            format_value("mae", result.value("mae")),
            f"${mae.low:,.0f}–{mae.high:,.0f}" if mae else "-",
            format_value("hit_rate", result.value("hit_rate")),
            format_value("rmsle", result.value("rmsle")),
            str(result.n),
            str(result.failed),
            f"{result.seconds:.1f}",
        )
    if outcome.reused:
        table.caption = "* cached: finished earlier with the same options and items (--fresh to rerun)"
    console.print(table)
    for described, names in llms_used(outcome.results).items():
        console.print(f"LLM of {', '.join(names)}: {described}")
    for line in skipped_lines(outcome.skipped):
        console.print(f"[yellow]{line}[/]")
    console.print(f"wrote {out / 'comparison.md'}")
    if tracker is not None:
        params = {
            "strategies": strategies,
            "items": settings.items_path,
            "split": split,
            "limit": limit,
            "n_items": len(scored_items),
            "store": settings.chroma_host or settings.store_path,
            "llm": llm,
            "k": k,
            "resamples": resamples,
            "seed": seed,
            **{f"option.{name}": value for name, value in parse_options(option).items()},
        }
        track(lambda: tracker.log_comparison(outcome, out, params), where=str(out))
    if not outcome.results:
        fail("no strategy could run", code=1)


def skipped_lines(skipped: dict[str, str]) -> list[str]:
    """One line per reason, naming every strategy skipped for it: ten untrained baselines are one
    hint with the command to run, not ten near-identical lines. ``skipped`` maps a strategy to
    ``"ErrorType: message"``; a message's own advice (from "run `") is what groups it."""
    groups: dict[tuple[str, str], list[str]] = {}
    for name, reason in skipped.items():
        kind, _, message = reason.partition(": ")
        advice = message[message.index("run `") :] if "run `" in message else message
        groups.setdefault((kind, advice), []).append(name)
    return [f"skipped {', '.join(names)} ({kind}): {advice}" for (kind, advice), names in groups.items()]
