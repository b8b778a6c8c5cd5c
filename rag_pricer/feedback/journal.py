"""FeedbackJournal: the estimates given and the prices those products really sold for, in SQLite.

One file (``Settings.feedback_path``) in WAL mode holds two tables: ``estimates`` (id, time,
strategy, price, range, the description) written for every estimate the service and ``price-file``
give, and ``feedback`` (the price it sold for, with the estimate's figures copied
in) written by ``POST /v1/feedback``. Durability differs on purpose:

* a feedback is committed with ``synchronous=FULL``: the WAL is fsynced before ``add`` returns,
  so an acknowledged feedback survives a killed process and a power cut;
* estimates are committed with ``synchronous=NORMAL``: WAL commits survive a killed process (the
  OS has the pages) and skip one fsync per request; a power cut may lose the last estimates,
  whose feedback is then refused as unknown: it never corrupts the file.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag_pricer.pricing.values import Estimate

SCHEMA = """
CREATE TABLE IF NOT EXISTS estimates (
    id TEXT PRIMARY KEY,
    at REAL NOT NULL,
    strategy TEXT NOT NULL,
    price REAL NOT NULL,
    low REAL, high REAL, coverage REAL,
    fallback INTEGER NOT NULL,
    text_hash TEXT NOT NULL,
    description TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS estimates_by_text ON estimates (text_hash, at);
CREATE TABLE IF NOT EXISTS feedback (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    sold REAL NOT NULL,
    estimate_id TEXT,
    strategy TEXT,
    price REAL, low REAL, high REAL, coverage REAL,
    description TEXT,
    product_id TEXT
);
CREATE INDEX IF NOT EXISTS feedback_by_strategy ON feedback (strategy, seq);
"""


@dataclass(frozen=True)
class Given:
    """An estimate as given to a client: what feedback is later scored against."""

    id: str
    strategy: str
    price: float
    low: float | None
    high: float | None
    coverage: float | None
    fallback: bool
    description: str

    @classmethod
    def of(cls, estimate: Estimate, description: str) -> Given:
        return cls(
            estimate.id,
            estimate.strategy,
            estimate.price,
            estimate.low,
            estimate.high,
            estimate.coverage,
            estimate.fallback is not None,
            description,
        )


class UnknownEstimate(LookupError):
    """A feedback names an estimate id the journal never recorded."""


@dataclass(frozen=True)
class Feedback:
    """A price a product really sold for, with the estimate it answers (``None`` fields: a
    description that matched no recorded estimate)."""

    seq: int
    at: float
    sold: float
    estimate_id: str | None
    strategy: str | None
    price: float | None
    low: float | None
    high: float | None
    coverage: float | None
    description: str | None = None
    product_id: str | None = None

    @property
    def matched(self) -> bool:
        return self.estimate_id is not None


def text_key(description: str) -> str:
    """The key a description is matched by: its words, blanks folded, hashed."""
    return hashlib.sha256(" ".join(description.split()).encode("utf-8")).hexdigest()


class FeedbackJournal:
    """The journal at ``path`` (created with its folder on first use). Thread-safe: one
    connection behind a lock (every write is one short transaction)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def record(self, given: Iterable[Given]) -> int:
        """Record estimates as given; returns how many."""
        now = time.time()
        rows = [
            (g.id, now, g.strategy, g.price, g.low, g.high, g.coverage, int(g.fallback))
            + (text_key(g.description), g.description)
            for g in given
        ]
        if rows:
            with self._lock:
                self._db.execute("PRAGMA synchronous=NORMAL")
                with self._db:
                    self._db.executemany("INSERT OR REPLACE INTO estimates VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        return len(rows)

    def add(self, sold: float, estimate_id: str | None = None, description: str | None = None) -> Feedback:
        """Store that a product sold for ``sold``, answering ``estimate_id`` (``UnknownEstimate``
        when never recorded) or else the latest estimate of ``description`` (stored unmatched when
        there is none). Returns once it is on disk (fsynced)."""
        if estimate_id is None and not (description and description.strip()):
            raise ValueError("a feedback names an estimate id or a description")
        with self._lock:
            if estimate_id is not None:
                row = self._db.execute(
                    "SELECT id, strategy, price, low, high, coverage, description FROM estimates WHERE id = ?",
                    (estimate_id,),
                ).fetchone()
                if row is None:
                    raise UnknownEstimate(estimate_id)
            else:
                row = self._db.execute(
                    "SELECT id, strategy, price, low, high, coverage, description FROM estimates "
                    "WHERE text_hash = ? ORDER BY at DESC LIMIT 1",
                    (text_key(description or ""),),
                ).fetchone()
            found = row or (None, None, None, None, None, None, None)
            text = description.strip() if description and description.strip() else found[6]
            at = time.time()
            self._db.execute("PRAGMA synchronous=FULL")
            with self._db:
                cursor = self._db.execute(
                    "INSERT INTO feedback (at, sold, estimate_id, strategy, price, low, high, coverage, description) "
                    "VALUES (?,?,?,?,?,?,?,?,?)",
                    (at, sold, *found[:6], text),
                )
        estimate_id, strategy, price, low, high, coverage = found[:6]
        return Feedback(
            cursor.lastrowid or 0, at, sold, estimate_id, strategy, price, low, high, coverage, description=text
        )

    def learned(self, seq: int, product_id: str) -> None:
        """Note that feedback ``seq`` joined the knowledge base as ``product_id``."""
        with self._lock, self._db:
            self._db.execute("UPDATE feedback SET product_id = ? WHERE seq = ?", (product_id, seq))

    def feedbacks(self, strategies: Sequence[str] | None = None) -> list[Feedback]:
        """Every feedback, oldest first (of ``strategies`` only, when given)."""
        query = (
            "SELECT seq, at, sold, estimate_id, strategy, price, low, high, coverage, description, product_id "
            "FROM feedback"
        )
        parameters: list[str] = []
        if strategies is not None:
            query += f" WHERE strategy IN ({','.join('?' * len(strategies))})"
            parameters = list(strategies)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq", parameters).fetchall()
        return [Feedback(*row) for row in rows]

    def estimates_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM estimates").fetchone()[0])
