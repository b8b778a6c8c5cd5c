"""Items as token ids: the course's prompt, the description cut to fit, the loss on the price only.

The prompt is encoded in parts (question, description, "Price is $") and the parts' ids are
joined, so the boundary before the completion is exact whatever the tokenizer merges, and the
strategy encodes its prompts with this same code: what the model reads at inference is token
for token what it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from rag_pricer.items import PRICE_PREFIX, QUESTION, Item

IGNORE = -100
#: room kept for the completion ("999.00" is 6 digit tokens for SmolLM2, 3 for Llama 3)
COMPLETION_BUDGET = 8


def completion(price: float) -> str:
    """What the model learns to write after ``Price is $``: the rounded price, as in the course."""
    return f"{round(price)}.00"


@dataclass(frozen=True)
class PromptEncoder:
    """Encodes prompts of at most ``max_length`` tokens (completion included)."""

    tokenizer: Any
    max_length: int = 182

    def prompt_ids(self, description: str, comparables: Sequence[Any] = ()) -> list[int]:
        """The course prompt reads the description alone: ``comparables`` are accepted (the same
        call as ``rag_prompt.RagPromptEncoder``) and not read."""
        head, tail = self._frame
        budget = self.max_length - COMPLETION_BUDGET - len(head) - len(tail)
        if budget < 1:
            raise ValueError(f"max_length {self.max_length} leaves no room for a description")
        return head + self._ids(description.strip())[:budget] + tail

    def example(self, item: Item, comparables: Sequence[Any] = ()) -> dict[str, list[int]]:
        """``input_ids`` and ``labels`` of one training example: labels are ``IGNORE`` on the
        prompt, so the loss is on the completion only."""
        prompt = self.prompt_ids(item.description)
        answer = self._ids(completion(item.price))
        return {"input_ids": prompt + answer, "labels": [IGNORE] * len(prompt) + answer}

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @cached_property
    def _frame(self) -> tuple[list[int], list[int]]:
        """The ids before the description (BOS where the tokenizer adds one, the question) and
        after it ("Price is $"): the same for every prompt, so encoded once."""
        # Llama adds <|begin_of_text|>; SmolLM2's tokenizer adds nothing: follow the tokenizer.
        bos = self.tokenizer.bos_token_id
        adds_bos = bos is not None and self.tokenizer("a")["input_ids"][:1] == [bos]
        return ([bos] if adds_bos else []) + self._ids(f"{QUESTION}\n\n"), self._ids(f"\n\n{PRICE_PREFIX}")
