"""Retrieval-augmented prompts budgeted in tokens: the comparables and their prices, then the item.

::

    How much does this cost to the nearest dollar?

    Similar products:
    - <comparable 1, cut to N tokens> — $25
    - ...

    Product:
    <description, cut to M tokens>

    Price is $

Each comparable is one line of at most ``comparable_tokens`` tokens of its text (title and
description on one line) followed by its whole-dollar price; the description is cut to
``query_tokens`` tokens; if the whole still exceeds ``max_length`` (completion included), the
least similar comparables are dropped, then the description is cut further. The budget is in
tokens of the model's own tokenizer, so a comparable with a huge description cannot blow up a
prompt, and training and inference, which both encode with this class, read the same ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from rag_pricer.items import PRICE_PREFIX, QUESTION, Item
from rag_pricer.strategies.finetune.examples import COMPLETION_BUDGET, IGNORE, PromptEncoder, completion

COMPARABLES_HEADER = "Similar products:\n"
PRODUCT_HEADER = "\nProduct:\n"


class ComparableLike(Protocol):
    """What a prompt needs of a comparable (``rag_pricer.knowledge.store.Neighbour`` has it).

    Read-only members: a frozen dataclass such as ``Neighbour`` satisfies them."""

    @property
    def title(self) -> str: ...

    @property
    def price(self) -> float: ...

    @property
    def document(self) -> str: ...


def comparable_text(comparable: ComparableLike) -> str:
    """The comparable's text on one line: its stored description (title first), else its title."""
    return " ".join((comparable.document or comparable.title).split())


@dataclass(frozen=True)
class RagPromptEncoder:
    """Encodes prompts with ``k`` comparables, every part cut to its token budget."""

    tokenizer: Any
    k: int = 5
    comparable_tokens: int = 24
    query_tokens: int = 96
    max_length: int = 256

    def __post_init__(self) -> None:
        if self.k < 1 or self.comparable_tokens < 1 or self.query_tokens < 1:
            raise ValueError("k, comparable_tokens and query_tokens must be positive")
        head, middle, tail = self._frame
        if self.max_length - COMPLETION_BUDGET - len(head) - len(middle) - len(tail) < 8:
            raise ValueError(f"max_length {self.max_length} leaves no room for a description")

    def prompt_ids(self, description: str, comparables: Sequence[ComparableLike] = ()) -> list[int]:
        head, middle, tail = self._frame
        budget = self.max_length - COMPLETION_BUDGET - len(head) - len(middle) - len(tail)
        query = self._ids(description.strip())[: self.query_tokens]
        lines = [self._line(c) for c in comparables[: self.k]]
        while lines and sum(map(len, lines)) + len(query) > budget:
            lines.pop()  # the least similar goes first
        query = query[: budget - sum(map(len, lines))]
        return head + [t for line in lines for t in line] + middle + query + tail

    def example(self, item: Item, comparables: Sequence[ComparableLike] = ()) -> dict[str, list[int]]:
        """``input_ids`` and ``labels`` (``IGNORE`` on the prompt: the loss is on the price only)."""
        prompt = self.prompt_ids(item.description, comparables)
        answer = self._ids(completion(item.price))
        return {"input_ids": prompt + answer, "labels": [IGNORE] * len(prompt) + answer}

    def _line(self, comparable: ComparableLike) -> list[int]:
        text = self._ids(comparable_text(comparable))[: self.comparable_tokens]
        return self._bullet + text + self._ids(f" — ${round(comparable.price)}\n")

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @cached_property
    def _bullet(self) -> list[int]:
        return self._ids("- ")

    @cached_property
    def _frame(self) -> tuple[list[int], list[int], list[int]]:
        bos = self.tokenizer.bos_token_id
        adds_bos = bos is not None and self.tokenizer("a")["input_ids"][:1] == [bos]
        head = ([bos] if adds_bos else []) + self._ids(f"{QUESTION}\n\n{COMPARABLES_HEADER}")
        return head, self._ids(PRODUCT_HEADER), self._ids(f"\n\n{PRICE_PREFIX}")


def prompt_encoder(tokenizer: Any, config: Mapping[str, Any]) -> PromptEncoder | RagPromptEncoder:
    """The encoder of a run's recorded configuration: the course prompt when ``k`` is 0 (or absent,
    as in runs recorded before comparables existed), the comparables prompt otherwise. Training
    and the strategy both build their encoder here."""
    k = int(config.get("k", 0) or 0)
    if k == 0:
        return PromptEncoder(tokenizer, int(config["max_length"]))
    return RagPromptEncoder(
        tokenizer, k, int(config["comparable_tokens"]), int(config["query_tokens"]), int(config["max_length"])
    )
