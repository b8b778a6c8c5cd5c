"""The ``Item`` type, its prompts, and the reader of curated items files (JSONL, optionally gzipped)."""

from __future__ import annotations

import gzip
import json
import math
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

QUESTION = "How much does this cost to the nearest dollar?"
PRICE_PREFIX = "Price is $"
#: the prices an item may have (the curated format's range): ingestion refuses any other, so
#: that one absurd record (``"price": 1e300``) cannot become every neighbour's evidence
MIN_PRICE = 0.5
MAX_PRICE = 999.49
#: what an item may carry: longer titles and texts are cut at a word when read. The curated data
#: stays far below (text at most 1,728 characters in items.jsonl.gz), while one poisoned 1 MB
#: description would otherwise be stored and sent as evidence in other users' prompts
MAX_TITLE_CHARS = 500
MAX_TEXT_CHARS = 4000
#: an item's id: a letter or digit, then letters, digits and ``._:-``, at most 128 characters, no
#: ``..`` and no trailing dot (dots only between other characters). Ids reach URLs
#: (``/v1/products/{id}``), logs and file-like keys: no slash, blank, control character or path
#: segment. Written without look-arounds, so that JSON Schema's regex dialect reads it too.
ITEM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_:-]*(?:\.[A-Za-z0-9_:-]+)*$"
MAX_ID_CHARS = 128
_ITEM_ID = re.compile(ITEM_ID_PATTERN)


class InvalidRecord(ValueError):
    """A record that cannot become an ``Item``; ``reason`` is a short, countable label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def valid_item_id(value: object) -> bool:
    """Whether ``value`` is an id an item may have (``ITEM_ID_PATTERN``, at most ``MAX_ID_CHARS``)."""
    return isinstance(value, str) and len(value) <= MAX_ID_CHARS and _ITEM_ID.fullmatch(value) is not None


def test_prompt(description: str) -> str:
    """The course's question about ``description``, ending with ``Price is $`` for the answer."""
    return f"{QUESTION}\n\n{description}\n\n{PRICE_PREFIX}"


@dataclass(frozen=True)
class Item:
    """One product with its true price. ``details`` keeps the raw JSON string of the source."""

    id: str
    title: str
    text: str
    price: float
    category: str | None = None
    details: str | None = None
    split: str | None = None
    source: str | None = None

    @property
    def description(self) -> str:
        """Title and text: what is embedded and what the LLM reads."""
        return f"{self.title}\n{self.text}".strip()

    def test_prompt(self) -> str:
        """The course's prompt without the answer: ends with ``Price is $``."""
        return test_prompt(self.description)

    def prompt(self) -> str:
        """The course's training prompt: the test prompt followed by the rounded price."""
        return f"{self.test_prompt()}{round(self.price)}.00"

    def problem(self) -> str | None:
        """Why this item must not be stored (a countable reason), or ``None`` when it may be.
        ``from_record`` checks records; this checks items built in code."""
        if not valid_item_id(self.id):
            return "bad_id"
        if not isinstance(self.price, (int, float)) or isinstance(self.price, bool) or not price_in_range(self.price):
            return "price_out_of_range"
        for name in ("category", "split", "source"):
            if not isinstance(getattr(self, name), (str, type(None))):
                return f"bad_{name}"
        return None

    def details_dict(self) -> dict[str, Any]:
        """``details`` parsed; an unparsable or missing value gives ``{}``."""
        return parse_details(self.details)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Any) -> Item:
        """Validate one JSON object of the curated format; raise ``InvalidRecord`` with a reason."""
        if not isinstance(record, dict):
            raise InvalidRecord("not_an_object")
        item_id = record.get("id")
        if not isinstance(item_id, str) or not item_id.strip():
            raise InvalidRecord("missing_id")
        item_id = item_id.strip()
        if not valid_item_id(item_id):
            shown = item_id[:40] + ("..." if len(item_id) > 40 else "")
            raise InvalidRecord("bad_id", f"{shown!r}: ids are up to {MAX_ID_CHARS} letters, digits and ._:- (no ..)")
        title = record.get("title")
        if not isinstance(title, str) or not title.strip():
            raise InvalidRecord("missing_title", item_id)
        text = record.get("text") or ""
        if not isinstance(text, str):
            raise InvalidRecord("bad_text", item_id)
        if isinstance(record.get("price"), str):  # refused, not coerced: the curated format has numbers
            raise InvalidRecord("bad_price", f"{item_id}: the price must be a JSON number, not text")
        price = _as_price(record.get("price"))
        if price is None:
            raise InvalidRecord("bad_price", item_id)
        if not price_in_range(price):
            raise InvalidRecord("price_out_of_range", f"{item_id}: {price:g}")
        for name in ("category", "split", "source"):
            if not isinstance(record.get(name), (str, type(None))):
                raise InvalidRecord(f"bad_{name}", item_id)
        details = record.get("details")
        if details is not None and not isinstance(details, str):
            details = json.dumps(details)
        return cls(
            id=item_id,
            title=cut_at_word(title.strip(), MAX_TITLE_CHARS),
            text=cut_at_word(text.strip(), MAX_TEXT_CHARS),
            price=price,
            category=record.get("category") or None,
            details=details,
            split=record.get("split") or None,
            source=record.get("source") or None,
        )


def parse_details(raw: str | None) -> dict[str, Any]:
    """The JSON object of an item's raw ``details`` (weight, rank, brand ...); ``{}`` when it is
    missing, unparsable or not an object."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def cut_at_word(text: str, max_chars: int) -> str:
    """``text`` if it fits in ``max_chars``, else its longest prefix that ends at a word."""
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    return (cut.rsplit(None, 1)[0] if " " in cut or "\n" in cut else cut).rstrip()


def price_in_range(price: float) -> bool:
    """Whether ``price`` is one an item may have: finite, within [``MIN_PRICE``, ``MAX_PRICE``]."""
    return math.isfinite(price) and MIN_PRICE <= price <= MAX_PRICE


def _as_price(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        price = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    return price if price > 0 and price == price and price != float("inf") else None


def open_text(path: str | Path, mode: Literal["rt", "wt"] = "rt") -> TextIO:
    """Open a text file, transparently gunzipping ``*.gz``."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, mode, encoding="utf-8")
    return open(path, mode, encoding="utf-8")


#: a longer line is skipped unread (``line_too_long``): memory stays bounded whatever the file
MAX_LINE_BYTES = 1 << 20
#: skipped records an ``ItemReader`` describes one by one (it counts them all)
MAX_PROBLEMS = 100


@dataclass
class ItemReader:
    """Streams curated items, counting unusable records by reason instead of failing.

    One bad line never costs the others: a line that is not UTF-8 (``invalid_utf8``), not JSON,
    too long or not a valid item is skipped and counted; a file that ends early (a truncated
    ``.gz``: ``truncated_file``) or is corrupt (``corrupt_file``) keeps every item read before
    the damage. Lines are read one at a time, so memory does not grow with the file.

    >>> reader = ItemReader("items.jsonl.gz", split="train", limit=100)  # doctest: +SKIP
    >>> items = list(reader); reader.skipped  # doctest: +SKIP
    """

    path: str | Path
    split: str | None = None
    limit: int | None = None
    read: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    #: each skipped record as ``line N: reason (detail)``, the first ``MAX_PROBLEMS`` of them:
    #: what a strict reader (``rag-pricer-ingest add``) shows, one line per bad record
    problems: list[str] = field(default_factory=list)
    _line_no: int = field(default=0, init=False, repr=False)

    def __iter__(self) -> Iterator[Item]:
        if not Path(self.path).exists():
            raise FileNotFoundError(f"items file not found: {self.path}")
        yielded = 0
        for line in self._lines():
            if self.limit is not None and yielded >= self.limit:
                return
            if not line.strip():
                continue
            self.read += 1
            item = self._parse(line)
            if item is None:
                continue
            if self.split and item.split != self.split:
                continue
            yielded += 1
            yield item

    def _lines(self) -> Iterator[bytes]:
        path = Path(self.path)
        try:
            with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as handle:
                while line := handle.readline(MAX_LINE_BYTES + 1):
                    self._line_no += 1
                    if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                        self.read += 1
                        self._skip("line_too_long", f"over {MAX_LINE_BYTES:,} bytes")
                        while line and not line.endswith(b"\n"):  # skip the rest of it, unread
                            line = handle.readline(MAX_LINE_BYTES)
                        continue
                    yield line
        except EOFError:  # gzip: "Compressed file ended before the end-of-stream marker"
            self.skipped["truncated_file"] += 1
        except (gzip.BadGzipFile, zlib.error):
            self.skipped["corrupt_file"] += 1

    def _parse(self, line: bytes) -> Item | None:
        try:
            return Item.from_record(json.loads(line.decode("utf-8")))
        except UnicodeDecodeError:
            self._skip("invalid_utf8")
        except json.JSONDecodeError as error:
            self._skip("invalid_json", error.msg)
        except RecursionError:  # e.g. 1,000 nested brackets: one bad line, never the end of the file
            self._skip("too_deeply_nested", "JSON nested too deeply to read")
        except InvalidRecord as error:
            self._skip(error.reason, error.detail)
        return None

    def _skip(self, reason: str, detail: str = "") -> None:
        self.skipped[reason] += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"line {self._line_no}: {reason}" + (f" ({detail})" if detail else ""))


def read_items(path: str | Path, split: str | None = None, limit: int | None = None) -> list[Item]:
    """All usable items of a curated file (optionally one split, the first ``limit`` of it)."""
    return list(ItemReader(path, split=split, limit=limit))


def write_items(items: Iterable[Item], path: str | Path) -> int:
    """Write items as curated JSONL (gzipped when the name ends in .gz); returns the count."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open_text(path, "wt") as handle:
        for item in items:
            handle.write(json.dumps(item.to_record(), ensure_ascii=False) + "\n")
            count += 1
    return count
