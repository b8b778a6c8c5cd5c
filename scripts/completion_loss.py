"""Completion-token loss and perplexity of a fine-tuned run and of its base model on the same items
(the Trainer's evaluation loss, computed the same way, for the model before and after).

    python scripts/completion_loss.py --items ../shared/data/items.jsonl.gz --split dev --limit 100 \\
        --run var/models/finetuned
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from rag_pricer.items import read_items
from rag_pricer.strategies.finetune.price_model import PriceModel
from rag_pricer.training.finetune.batches import collate
from rag_pricer.training.finetune.trainer import completion_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=Path, required=True)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--run", type=Path, default=Path("var/models/finetuned"))
    parser.add_argument("--cache-dir", type=Path, default=Path("var/models/base"))
    args = parser.parse_args()
    items = read_items(args.items, split=args.split, limit=args.limit)
    for adapter in (False, True):
        model, encoder, _ = PriceModel(args.run, args.cache_dir, adapter=adapter).load()
        total = count = 0.0
        with torch.inference_mode():
            for start in range(0, len(items), 10):
                batch = collate([encoder.example(i) for i in items[start : start + 10]], encoder.tokenizer.pad_token_id)
                summed, n = completion_loss(model, batch)
                total, count = total + float(summed), count + int(n)
        loss = total / count
        print(
            f"{'fine-tuned' if adapter else 'base':10}  loss {loss:.4f}  perplexity {math.exp(loss):.3f}  "
            f"({len(items)} {args.split} items)"
        )


if __name__ == "__main__":
    main()
