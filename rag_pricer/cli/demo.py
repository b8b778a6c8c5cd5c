"""``rag-pricer demo``: the main job's last step, a few dev items priced next to their truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rag_pricer.cli.common import (
    USER_ERRORS,
    LlmOpt,
    StoreOpt,
    StrategyOpt,
    console,
    estimator_with,
    fail,
    require_items,
)
from rag_pricer.items import read_items


def demo(
    n: Annotated[int, typer.Option("--n", min=1, max=100, help="How many dev items to price.")] = 5,
    items: Annotated[Path | None, typer.Option(help="Items file (default: settings items_path).")] = None,
    split: Annotated[str, typer.Option(help="Split to take the items from.")] = "dev",
    strategy: StrategyOpt = None,
    llm: LlmOpt = None,
    store: StoreOpt = None,
) -> None:
    """Price the first N items of a split and print estimate vs truth with the top comparables."""
    estimator = estimator_with(store_path=store, llm=llm, items_path=items)
    path = require_items(estimator.settings.items_path)
    chosen = read_items(path, split=split, limit=n)
    try:
        pricer = estimator.pricer(strategy)
        estimates = pricer.estimate_many(chosen)
    except USER_ERRORS as error:
        fail(str(error))
        return
    # e.g. the ensemble, fitted on dev: its errors on its own fitting items measure nothing
    seen = pricer.leaked_ids([item.id for item in chosen])
    table = Table(title=f"{estimates[0].strategy}: {len(chosen)} {split} items from {path}")
    for column in ("item", "truth", "estimate", "error", "closest comparables (price)"):
        table.add_column(column, justify="right" if column in ("truth", "estimate", "error") else "left")
    for item, est in zip(chosen, estimates):
        shown = "; ".join(f"{c.title[:38]} (${c.price:,.0f})" for c in est.comparables[:2])
        flag = " *" if est.fallback else ""
        table.add_row(
            item.title[:45],
            f"${item.price:,.2f}",
            f"${est.price:,.2f}{flag}",
            f"${abs(est.price - item.price):,.2f}",
            shown,
        )
    console.print(table)
    mae = sum(abs(e.price - i.price) for i, e in zip(chosen, estimates)) / len(chosen)
    console.print(f"mean absolute error on these {len(chosen)} items: ${mae:,.2f}  (* = LLM fallback to knn)")
    if seen:
        console.print(
            f"{len(seen)} of these items were used to fit {pricer.name}: its errors on them are not a measure "
            "(`rag-pricer strategies` shows its measured dev error)"
        )
