"""Removes the noise of Amazon product text that tells nothing about the price.

Rules (after the course's ``items.py``/``parser.py``, llm_engineering week 6):
- HTML tags and entities, brackets, braces and quotes become spaces;
- part-number-like tokens (7+ upper-case letters/digits/hyphens with at least one letter and
  one digit, e.g. ``B075ZXP9XL``, ``WR57X10032``) are dropped: they are identifiers that cost
  tokens and only help a model memorise; lower-case units such as ``4000mAh`` are kept;
- runs of the same punctuation (``",,,"``, ``"!!!"``, ``"-----"``) collapse to one mark and
  spaces before punctuation go;
- whitespace collapses to single spaces;
- boilerplate ``details`` keys (dates, ranks, model numbers, battery yes/no...) are dropped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

BOILERPLATE_DETAIL_KEYS = frozenset(
    key.casefold()
    for key in (
        "Batteries Included?",
        "Batteries Required?",
        "Date First Available",
        "Best Sellers Rank",
        "Customer Reviews",
        "Is Discontinued By Manufacturer",
        "Discontinued",
        "Item model number",
        "Model Number",
        "Part Number",
        "Manufacturer Part Number",
        "UPC",
        "ASIN",
        "ISBN-10",
        "ISBN-13",
        "Domestic Shipping",
        "International Shipping",
        "Release date",
    )
)

_TAGS = re.compile(r"<[^>]{0,200}>")
_BRACKETS = re.compile(r"[\[\]{}【】\"“”]+")
_PART_NUMBER = re.compile(r"\b(?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])[A-Z0-9][A-Z0-9-]{5,}[A-Z0-9]\b")
_PUNCT_RUN = re.compile(r"([^\w\s])(?:\s*\1)+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")
_SPACES = re.compile(r"\s+")
_EDGE_JUNK = re.compile(r"^[\s,;:.\-]+|[\s,;:\-]+$")


@dataclass(frozen=True)
class Scrubber:
    """Cleans free text and renders a ``details`` mapping without its boilerplate keys."""

    drop_detail_keys: frozenset[str] = BOILERPLATE_DETAIL_KEYS
    drop_part_numbers: bool = True

    def clean(self, text: str) -> str:
        """``text`` with markup, part numbers, punctuation runs and extra whitespace removed."""
        text = _TAGS.sub(" ", html.unescape(text))
        text = _BRACKETS.sub(" ", text)
        if self.drop_part_numbers:
            text = _PART_NUMBER.sub(" ", text)
        text = _SPACES.sub(" ", text)
        text = _PUNCT_RUN.sub(r"\1", text)
        text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
        return _EDGE_JUNK.sub("", text)

    def details(self, details: Mapping[str, Any]) -> str:
        """``"Key: value; Key: value"`` for the informative keys, each value cleaned."""
        parts = []
        for key, value in details.items():
            if str(key).strip().casefold() in self.drop_detail_keys:
                continue
            cleaned = self.clean(_flatten(value))
            if cleaned:
                parts.append(f"{self.clean(str(key))}: {cleaned}")
        return "; ".join(parts)


def _flatten(value: Any) -> str:
    # Nested values (a dict of ranks, a list of sizes) read as "k v, k v" / "a, b".
    if isinstance(value, Mapping):
        return ", ".join(f"{key} {_flatten(inner)}" for key, inner in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_flatten(inner) for inner in value)
    return "" if value is None else str(value)
