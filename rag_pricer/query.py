"""What every strategy takes: a description ready to price (``Query``)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from rag_pricer.items import Item, parse_details


class InvalidQuery(ValueError):
    """A description that cannot be priced (empty, no visible text, not text)."""


def has_visible_text(text: str) -> bool:
    """Whether ``text`` holds a character someone can see: a letter, digit, punctuation mark or
    symbol. Blanks, control and format characters (NUL, zero-width spaces and joiners, BOM, soft
    hyphen, direction marks) and lone combining marks are not: a description of only those is
    empty, and would otherwise be priced from whatever happens to lie near nothing."""
    return any(unicodedata.category(char)[0] in "LNPS" for char in text)


@dataclass(frozen=True)
class Query:
    """A description ready to price. ``id`` (when it comes from a known item) lets retrieval
    leave the item itself out of its own evidence; ``truncated`` records that it was cut."""

    text: str
    id: str | None = None
    category: str | None = None
    #: raw details JSON of an Item (weight, rank, brand ...), for strategies that use them
    details: str | None = None
    truncated: bool = False

    def details_dict(self) -> dict[str, Any]:
        """``details`` parsed (``{}`` for a free-text query, or details that are not a JSON object)."""
        return parse_details(self.details)

    @classmethod
    def of(cls, value: str | Item | Query, max_chars: int = 4000) -> Query:
        if isinstance(value, Query):
            return value
        details = None
        if isinstance(value, Item):
            text, item_id, category, details = value.description, value.id, value.category, value.details
        elif isinstance(value, str):
            text, item_id, category = value, None, None
        else:
            raise InvalidQuery(f"a description must be text, not {type(value).__name__}")
        text = text.strip()
        if not text:
            raise InvalidQuery("the description is empty")
        if not has_visible_text(text):
            raise InvalidQuery("the description is empty: it has no visible text")
        truncated = len(text) > max_chars
        # Cut at a word boundary: the embedding model reads ~256 tokens anyway, the LLM a few hundred.
        if truncated:
            text = text[:max_chars].rsplit(" ", 1)[0]
        return cls(text=text, id=item_id, category=category, details=details, truncated=truncated)
