"""``Listing``: what a baseline reads of one product (text, category, details)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rag_pricer.query import Query
from rag_pricer.items import Item

ListingLike = Item | Query | str


@dataclass(frozen=True)
class Listing:
    """The inputs of a baseline. ``details`` is the parsed ``Item.details`` (``{}`` when absent:
    a free-text query has none, and the feature-based baselines then impute training means)."""

    text: str
    category: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, value: ListingLike | Listing) -> Listing:
        if isinstance(value, Listing):
            return value
        if isinstance(value, Item):
            return cls(value.description, value.category, value.details_dict())
        if isinstance(value, Query):
            return cls(value.text, value.category, parse_details(value.details))
        if isinstance(value, str):
            return cls(value)
        raise TypeError(f"cannot price a {type(value).__name__}: give an Item, a Query or a text")


def parse_details(value: Any) -> dict[str, Any]:
    """Details given as a dict or as the JSON string of ``Item.details``; anything else is ``{}``."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip():
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}
