"""Fine-tuning speed on this machine: LoRA training steps and fine-tuned pricing per item.

Target (issue 5): a useful CPU run on a few thousand train items within an hour on 2 cores.

Training: optimiser steps of the real configuration (SmolLM2-135M, LoRA r 16 on q/k/v/o,
batch 8 of real train prompts cut to 182 tokens, completion-only loss) in fp32 and with bf16
autocast, taking turns step by step so that machine noise hits both alike; medians after a
warm-up step, and the hour's worth of items each gives. Pricing: the fine-tuned run in
``--run`` priced on dev items (one prompt pass plus a short pass per digit level), seconds per
item. Prints a table and writes ``benchmarks/out/finetune.json``.

    python -m benchmarks.finetune --run var/models/finetuned

With a run trained on comparables (``rag-pricer finetune --k``), training steps and pricing use
its prompt (``strategies.finetune.prompt``, the run's recorded budget) and the comparables it cached
(``comparables.jsonl``: train items and the dev items it evaluated on), so the figures are those
of that run's prompts:

    python -m benchmarks.finetune --run var/models/rag-finetuned --items 40
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.support import ROOT
from rag_pricer.items import read_items
from rag_pricer.knowledge.store import Neighbour
from rag_pricer.strategies.finetune.base_model import BaseCheckpoint, load_tokenizer
from rag_pricer.strategies.finetune.price_model import PriceModel
from rag_pricer.strategies.finetune.prompt import prompt_encoder
from rag_pricer.strategies.finetune.run_folder import read_run
from rag_pricer.training.finetune.batches import collate
from rag_pricer.training.finetune.comparables import Comparables
from rag_pricer.training.finetune.config import FinetuneConfig
from rag_pricer.training.finetune.trainer import completion_loss

OUT = ROOT / "benchmarks" / "out"
DATA = Path(os.environ.get("RAG_PRICER_DATA_DIR", ROOT.parent / "shared" / "data"))


def cached_comparables(run: Path) -> Comparables:
    """The comparables a run trained with comparables retrieved and cached (empty otherwise)."""
    path = run / "comparables.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    return {row["id"]: [Neighbour(**n) for n in row["comparables"]] for row in rows}


def run_config(run: Path) -> FinetuneConfig:
    """The configuration of ``run`` when it has comparables, else the CPU defaults."""
    if (run / "run.json").is_file() and read_run(run)["config"].get("k"):
        recorded = read_run(run)["config"]
        return FinetuneConfig.cpu(
            **{
                k: v
                for k, v in recorded.items()
                if k in ("k", "comparable_tokens", "query_tokens", "max_length", "batch_size", "r", "alpha")
            }
        )
    return FinetuneConfig.cpu()


def training_steps(cache_dir: Path, steps: int, config: FinetuneConfig, comparables: Comparables) -> dict[str, Any]:
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    checkpoint = BaseCheckpoint.resolve(config.base).checkpoint(cache_dir)
    encoder = prompt_encoder(load_tokenizer(checkpoint), config.record())
    items = read_items(DATA / "items.jsonl.gz", split="train", limit=config.batch_size * (steps + 1))
    batches = [
        collate(
            [encoder.example(i, comparables.get(i.id, ())) for i in items[s : s + config.batch_size]],
            encoder.tokenizer.pad_token_id,
        )
        for s in range(0, len(items), config.batch_size)
    ]
    runs = {}
    for precision in ("fp32", "bf16"):
        model = get_peft_model(
            AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32), config.lora_config()
        )
        runs[precision] = (
            model,
            torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate),
        )
    times: dict[str, list[float]] = {p: [] for p in runs}
    for batch in batches:  # the two precisions take turns
        for precision, (model, optimiser) in runs.items():
            started = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                total, count = completion_loss(model, batch)
            (total / count).backward()
            optimiser.step()
            optimiser.zero_grad()
            times[precision].append(time.perf_counter() - started)
    tokens = float(statistics.mean(int(b["attention_mask"].sum()) for b in batches))
    result = {}
    for precision, seconds in times.items():
        step = statistics.median(seconds[1:])
        result[precision] = {
            "step_s": round(step, 3),
            "tokens_per_s": round(tokens / step, 1),
            "items_per_hour": int(3600 / step * config.batch_size),
        }
    return {
        "batch_size": config.batch_size,
        "max_length": config.max_length,
        "k": config.k,
        "r": config.r,
        "steps_timed": steps,
        "mean_tokens_per_example": round(tokens / config.batch_size, 1),
        **result,
    }


def pricing(run: Path, cache_dir: Path, n: int, comparables: Comparables) -> dict[str, Any]:
    model = PriceModel(run, cache_dir)
    started = time.perf_counter()
    model.load()
    load_s = time.perf_counter() - started
    items = read_items(DATA / "items.jsonl.gz", split="dev", limit=n)
    if model.k and any(i.id not in comparables for i in items):
        raise SystemExit(f"--items {n}: the run cached comparables for fewer dev items; lower --items")
    seconds = []
    for item in items:
        started = time.perf_counter()
        model.distribution(item.description, comparables.get(item.id, ()))
        seconds.append(time.perf_counter() - started)
    return {
        "load_s": round(load_s, 2),
        "items": n,
        "median_s_per_item": round(statistics.median(seconds), 3),
        "p90_s_per_item": round(sorted(seconds)[int(0.9 * len(seconds))], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--run", type=Path, default=ROOT / "var" / "models" / "finetuned", help="a finished fine-tuning run"
    )
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "var" / "models" / "base")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--items", type=int, default=40)
    args = parser.parse_args()
    figures: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch_threads": torch.get_num_threads(),
            "load_average_before": os.getloadavg(),
        }
    }
    comparables = cached_comparables(args.run)
    figures["training"] = training_steps(args.cache_dir, args.steps, run_config(args.run), comparables)
    if (args.run / "run.json").is_file():
        figures["pricing"] = pricing(args.run, args.cache_dir, args.items, comparables)
    figures["machine"]["load_average_after"] = os.getloadavg()
    out = OUT / ("rag-finetune.json" if figures["training"]["k"] else "finetune.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=1) + "\n")
    training = figures["training"]
    print(
        f"LoRA step, batch {training['batch_size']} x <= {training['max_length']} tokens (mean "
        f"{training['mean_tokens_per_example']}), "
        f"k {training['k']} comparables, r {training['r']}:"
    )
    for precision in ("fp32", "bf16"):
        t = training[precision]
        print(
            f"  {precision:5} {t['step_s']:.2f} s/step  {t['tokens_per_s']:.0f} tokens/s  {t['items_per_hour']:,} "
            "items/hour"
        )
    print(
        f"  bf16 autocast speed-up: {training['fp32']['step_s'] / training['bf16']['step_s']:.2f}x (same run, "
        "steps interleaved)"
    )
    if "pricing" in figures:
        p = figures["pricing"]
        print(
            f"pricing: load {p['load_s']} s, {p['median_s_per_item']} s/item median, {p['p90_s_per_item']} s p90 "
            f"({p['items']} dev items)"
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
