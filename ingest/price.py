"""Prices of raw Amazon metadata: a number, a string such as ``"$1,299.99"``, a range, or nothing.

Ranges (``"$10.99 - $15.99"``, listings with variants) resolve to their **low end**: it is the
price of the cheapest variant, the one the listing advertises ("from $10.99"), and a price
somebody actually charged; the mean of the two ends would be a price nobody charged.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from rag_pricer.items import MAX_PRICE, MIN_PRICE, InvalidRecord

# Spellings of "no price" seen in the raw data (the Hugging Face loading script wrote "None").
_MISSING = {"", "none", "null", "nan", "n/a", "na", "-", "--"}
_AMOUNT = r"\$?\s*(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
_PRICE = re.compile(rf"^(?:US\s*)?{_AMOUNT}(?:\s*(?:-|–|—|to)\s*(?:US\s*)?{_AMOUNT})?$", re.IGNORECASE)


def parse_price(value: Any) -> float:
    """The price in ``value``; raises ``InvalidRecord`` ("missing_price" or "bad_price")."""
    if value is None:
        raise InvalidRecord("missing_price")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidRecord("bad_price", repr(value)[:40])
    price = float(value) if not isinstance(value, str) else _parse_text(value)
    if not math.isfinite(price) or price <= 0:
        raise InvalidRecord("bad_price", repr(value)[:40])
    return price


def _parse_text(text: str) -> float:
    cleaned = text.strip()
    if cleaned.lower() in _MISSING:
        raise InvalidRecord("missing_price")
    match = _PRICE.match(cleaned)
    if match is None:
        raise InvalidRecord("bad_price", repr(text)[:40])
    low = float(match.group(1).replace(",", ""))
    high = float(match.group(2).replace(",", "")) if match.group(2) else low
    return min(low, high)  # the low end of a range, whichever way round it was written


@dataclass(frozen=True)
class PriceParser:
    """Parses a raw price and keeps it only within ``[min_price, max_price]``.

    Raises ``InvalidRecord`` with reason "missing_price", "bad_price" or "price_out_of_range".
    """

    min_price: float = MIN_PRICE
    max_price: float = MAX_PRICE

    def __call__(self, value: Any) -> float:
        price = parse_price(value)
        if not self.min_price <= price <= self.max_price:
            raise InvalidRecord("price_out_of_range", f"{price:g}")
        return price
