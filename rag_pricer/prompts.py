"""The prompts of the LLM strategies, as LangChain templates (the course's exact wording)."""

from __future__ import annotations

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.prompts import ChatPromptTemplate

from rag_pricer.items import PRICE_PREFIX, test_prompt
from rag_pricer.store import Neighbour

SYSTEM = "You estimate prices of items. Reply only with the price, no explanation"
CONTEXT_INTRO = "To provide some context, here are some other items that might be similar to the item you need to estimate.\n\n"
QUESTION_INTRO = "And now the question for you:\n\n"

_TEMPLATE = ChatPromptTemplate.from_messages([("system", SYSTEM), ("human", "{prompt}")])


def context(neighbours: list[Neighbour], max_chars: int | None = None) -> str:
    """The few-shot block: each comparable product with its price, its description cut to
    ``max_chars`` (at a word) when given, to fit small models' context and prefill budget."""
    shots = "".join(
        f"Potentially related product:\n{_cut(n.document, max_chars)}\nPrice is ${n.price:.2f}\n\n" for n in neighbours
    )
    return CONTEXT_INTRO + shots


def _cut(text: str, max_chars: int | None) -> str:
    if max_chars is None or len(text) <= max_chars:
        return text
    return text[:max_chars].rsplit(" ", 1)[0]


def zero_shot_messages(description: str, prefill: bool) -> list[BaseMessage]:
    """System + the course's test prompt; the assistant turn starts with "Price is $" when the backend allows."""
    return _with_prefill(_TEMPLATE.format_messages(prompt=test_prompt(description)), prefill)


def rag_messages(
    description: str, neighbours: list[Neighbour], prefill: bool, context_chars: int | None = None
) -> list[BaseMessage]:
    """The zero-shot prompt preceded by the comparable products and their prices."""
    prompt = context(neighbours, context_chars) + QUESTION_INTRO + test_prompt(description)
    return _with_prefill(_TEMPLATE.format_messages(prompt=prompt), prefill)


def _with_prefill(messages: list[BaseMessage], prefill: bool) -> list[BaseMessage]:
    return messages + [AIMessage(content=PRICE_PREFIX)] if prefill else messages
