"""Keeping small requests fair while large batches are priced.

Four clients sending 1 MB batches (52 descriptions of 20,000 characters) took every pricing
worker, and a one-description request waited behind them: 18 ms became 21 s. Now a batch's
descriptions are cut to what the pricer reads before anything else, a batch is admitted by
the characters it holds (``CharacterGate``: at most ``max_chars`` of batches in flight, each
batch at least admitted alone), and batches run in their own pool, so that single requests
keep the shared workers whatever the batches do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

#: the characters of batches priced at once: 64 descriptions of 4,000 characters
MAX_BATCH_CHARS_IN_FLIGHT = 64 * 4000


def cut(text: str, max_chars: int) -> str:
    """``text`` cut at ``max_chars`` (what the pricer reads at most; it cuts again at a word and notes it)."""
    return text if len(text) <= max_chars else text[: max_chars + 1]


def batch_chars(descriptions: Sequence[str], max_chars_each: int) -> int:
    """The work a batch holds, in characters: each description counted up to what is read of it."""
    return sum(min(len(text), max_chars_each) for text in descriptions)


class CharacterGate:
    """Admits batches while the characters in flight stay within ``max_chars`` and the batches
    in flight fewer than ``max_batches`` (the workers that price them: an admitted batch starts
    at once, so that its deadline is not spent queueing); a batch larger than ``max_chars`` is
    admitted when it is alone. Waiting callers are admitted in turn."""

    def __init__(self, max_chars: int = MAX_BATCH_CHARS_IN_FLIGHT, max_batches: int = 1) -> None:
        self.max_chars = max_chars
        self.max_batches = max_batches
        self.in_flight = 0
        self.batches = 0
        self._changed = asyncio.Condition()

    async def acquire(self, chars: int) -> int:
        """Wait until ``chars`` more characters fit (or the gate is empty); return the amount
        held, to give to ``release``."""
        chars = max(1, min(chars, self.max_chars))
        async with self._changed:
            await self._changed.wait_for(
                lambda: self.in_flight + chars <= self.max_chars and self.batches < self.max_batches
            )
            self.in_flight += chars
            self.batches += 1
        return chars

    async def release(self, held: int) -> None:
        async with self._changed:
            self.in_flight -= held
            self.batches -= 1
            self._changed.notify_all()
