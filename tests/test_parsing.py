"""parse_price on the answers LLMs give."""

from __future__ import annotations

import pytest

from rag_pricer.strategies.prompting.answers import parse_price, parse_price_details

CASES = [
    # plain and US-formatted
    ("45", 45.0),
    ("45.99", 45.99),
    (" 89.99</s>", 89.99),
    ("$1,299.99", 1299.99),
    ("Price is $45", 45.0),
    ("Price is $45.", 45.0),
    ("The Delphi FG0166 is $120.", 120.0),  # digits inside a model number are not a price
    ("approximately 2,500 USD", 2500.0),
    ("US$ 99", 99.0),
    # words around numbers
    ("about 30 dollars", 30.0),
    ("I'd say 25 bucks", 25.0),
    ("12V battery costs 45", 45.0),  # a unit marks a quantity; the cue "costs" marks the price
    ("2 pack for $30", 30.0),  # the money-marked number wins over the first one
    ("Size 10-12 for $30", 30.0),
    ("50% off, now 20", 20.0),
    ("1.25, so 1.25 *", 1.25),  # after a "Price is $" prefill the answer starts with the price
    ("2 pack of batteries", None),  # a quantity alone is not a price
    # ranges give their midpoint
    ("45-50", 47.5),
    ("$45 to $50", 47.5),
    ("between 45 and 50", 47.5),
    ("$40 – $60", 50.0),
    ("$30 - 2 pack", 30.0),  # descending: not a range
    ("7 and 8", 7.0),  # "and" without "between": two numbers, the first is taken
    # other conventions
    ("1.299,99", 1299.99),  # European grouping
    ("12,50", 12.5),  # decimal comma
    ("1k", 1000.0),
    ("$1.5K", 1500.0),
    ("€30", 30.0),  # not converted
    ("£19.99", 19.99),
    # no price
    ("", None),
    ("   ", None),
    (None, None),
    ("I don't know", None),
    ("-5", None),
    ("$-5", None),
    ("Price is -$12", None),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_parse_price(text: str | None, expected: float | None) -> None:
    got = parse_price(text)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


def test_details_report_currency_and_range() -> None:
    euro = parse_price_details("about €30")
    assert euro is not None and euro.currency == "EUR" and not euro.is_range
    span = parse_price_details("$45 to $50")
    assert span is not None and (span.low, span.high, span.value) == (45.0, 50.0, 47.5)
    assert span.is_range and span.currency == "USD"
    assert parse_price_details("45") is not None and parse_price_details("45").currency is None


@pytest.mark.parametrize(
    "continuation", ["20.00 for a 2 pack, originally $40", " 20. A 12V model costs $40", "20 dollars, not $40"]
)
def test_a_leading_number_is_the_continuation_of_the_prefill(continuation: str) -> None:
    # After "Price is $" the model's first number is its answer, whatever money it names later;
    # parsing the prefill together with the continuation reads the same.
    assert parse_price(continuation) == 20.0
    assert parse_price("Price is $" + continuation) == 20.0
