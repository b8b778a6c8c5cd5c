"""Training batches: examples (``PromptEncoder.example``) left-padded into tensors."""

from __future__ import annotations

from typing import Any

from rag_pricer.strategies.finetune.prompt import IGNORE


def collate(examples: list[dict[str, list[int]]], pad_id: int) -> dict[str, Any]:
    """Left-pad a batch: every completion ends the row, so the loss needs the logits of the last
    positions only (the model's vocabulary projection is a fifth of its compute). Position ids
    count real tokens, so padding does not shift them."""
    import torch

    width = max(len(e["input_ids"]) for e in examples)
    ids, labels, mask = [], [], []
    for e in examples:
        pad = width - len(e["input_ids"])
        ids.append([pad_id] * pad + e["input_ids"])
        labels.append([IGNORE] * pad + e.get("labels", e["input_ids"]))
        mask.append([0] * pad + [1] * len(e["input_ids"]))
    attention = torch.tensor(mask)
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    return {
        "input_ids": torch.tensor(ids),
        "attention_mask": attention,
        "position_ids": positions,
        "labels": torch.tensor(labels),
    }
