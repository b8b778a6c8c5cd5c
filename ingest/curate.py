"""Curation: raw Amazon metadata records -> priced, cleaned, deduplicated, split ``Item``s.

Per record (first failing rule wins, counted by reason, never raised):
``invalid_json`` / ``not_an_object`` -> ``missing_title`` -> ``missing_price`` / ``bad_price`` /
``price_out_of_range`` -> ``too_short`` (scrubbed text under ``min_chars``) ->
``title_over_budget`` (the title alone fills the token budget) -> ``duplicate_title`` ->
``duplicate_text``. Then, over the kept items: optional balancing (``balanced_out``), a seeded
shuffle and a train/test split. Every record read is either kept or skipped for one reason.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ingest.price import PriceParser
from ingest.raw import RawRecord
from ingest.scrub import Scrubber
from ingest.text import TextBuilder
from ingest.tokens import DEFAULT_MAX_TOKENS, DEFAULT_TOKENIZER, TokenBudget
from rag_pricer.items import MAX_PRICE, MIN_PRICE, InvalidRecord, Item


@dataclass(frozen=True)
class CurationParams:
    """Every choice of a curation run; the same params and input give the same output."""

    min_price: float = MIN_PRICE
    max_price: float = MAX_PRICE
    min_chars: int = 300  # the course's floor: shorter texts say too little to price from
    max_tokens: int = DEFAULT_MAX_TOKENS  # budget for title + "\n" + text, what is embedded and prompted
    tokenizer: str = DEFAULT_TOKENIZER
    balance: bool = False
    max_per_bucket: int = 50  # with ``balance``: items kept per (category, price bucket)
    bucket_width: float = 10.0  # price bucket width in dollars
    test_fraction: float = 0.1
    test_size: int | None = None  # overrides ``test_fraction`` when given
    seed: int = 42
    train_split: str = "train"
    test_split: str = "test"

    def __post_init__(self) -> None:
        if not 0 <= self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in [0, 1), got {self.test_fraction}")
        if self.test_size is not None and self.test_size < 0:
            raise ValueError(f"test_size must be >= 0, got {self.test_size}")
        if self.max_per_bucket < 1 or self.bucket_width <= 0:
            raise ValueError("max_per_bucket must be >= 1 and bucket_width > 0")
        if self.min_price > self.max_price:
            raise ValueError(f"min_price {self.min_price} is above max_price {self.max_price}")


@dataclass
class CurationReport:
    """What a run did: ``read == kept + sum(skipped.values())``; ``items`` are the kept items."""

    read: int = 0
    kept: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    splits: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    items: list[Item] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "kept": self.kept,
            "skipped": dict(self.skipped.most_common()),
            "splits": dict(self.splits),
            "categories": dict(self.categories.most_common()),
            "seconds": round(self.seconds, 2),
        }


def item_id(record: dict[str, Any], title: str) -> str:
    """Stable 16-hex-digit id: sha1 of ``parent_asin`` (the product), else of the title."""
    key = record.get("parent_asin") if isinstance(record.get("parent_asin"), str) else None
    return hashlib.sha1((key or title).encode("utf-8")).hexdigest()[:16]


def _dedup_key(text: str) -> str:
    return re.sub(r"\W+", " ", text.casefold()).strip()


class Curator:
    """Turns raw records into curated items; ``run(records)`` never raises on a bad record.

    A ``budget`` passed in (e.g. one shared tokenizer) replaces the one ``params`` would build.
    """

    def __init__(
        self,
        params: CurationParams | None = None,
        scrubber: Scrubber | None = None,
        budget: TokenBudget | None = None,
        progress: bool = False,
    ) -> None:
        self.params = params or CurationParams()
        self.price = PriceParser(self.params.min_price, self.params.max_price)
        self.text = TextBuilder(scrubber or Scrubber())
        self.budget = budget or TokenBudget(self.params.tokenizer, self.params.max_tokens)
        self.progress = progress

    def run(self, records: Iterable[RawRecord | Any]) -> CurationReport:
        """Curate ``records`` (``RawRecord``s, or plain dicts as from any other source)."""
        started = time.perf_counter()
        report = CurationReport()
        seen = _Seen()
        items: list[Item] = []
        for record in self._tracked(records):
            report.read += 1
            try:
                items.append(self._curate(record, seen))
            except InvalidRecord as error:
                report.skipped[error.reason] += 1
        if self.params.balance:
            items = self._balance(items, report)
        report.items = assign_splits(items, self.params)
        report.kept = len(report.items)
        # assign_splits gives every item a split
        report.splits.update(item.split for item in report.items if item.split is not None)
        report.categories.update(item.category or "(none)" for item in report.items)
        report.seconds = time.perf_counter() - started
        return report

    def _curate(self, record: RawRecord | Any, seen: _Seen) -> Item:
        raw = record if isinstance(record, RawRecord) else RawRecord(record, source="", line=0)
        if raw.error is not None:
            raise InvalidRecord("invalid_json", raw.error)
        data = raw.data
        if not isinstance(data, dict):
            raise InvalidRecord("not_an_object")
        title = data.get("title")
        # The title stays as listed (whitespace aside), like the curated data: it is what people read.
        title = " ".join(title.split()) if isinstance(title, str) else ""
        if not title:
            raise InvalidRecord("missing_title")
        price = self.price(data.get("price"))
        text = self.text(data)
        if len(text) < self.params.min_chars:
            raise InvalidRecord("too_short", f"{len(text)} chars")
        text = self._truncate(title, text)
        seen.claim(title, text)
        return Item(
            id=item_id(data, title),
            title=title,
            text=text,
            price=price,
            category=raw.category or _main_category(data),
            details=_details_json(data.get("details")),
            source=raw.source or None,
        )

    def _truncate(self, title: str, text: str) -> str:
        """``text`` cut so that the item's description (title, newline, text) fits the budget."""
        description = self.budget.truncate(f"{title}\n{text}")
        if len(description) <= len(title) + 1:
            raise InvalidRecord("title_over_budget")
        return description[len(title) + 1 :].strip()

    def _balance(self, items: list[Item], report: CurationReport) -> list[Item]:
        kept = balance_items(items, self.params.max_per_bucket, self.params.bucket_width, self.params.seed)
        report.skipped["balanced_out"] += len(items) - len(kept)
        return kept

    def _tracked(self, records: Iterable[Any]) -> Iterator[Any]:
        progress = Progress(
            TextColumn("[bold]curating"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=not self.progress,
        )
        with progress:
            yield from progress.track(records, description="curating")


class _Seen:
    """Normalised titles and texts of the items kept so far (to drop duplicates)."""

    def __init__(self) -> None:
        self.titles: set[str] = set()
        self.texts: set[str] = set()

    def claim(self, title: str, text: str) -> None:
        title_key, text_key = _dedup_key(title), _dedup_key(text)
        if title_key in self.titles:
            raise InvalidRecord("duplicate_title")
        if text_key in self.texts:
            raise InvalidRecord("duplicate_text")
        self.titles.add(title_key)
        self.texts.add(text_key)


def _main_category(data: dict[str, Any]) -> str | None:
    value = data.get("main_category")
    return (value.strip() or None) if isinstance(value, str) else None


def _details_json(value: Any) -> str | None:
    """The raw details as a JSON string (the curated format), or None when there are none."""
    if isinstance(value, str):
        return value or None
    return json.dumps(value, ensure_ascii=False) if value else None


def balance_items(items: list[Item], max_per_bucket: int, bucket_width: float, seed: int) -> list[Item]:
    """At most ``max_per_bucket`` items per (category, price bucket), chosen at random (seeded).

    Cheap products dominate raw Amazon data; capping each bucket flattens the price
    distribution so a model does not learn to always guess low. Input order is kept.
    """
    groups: dict[tuple[str | None, int], list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        groups[(item.category, int(item.price // bucket_width))].append(index)
    rng = random.Random(seed)
    keep: set[int] = set()
    for key in sorted(groups, key=lambda k: (k[0] or "", k[1])):  # fixed order: same draws every run
        indices = groups[key]
        keep.update(indices if len(indices) <= max_per_bucket else rng.sample(indices, max_per_bucket))
    return [item for index, item in enumerate(items) if index in keep]


def assign_splits(items: list[Item], params: CurationParams) -> list[Item]:
    """Items shuffled with ``params.seed``; the first ``test_size`` (or fraction) are the test split."""
    shuffled = list(items)
    random.Random(params.seed).shuffle(shuffled)
    n_test = params.test_size if params.test_size is not None else round(len(shuffled) * params.test_fraction)
    n_test = min(n_test, len(shuffled))
    return [
        replace(item, split=params.test_split if index < n_test else params.train_split)
        for index, item in enumerate(shuffled)
    ]
