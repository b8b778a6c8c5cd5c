"""``rag-pricer finetune``: train a LoRA adapter that completes the course's prompt with the price."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from rag_pricer.cli.common import (
    USER_ERRORS,
    StoreOpt,
    TrackOpt,
    console,
    fail,
    require_items,
    settings_with,
    track,
    tracker_for,
)
from rag_pricer.training.finetune.config import RAG_MAX_LENGTH

ItemsOpt = Annotated[
    Path | None, typer.Option("--items", help="Curated items JSONL(.gz) (default: settings items_path).")
]
SplitOpt = Annotated[str, typer.Option("--split", help="Split to train on.")]
BaseOpt = Annotated[
    str | None,
    typer.Option(
        "--base",
        help=(
            "Base model: smollm2 (the packaged GGUF), a .gguf file, a model folder or a hub name. Default: "
            "smollm2 on CPU, Llama-3.1-8B with a GPU."
        ),
    ),
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Run folder (default: MODELS_DIR/finetuned, where the `finetuned` strategy looks)."),
]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help="Train on the first N items of the split.")]
EpochsOpt = Annotated[
    float | None, typer.Option("--epochs", min=0.01, help="Passes over the training items (default 1).")
]
StepsOpt = Annotated[
    int | None, typer.Option("--max-steps", min=1, help="Stop after S optimiser steps (overrides --epochs).")
]
EvalSplitOpt = Annotated[
    str | None, typer.Option("--eval-split", help="Split whose loss is measured while training (e.g. dev).")
]
EvalLimitOpt = Annotated[
    int, typer.Option("--eval-limit", min=1, help="Evaluation items (the first M of --eval-split).")
]
LrOpt = Annotated[float | None, typer.Option("--lr", min=0.0, help="Peak learning rate (cosine schedule, 3% warmup).")]
BatchOpt = Annotated[int | None, typer.Option("--batch-size", min=1, help="Examples per step.")]
RankOpt = Annotated[int | None, typer.Option("--rank", min=1, help="LoRA rank r (alpha = 2r).")]
PrecisionOpt = Annotated[str | None, typer.Option("--precision", help="fp32, or bf16 (autocast; weights stay fp32).")]
EveryOpt = Annotated[int | None, typer.Option("--eval-steps", min=1, help="Steps between evaluations.")]
SaveOpt = Annotated[int | None, typer.Option("--save-steps", min=1, help="Steps between resumable checkpoints.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace a different run already in --out.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the run record as JSON.")]
KOpt = Annotated[
    int,
    typer.Option(
        "--k",
        min=0,
        help=(
            "Comparables in each prompt, retrieved from the store as at inference (never the item itself); 0: the "
            "course prompt. Trains the `rag-finetuned` strategy."
        ),
    ),
]
ComparableTokensOpt = Annotated[
    int | None,
    typer.Option("--comparable-tokens", min=1, help="With --k: tokens of each comparable's text (default 24)."),
]
QueryTokensOpt = Annotated[
    int | None, typer.Option("--query-tokens", min=1, help="With --k: tokens of the description (default 96).")
]
MaxLengthOpt = Annotated[
    int | None,
    typer.Option(
        "--max-length",
        min=32,
        help=f"Tokens of a whole example, price included (default 182, {RAG_MAX_LENGTH} with --k).",
    ),
]
ExtraOpt = Annotated[
    Path | None,
    typer.Option(
        "--extra-items",
        help="Another curated items file whose items are trained on too (all its splits), e.g. items_extra.jsonl.gz.",
    ),
]
ExtraLimitOpt = Annotated[int | None, typer.Option("--extra-limit", min=1, help="The first N of --extra-items.")]


def finetune(
    items: ItemsOpt = None,
    split: SplitOpt = "train",
    base: BaseOpt = None,
    out: OutOpt = None,
    limit: LimitOpt = None,
    epochs: EpochsOpt = None,
    max_steps: StepsOpt = None,
    eval_split: EvalSplitOpt = None,
    eval_limit: EvalLimitOpt = 100,
    lr: LrOpt = None,
    batch_size: BatchOpt = None,
    rank: RankOpt = None,
    precision: PrecisionOpt = None,
    eval_steps: EveryOpt = None,
    save_steps: SaveOpt = None,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
    k: KOpt = 0,
    comparable_tokens: ComparableTokensOpt = None,
    query_tokens: QueryTokensOpt = None,
    max_length: MaxLengthOpt = None,
    extra_items: ExtraOpt = None,
    extra_limit: ExtraLimitOpt = None,
    store: StoreOpt = None,
    track_run: TrackOpt = None,
) -> None:
    """Fine-tune a base model with LoRA so that it completes "Price is $" with the price.

    The loss is on the price completion only. With CUDA: QLoRA (4-bit NF4) with the course's
    defaults; without: LoRA in fp32 on SmolLM2-135M. Writes OUT/adapter, OUT/run.json
    (configuration, base, data ids hash, versions), OUT/metrics.csv and OUT/training.png
    (loss, perplexity, learning rate). Killed runs resume from their last checkpoint when the
    same command is run again.
    """
    from rag_pricer.training.finetune.job import FinetuneJob

    settings = settings_with(items_path=items, store_path=store, track=track_run)
    require_items(settings.items_path)
    tracker = tracker_for(settings)
    changes: dict[str, Any] = {
        "base": base,
        "epochs": epochs,
        "max_steps": max_steps,
        "learning_rate": lr,
        "batch_size": batch_size,
        "precision": precision,
        "eval_steps": eval_steps,
        "save_steps": save_steps,
        "k": k,
        "comparable_tokens": comparable_tokens,
        "query_tokens": query_tokens,
        "max_length": max_length,
        "rank": rank,
    }
    job = FinetuneJob(
        settings,
        changes,
        split=split,
        limit=limit,
        eval_split=eval_split,
        eval_limit=eval_limit,
        extra_items=extra_items,
        extra_limit=extra_limit,
        out=out,
        overwrite=overwrite,
    )
    try:
        # the Trainer prints its progress and logs on stdout: keep stdout for the result
        with contextlib.redirect_stdout(sys.stderr):
            record = job.run(notify=lambda message: typer.echo(message, err=True))
    except (*USER_ERRORS, RuntimeError) as error:
        fail(str(error))
        return
    if as_json:
        typer.echo(json.dumps(record, indent=1))
    else:
        show(record, job.folder)
    if tracker is not None:
        folder = job.folder
        track(lambda: tracker.log_finetune(record, folder), where=str(folder))


def show(record: dict[str, Any], folder: Path) -> None:
    table = Table(title=f"LoRA adapter in {folder / 'adapter'}")
    table.add_column("")
    table.add_column("", justify="right")
    final = record.get("final", {})
    rows = [
        ("base", record["base"]["spec"]),
        ("method", record["config"]["method"]),
        ("training items", f"{record['data']['n_train']:,}"),
        ("steps", str(final.get("steps"))),
        ("train loss", f"{final.get('train_loss', float('nan')):.4f}"),
    ]
    if "eval_loss" in final:
        rows += [("eval loss", f"{final['eval_loss']:.4f}"), ("eval perplexity", f"{final['eval_perplexity']:.3f}")]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(f"metrics: {folder / 'metrics.csv'}, chart: {folder / 'training.png'}, record: {folder / 'run.json'}")
