"""Prices decoded from a model's next-token distributions after ``Price is $``.

A price is written as digit tokens followed by anything else ("149.00": 1, 4, 9, then "."). The
decoder walks that tree: from each prefix it reads the next-token distribution once, continues
with the digit tokens and gives the rest of the mass (the probability that the number ends
there) to the prefix's price. Branches below ``min_prob`` or outside the ``width`` most likely
ones are pruned, so a few forward passes give the model's distribution over whole prices.

- SmolLM2 splits numbers into single digits: prices < $1,000 take three passes (the prompt, the
  first digits, the two-digit prefixes); a three-digit number must end, so it needs no pass.
- Llama 3 has tokens for 1-3 digit strings: one level usually suffices, and the same walk works.

Decodings: ``greedy`` (the most likely token at each step; what ``generate`` would write),
``expectation`` (the probability-weighted mean price) and ``median`` (the price that halves the
mass: the best point estimate for absolute error when the distribution is spread or skewed).
The course took the expectation over the top next *tokens*, which for digit tokenizers mixes
first digits of numbers of different lengths; here every candidate is a whole price.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

DECODINGS = ("greedy", "expectation", "median")
#: next-token log-probabilities (rows: prefixes, columns: the vocabulary) after the prompt + prefix
StepFn = Callable[[Sequence[Sequence[int]]], np.ndarray]
DIGITS = re.compile(r"[0-9]{1,3}")
#: a candidate price this unlikely moves an expectation of prices < $1,000 by under a tenth of a cent
NEGLIGIBLE = 1e-6


@dataclass(frozen=True)
class PriceDistribution:
    """Whole-number prices and their probabilities (normalised over the mass found), and the
    greedy completion's digits. ``mass`` is the share of probability the walk accounted for."""

    prices: np.ndarray
    probs: np.ndarray
    greedy_text: str
    mass: float

    @property
    def empty(self) -> bool:
        return len(self.prices) == 0

    def expectation(self) -> float:
        return float(np.dot(self.prices, self.probs))

    def median(self) -> float:
        order = np.argsort(self.prices)
        cumulative = np.cumsum(self.probs[order])
        return float(self.prices[order][np.searchsorted(cumulative, 0.5)])

    def greedy(self) -> float | None:
        return float(self.greedy_text) if self.greedy_text and float(self.greedy_text) > 0 else None

    def price(self, decoding: str) -> float | None:
        if decoding == "greedy":
            return self.greedy()
        if self.empty:
            return None
        return self.expectation() if decoding == "expectation" else self.median()

    def top(self, n: int = 5) -> list[tuple[int, float]]:
        order = np.argsort(-self.probs)[:n]
        return [(int(self.prices[i]), float(self.probs[i])) for i in order]


@dataclass(frozen=True)
class PriceDecoder:
    """Walks the digit-token tree of a tokenizer (``digit_tokens``: id -> its digits)."""

    digit_tokens: dict[int, str]
    max_price: int = 999
    #: 100 keeps every two-digit prefix (90) of a flat distribution: the third digit of each is
    #: read in the same batch, so the walk covers nearly all the mass in three passes
    width: int = 100
    min_prob: float = 1e-4
    max_depth: int = 4

    @classmethod
    def for_tokenizer(cls, tokenizer: object, **options: object) -> PriceDecoder:
        vocabulary = tokenizer.get_vocab()  # type: ignore[attr-defined]
        digits = {i: t for t, i in vocabulary.items() if DIGITS.fullmatch(t)}
        if not digits:
            raise ValueError("the tokenizer has no digit tokens")
        return cls(digits, **options)  # type: ignore[arg-type]

    def decode(self, step: StepFn) -> PriceDistribution:
        ids = np.fromiter(self.digit_tokens, dtype=np.int64)
        pieces = [self.digit_tokens[int(i)] for i in ids]
        frontier: list[tuple[tuple[int, ...], str, float]] = [((), "", 1.0)]
        found: dict[int, float] = {}
        greedy, greedy_open = "", True
        for _ in range(self.max_depth):
            if not frontier:
                break
            children: list[tuple[tuple[int, ...], str, float]] = []
            next_greedy = None
            for row, (prefix, text, p) in zip(_normalised(step([b[0] for b in frontier])), frontier):
                digit_probs = row[ids]
                if text:  # the number may end here: the mass of every non-digit token
                    found[int(text)] = found.get(int(text), 0.0) + p * max(0.0, 1.0 - float(digit_probs.sum()))
                if greedy_open and text == greedy:
                    best = self.digit_tokens.get(int(np.argmax(row)))
                    next_greedy = text + best if best is not None and self._valid(text + best) else None
                for token, q, piece in zip(ids, digit_probs, pieces):
                    number = text + piece
                    if self._valid(number) and (p * q >= self.min_prob or number == next_greedy):
                        if int(number) * 10 > self.max_price:  # no digit may follow: it ends here, no pass needed
                            found[int(number)] = found.get(int(number), 0.0) + p * float(q)
                        else:
                            children.append((prefix + (int(token),), number, p * float(q)))
            greedy, greedy_open = (next_greedy, True) if next_greedy else (greedy, False)
            frontier = self._keep(children, greedy if greedy_open else None)
        for _, text, p in frontier:  # prefixes still open at the depth limit: the number ends there
            found[int(text)] = found.get(int(text), 0.0) + p
        found.pop(0, None)  # "$0" is not a price
        found = {price: p for price, p in found.items() if p >= NEGLIGIBLE}
        mass = sum(found.values())
        if mass < self.min_prob:  # the model does not write a number here
            found, mass = {}, 0.0
        prices = np.array(sorted(found), dtype=np.float64)
        probs = np.array([found[int(x)] for x in prices]) / mass if mass > 0 else np.array([])
        return PriceDistribution(prices, probs, greedy, float(mass))

    def _keep(
        self, children: list[tuple[tuple[int, ...], str, float]], greedy: str | None
    ) -> list[tuple[tuple[int, ...], str, float]]:
        """The ``width`` most likely children, plus the greedy one wherever it ranks: greedy
        decoding is read from the same forward passes."""
        children = sorted(children, key=lambda child: -child[2])
        kept = children[: self.width]
        if greedy is not None and all(text != greedy for _, text, _ in kept):
            kept += [c for c in children if c[1] == greedy][:1]
        return kept

    def _valid(self, number: str) -> bool:
        return not (len(number) > 1 and number[0] == "0") and int(number) <= self.max_price


def _normalised(logits: np.ndarray) -> np.ndarray:
    """Softmax of each row (rows may be logits or log-probabilities)."""
    values = np.asarray(logits, dtype=np.float64)
    values = np.exp(values - values.max(axis=1, keepdims=True))
    return values / values.sum(axis=1, keepdims=True)
