"""The Hugging Face ``Trainer`` with the loss on the price completion only."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers import Trainer

from rag_pricer.strategies.finetune.prompt import IGNORE


def completion_loss(model: Any, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy over the labelled (completion) tokens, and their count.

    Batches are left-padded (``examples.collate``), so every labelled token lies in the last
    ``n`` positions: only those logits are computed (``logits_to_keep``), which spares most of
    the vocabulary projection and its gradient."""
    labels = batch["labels"]
    labelled = labels != IGNORE
    first = torch.where(labelled.any(dim=1), labelled.float().argmax(dim=1), labels.shape[1])
    n = max(int(labels.shape[1] - first.min()), 1)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids") if k in batch}
    logits = model(**inputs, logits_to_keep=n + 1).logits[:, :-1]  # position p predicts token p + 1
    target = labels[:, -n:]
    total = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE, reduction="sum"
    )
    return total, (target != IGNORE).sum()


class CompletionTrainer(Trainer):
    """``Trainer`` whose loss is ``completion_loss``: the mean over the batch's completion
    tokens, or over the whole accumulated step when the Trainer passes ``num_items_in_batch``."""

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        total, count = completion_loss(model, inputs)
        denominator = num_items_in_batch if num_items_in_batch is not None else count
        loss = total / torch.clamp(torch.as_tensor(denominator, device=total.device), min=1)
        return (loss, {"loss": loss}) if return_outputs else loss
