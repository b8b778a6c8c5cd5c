"""Parsers of the Amazon ``details`` fields that the course's feature baseline uses.

Each returns ``None`` for a missing or unreadable value, so that the caller imputes it.
"""

from __future__ import annotations

import re
from typing import Any

# Pounds per unit. "hundredths" (of a pound) appears in the course's own parser.
POUNDS_PER_UNIT = {
    "pound": 1.0,
    "pounds": 1.0,
    "lb": 1.0,
    "lbs": 1.0,
    "ounce": 1 / 16,
    "ounces": 1 / 16,
    "oz": 1 / 16,
    "gram": 1 / 453.59237,
    "grams": 1 / 453.59237,
    "g": 1 / 453.59237,
    "kilogram": 1 / 0.45359237,
    "kilograms": 1 / 0.45359237,
    "kg": 1 / 0.45359237,
    "milligram": 1 / 453_592.37,
    "milligrams": 1 / 453_592.37,
    "mg": 1 / 453_592.37,
    "hundredths": 1 / 100,
}

_AMOUNT_UNIT = re.compile(r"(\d[\d,]*(?:\.\d+)?|\.\d+)\s*([a-zA-Z]+)")
_RANK = re.compile(r"#\s*(\d[\d,]*)")
_NUMBER = re.compile(r"\s*(\d[\d,]*)\s*")
BRAND_KEYS = ("Brand", "Brand Name", "Manufacturer")


def parse_weight(value: Any) -> float | None:
    """``"5 pounds"``, ``"12 Ounces"``, ``"1.2 Kilograms"``, ``"1,200 g"`` ... as pounds."""
    if not isinstance(value, str):
        return None
    match = _AMOUNT_UNIT.search(value)
    if not match:
        return None
    factor = POUNDS_PER_UNIT.get(match.group(2).lower())
    if factor is None:
        return None
    return float(match.group(1).replace(",", "")) * factor


def parse_rank(value: Any) -> float | None:
    """The mean Best Sellers Rank: the data holds ``{category: rank}``; older scrapes hold text
    such as ``"#1,234 in Tools (See Top 100) #56 in Drills"``; a bare number is taken as is."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        ranks = [float(value)]
    elif isinstance(value, dict):
        ranks = [r for r in (parse_rank(v) for v in value.values()) if r is not None]
    elif isinstance(value, str):
        # Only numbers after "#": "(See Top 100 ...)" is not a rank.
        numbers = _RANK.findall(value) or ([value] if _NUMBER.fullmatch(value) else [])
        ranks = [float(n.replace(",", "")) for n in numbers]
    else:
        return None
    ranks = [r for r in ranks if r > 0]
    return sum(ranks) / len(ranks) if ranks else None


def brand_of(details: dict[str, Any]) -> str | None:
    """The brand, lower-cased (``Brand``, else ``Brand Name``, else ``Manufacturer``)."""
    for key in BRAND_KEYS:
        value = details.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    return None
