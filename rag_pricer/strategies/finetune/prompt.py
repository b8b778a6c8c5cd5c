"""Prompts as token ids, budgeted in tokens: the course's prompt, or one with comparables.

The course's prompt (``k`` = 0) and the prompt with ``k`` comparables (``rag-finetuned``)::

    How much does this cost to the nearest dollar?     How much does this cost to the nearest dollar?

    <description, cut to fit>                          Similar products:
                                                       - <comparable 1, cut to N tokens> — $25
    Price is $                                         - ...

                                                       Product:
                                                       <description, cut to M tokens>

                                                       Price is $

A prompt is encoded in parts and the parts' ids are joined, so the boundary before the
completion is exact whatever the tokenizer merges, and training and the strategy, which both
encode with ``PromptEncoder``, read the same ids. Each comparable is one line of at most
``comparable_tokens`` tokens of its text (title and description) and its whole-dollar price; the
description is cut to ``query_tokens``; if the whole still exceeds ``max_length`` (completion
included), the least similar comparables are dropped, then the description is cut further. The
budget is in tokens of the model's own tokenizer, so a comparable with a huge description cannot
blow up a prompt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from rag_pricer.items import PRICE_PREFIX, QUESTION, Item

IGNORE = -100
#: room kept for the completion ("999.00" is 6 digit tokens for SmolLM2, 3 for Llama 3)
COMPLETION_BUDGET = 8
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


def completion(price: float) -> str:
    """What the model learns to write after ``Price is $``: the rounded price, as in the course."""
    return f"{round(price)}.00"


def comparable_text(comparable: ComparableLike) -> str:
    """The comparable's text on one line: its stored description (title first), else its title."""
    return " ".join((comparable.document or comparable.title).split())


@dataclass(frozen=True)
class PromptEncoder:
    """Encodes prompts of at most ``max_length`` tokens (completion included): the course's
    prompt when ``k`` is 0, else the prompt with up to ``k`` comparables."""

    tokenizer: Any
    max_length: int = 182
    k: int = 0
    comparable_tokens: int = 24
    query_tokens: int = 96

    def __post_init__(self) -> None:
        if self.k < 0 or self.comparable_tokens < 1 or self.query_tokens < 1:
            raise ValueError("k must be >= 0, comparable_tokens and query_tokens positive")
        if self.k and self._budget < 8:
            raise ValueError(f"max_length {self.max_length} leaves no room for a description")

    def prompt_ids(self, description: str, comparables: Sequence[ComparableLike] = ()) -> list[int]:
        """The prompt's ids; the course prompt (``k`` = 0) does not read ``comparables``."""
        head, middle, tail = self._frame
        budget = self._budget
        if budget < 1:
            raise ValueError(f"max_length {self.max_length} leaves no room for a description")
        query = self._ids(description.strip())
        if not self.k:
            return head + query[:budget] + tail
        query = query[: self.query_tokens]
        lines = [self._line(c) for c in comparables[: self.k]]
        while lines and sum(map(len, lines)) + len(query) > budget:
            lines.pop()  # the least similar goes first
        query = query[: budget - sum(map(len, lines))]
        return head + [t for line in lines for t in line] + middle + query + tail

    def example(self, item: Item, comparables: Sequence[ComparableLike] = ()) -> dict[str, list[int]]:
        """``input_ids`` and ``labels`` of one training example: labels are ``IGNORE`` on the
        prompt, so the loss is on the completion only."""
        prompt = self.prompt_ids(item.description, comparables)
        answer = self._ids(completion(item.price))
        return {"input_ids": prompt + answer, "labels": [IGNORE] * len(prompt) + answer}

    def _line(self, comparable: ComparableLike) -> list[int]:
        text = self._ids(comparable_text(comparable))[: self.comparable_tokens]
        return self._bullet + text + self._ids(f" — ${round(comparable.price)}\n")

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @property
    def _budget(self) -> int:
        """Tokens left for the description and the comparables."""
        head, middle, tail = self._frame
        return self.max_length - COMPLETION_BUDGET - len(head) - len(middle) - len(tail)

    @cached_property
    def _bullet(self) -> list[int]:
        return self._ids("- ")

    @cached_property
    def _frame(self) -> tuple[list[int], list[int], list[int]]:
        """The ids before the comparables (BOS where the tokenizer adds one, the question), between
        them and the description, and after it ("Price is $"): the same for every prompt."""
        # Llama adds <|begin_of_text|>; SmolLM2's tokenizer adds nothing: follow the tokenizer.
        bos = self.tokenizer.bos_token_id
        adds_bos = bos is not None and self.tokenizer("a")["input_ids"][:1] == [bos]
        head = ([bos] if adds_bos else []) + self._ids(f"{QUESTION}\n\n" + (COMPARABLES_HEADER if self.k else ""))
        middle = self._ids(PRODUCT_HEADER) if self.k else []
        return head, middle, self._ids(f"\n\n{PRICE_PREFIX}")


def prompt_encoder(tokenizer: Any, config: Mapping[str, Any]) -> PromptEncoder:
    """The encoder of a run's recorded configuration: the course prompt when ``k`` is 0 (or absent,
    as in runs recorded before comparables existed), the comparables prompt otherwise. Training
    and the strategy both build their encoder here."""
    k = int(config.get("k", 0) or 0)
    if k == 0:
        return PromptEncoder(tokenizer, int(config["max_length"]))
    return PromptEncoder(
        tokenizer, int(config["max_length"]), k, int(config["comparable_tokens"]), int(config["query_tokens"])
    )
