"""Read a price out of an LLM's answer.

``parse_price`` turns free text into a number or ``None``; ``PriceGuard`` then says whether
that number is a believable product price. The choices, where an answer is ambiguous:

- **Which number.** An answer that *starts* with a number gives that number: it is the
  continuation of a ``"Price is $"`` prefill (``"20.00 for a 2 pack, was $40"`` is 20), or a
  bare answer. Otherwise a number marked as money wins: a currency sign or code before it
  (``$30``, ``US$30``, ``€30``), a currency word after it (``30 dollars``, ``30 bucks``), or a
  price cue just before it (``price is 30``, ``costs 30``); the first marked number is taken.
  Without any, the first number is. A number followed by a unit (``2 pack``, ``12V``, ``50%``)
  is a quantity and is never taken alone.
- **Ranges** (``45-50``, ``$45 to $50``, ``between 45 and 50``) give their midpoint (47.5):
  the single guess that is off by the least when the truth is anywhere in the range.
- **Separators.** ``1,299.99`` is US style; ``1.299,99`` (a dot-grouped number ending in a
  comma and 1-2 digits) is European style, 1299.99; ``12,50`` (one comma, 1-2 digits) is a
  decimal comma, 12.5; ``1.299`` is a decimal point, 1.299 (an LLM pricing in USD writes
  thousands with commas).
- **Suffix** ``k``/``K`` multiplies by 1,000 (``1.5k`` is 1500).
- **Other currencies** are not converted (``€30`` is 30): there is no rate to convert with, and
  a model asked for USD that answers in euros is close enough; ``parse_price_details`` reports
  the currency so that a caller can note it.
- **Negative numbers** (``-5``, ``$-5``) are not prices: ``None``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUMBER = r"""
    \d{1,3}(?:,\d{3})+(?:\.\d+)?     # 1,299 or 1,299.99
  | \d{1,3}(?:\.\d{3})+,\d{1,2}(?!\d) # 1.299,99 (European)
  | \d+,\d{1,2}(?![\d,])             # 12,50 (decimal comma)
  | \d+(?:\.\d+)?                    # 45 or 45.99
  | \.\d+                            # .99
"""
_SIGN = r"(?:US\$|USD|EUR|GBP|[$€£¥])"
_PRICE = re.compile(
    rf"""
    (?P<between>\bbetween\s+)?
    (?P<pre>{_SIGN}\s?)?
    (?P<neg>(?<![\w.,])[-−]\s?)?
    (?P<pre2>{_SIGN}\s?)?
    (?<![\w.,])(?P<a>{_NUMBER})(?P<ak>\s?[kK]\b)?
    (?:
        \s*(?P<sep>-|–|—|\bto\b|\band\b)\s*
        {_SIGN}?\s?(?P<b>{_NUMBER})(?P<bk>\s?[kK]\b)?
    )?
    (?P<post>\s?(?:dollars?|bucks|usd|euros?|eur|pounds?|gbp)\b)?
    """,
    re.VERBOSE | re.IGNORECASE,
)
_CUE = re.compile(
    r"(?:price|priced|cost|costs|sells?|worth|estimate|estimated|msrp|retail)\b[^.\d$€£¥]{0,12}$", re.IGNORECASE
)
_UNIT = re.compile(
    r"^\s?-?\s?(?:%|x\b|pack|pk\b|pcs?\b|pieces?|count|ct\b|sets?\b|pairs?\b|inch|in\b|\"|'|ft\b|feet|mm\b|cm\b|m\b|"
    r"lbs?\b|oz\b|g\b|kg\b|ml\b|l\b|v\b|volts?|w\b|watts?|mah\b|gb\b|tb\b|hz\b|ghz\b|years?|months?|days?|hours?)",
    re.IGNORECASE,
)
_CURRENCIES = {
    "$": "USD",
    "us$": "USD",
    "usd": "USD",
    "dollar": "USD",
    "dollars": "USD",
    "bucks": "USD",
    "€": "EUR",
    "eur": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "£": "GBP",
    "gbp": "GBP",
    "pound": "GBP",
    "pounds": "GBP",
    "¥": "JPY",
}


@dataclass(frozen=True)
class ParsedPrice:
    """A price found in text: ``value`` (the midpoint of ``low``-``high`` for a range), the
    ``currency`` it was marked with (``None`` when unmarked) and the text it was read from."""

    value: float
    low: float
    high: float
    currency: str | None
    source: str

    @property
    def is_range(self) -> bool:
        return self.low != self.high


def _number(text: str, thousands: str | None) -> float:
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+,\d{1,2}", text):
        value = float(text.replace(".", "").replace(",", "."))
    elif re.fullmatch(r"\d+,\d{1,2}", text):
        value = float(text.replace(",", "."))
    else:
        value = float(text.replace(",", ""))
    return value * 1000 if thousands else value


def _is_range(match: re.Match[str]) -> bool:
    """Whether a two-number match reads as a range: "and" only after "between", ascending."""
    if match.group("sep").lower() == "and" and not match.group("between"):
        return False
    return _number(match.group("a"), match.group("ak")) < _number(match.group("b"), match.group("bk"))


def _currency(match: re.Match[str]) -> str | None:
    for group in ("pre", "pre2", "post"):
        if match.group(group):
            return _CURRENCIES.get(match.group(group).strip().lower())
    return None


def parse_price_details(text: str | None) -> ParsedPrice | None:
    """The price in ``text`` with how it was read, or ``None`` (see the module's rules)."""
    if not text or not text.strip():
        return None
    chosen: tuple[re.Match[str], str | None] | None = None
    for match in _PRICE.finditer(text):
        if match.group("b") and not _is_range(match):
            # "2 and 3", "$30 - 2 pack": two numbers, not a range; re-read only the first.
            # The same start, cut shorter, always matches again; ``or match`` only tells mypy so.
            match = _PRICE.match(text, match.start(), match.end("ak") if match.group("ak") else match.end("a")) or match
        currency = _currency(match)
        marked = currency is not None or bool(_CUE.search(text[: match.start()]))
        if not marked and _UNIT.match(text[match.end() :]) and not match.group("b"):
            continue  # "2 pack", "12V": a quantity, not a price
        leading = not text[: match.start()].strip()
        if marked or leading:
            chosen = (match, currency)
            break
        if chosen is None:
            chosen = (match, None)
    if chosen is None:
        return None
    match, currency = chosen
    if match.group("neg"):
        return None
    low = _number(match.group("a"), match.group("ak"))
    high = _number(match.group("b"), match.group("bk")) if match.group("b") else low
    return ParsedPrice((low + high) / 2, low, high, currency, match.group(0).strip())


def parse_price(text: str | None) -> float | None:
    """The price in an LLM's answer, or ``None`` when it holds none.

    >>> parse_price("Price is $1,299.99")
    1299.99
    >>> parse_price("2 pack for $30")
    30.0
    >>> parse_price("45-50")
    47.5
    >>> parse_price("no idea") is None
    True
    """
    parsed = parse_price_details(text)
    return parsed.value if parsed else None
