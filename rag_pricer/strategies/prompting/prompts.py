"""The prompts of the LLM strategies, as LangChain templates (the course's exact wording)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from rag_pricer.items import PRICE_PREFIX, test_prompt
from rag_pricer.knowledge.store import Neighbour

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage
    from langchain_core.prompts import ChatPromptTemplate

SYSTEM = "You estimate prices of items. Reply only with the price, no explanation"
CONTEXT_INTRO = (
    "To provide some context, here are some other items that might be similar to the item you need to estimate.\n\n"
)
QUESTION_INTRO = "And now the question for you:\n\n"


@cache
def _template() -> ChatPromptTemplate:
    # LangChain (the `llm` extra) is imported when a prompt is made, not when a strategy is listed.
    from langchain_core.prompts import ChatPromptTemplate

    return ChatPromptTemplate.from_messages([("system", SYSTEM), ("human", "{prompt}")])


def token_bound(text: str) -> int:
    """An upper bound of the tokens of ``text`` for byte-level BPE tokenizers (GPT-4o's, Llama
    3's, SmolLM2's): its UTF-8 bytes, since every such token covers at least one byte. Counting
    with the packaged MiniLM tokenizer was measured and rejected: on 300 dev items SmolLM2 needs
    1.14x its count (median) and up to 2.1x, and 50 emoji are one MiniLM token but 150 SmolLM2
    tokens, so it cannot bound what a paid API bills. Bytes over-count English ~4x, which the
    budgets below allow for."""
    return len(text.encode("utf-8"))


def cut_to_tokens(text: str, max_tokens: int) -> str:
    """The longest prefix of ``text`` within ``max_tokens`` (``token_bound``), cut at a word."""
    if token_bound(text) <= max_tokens:
        return text
    prefix = text.encode("utf-8")[:max_tokens].decode("utf-8", errors="ignore")
    return _cut(prefix, len(prefix) - 1)


@dataclass(frozen=True)
class PromptBudget:
    """Most tokens (``token_bound``) a prompt may carry, in all (``max_tokens``), per comparable
    product (``product_tokens``) and for the description priced (``query_tokens``). The
    defaults leave the curated data whole (descriptions of at most 1,728 characters; a 5-shot
    rag prompt is ~5,000 bytes) and cap the worst case at 8,192 tokens instead of whatever a
    stored or submitted description holds. Comparables that do not fit are left out."""

    max_tokens: int = 8192
    product_tokens: int = 2048
    query_tokens: int = 4096

    @classmethod
    def of(cls, max_tokens: int) -> PromptBudget:
        """A budget of ``max_tokens`` in all: half for the description, a quarter per product."""
        return cls(max_tokens=max_tokens, product_tokens=min(2048, max_tokens // 4), query_tokens=max_tokens // 2)

    def __post_init__(self) -> None:
        if not 0 < self.query_tokens < self.max_tokens or self.product_tokens < 1:
            raise ValueError("a prompt budget needs 0 < query_tokens < max_tokens and product_tokens >= 1")


def context(
    neighbours: list[Neighbour],
    max_chars: int | None = None,
    budget: PromptBudget | None = None,
    room: int | None = None,
) -> str:
    """The few-shot block: each comparable product with its price, its description cut to
    ``max_chars`` (at a word) when given, to fit small models' context and prefill budget, and
    to the budget's ``product_tokens``; products stop being added once ``room`` tokens are used."""
    budget = budget or PromptBudget()
    room = budget.max_tokens if room is None else room
    block = CONTEXT_INTRO
    for n in neighbours:
        document = cut_to_tokens(_cut(n.document, max_chars), budget.product_tokens)
        shot = f"Potentially related product:\n{document}\nPrice is ${n.price:.2f}\n\n"
        if token_bound(block + shot) > room:
            break
        block += shot
    return block


def _cut(text: str, max_chars: int | None) -> str:
    if max_chars is None or len(text) <= max_chars:
        return text
    return text[:max_chars].rsplit(" ", 1)[0]


def zero_shot_messages(description: str, prefill: bool, budget: PromptBudget | None = None) -> list[BaseMessage]:
    """System + the course's test prompt; the assistant turn starts with "Price is $" when the backend allows."""
    description = cut_to_tokens(description, (budget or PromptBudget()).query_tokens)
    return _with_prefill(_template().format_messages(prompt=test_prompt(description)), prefill)


def rag_messages(
    description: str,
    neighbours: list[Neighbour],
    prefill: bool,
    context_chars: int | None = None,
    budget: PromptBudget | None = None,
) -> list[BaseMessage]:
    """The zero-shot prompt preceded by the comparable products and their prices, within ``budget``."""
    budget = budget or PromptBudget()
    question = QUESTION_INTRO + test_prompt(cut_to_tokens(description, budget.query_tokens))
    room = budget.max_tokens - token_bound(SYSTEM) - token_bound(question)
    prompt = context(neighbours, context_chars, budget, room) + question
    return _with_prefill(_template().format_messages(prompt=prompt), prefill)


def _with_prefill(messages: list[BaseMessage], prefill: bool) -> list[BaseMessage]:
    from langchain_core.messages import AIMessage

    return messages + [AIMessage(content=PRICE_PREFIX)] if prefill else messages
