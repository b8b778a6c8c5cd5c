"""Embed items and write them to the knowledge base: idempotent, resumable, pipelined."""

from __future__ import annotations

import contextlib
import itertools
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress, ProgressColumn, TextColumn
from rich.text import Text

from rag_pricer.items import Item
from rag_pricer.knowledge.embeddings import Embedder
from rag_pricer.knowledge.store import ProductStore, content_hash


def items_per_s(embedded: int, seconds: float) -> float:
    """The one rate of an indexing run, in its progress and its report: items embedded per second
    since the run began (items already stored cost no embedding and are not counted)."""
    return embedded / seconds if seconds > 0 else 0.0


class PlainProgress:
    """Progress as plain lines on stderr, at most one every ``every_s`` seconds: in a log file (no
    terminal) rich draws no bar, and a long indexing run would otherwise be silent for minutes."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.done = self.shown = self.embedded = 0
        self.started = self.last = time.perf_counter()

    def advance(self, count: int, embedded: int = 0, final: bool = False) -> None:
        self.done += count
        self.embedded += embedded
        now = time.perf_counter()
        if self.done != self.shown and (final or now - self.last >= self.every_s):
            self.last, self.shown = now, self.done
            skipped = self.done - self.embedded
            already = f", {skipped:,} already stored" if skipped else ""
            rate = items_per_s(self.embedded, now - self.started)
            print(f"indexing: {self.done:,} items{already} ({rate:.1f} items/s)", file=sys.stderr, flush=True)


class ItemsPerSecond(ProgressColumn):
    """Rich column showing the run's rate (``items_per_s``), not rich's moving average."""

    def render(self, task: Any) -> Text:
        return Text(f"{items_per_s(task.fields.get('embedded', 0), task.elapsed or 0.0):7.1f} items/s")


@dataclass
class IndexReport:
    """What one indexing run did. ``stored`` counts items written by this run only."""

    read: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    already_stored: int = 0
    embedded: int = 0
    stored: int = 0
    total_in_store: int = 0
    seconds: float = 0.0

    @property
    def items_per_s(self) -> float:
        return items_per_s(self.embedded, self.seconds)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["skipped"] = dict(self.skipped)
        data["items_per_s"] = round(self.items_per_s, 1)
        data["seconds"] = round(self.seconds, 2)
        return data


class Indexer:
    """Writes items to a ``ProductStore``, skipping those already stored with the same content.

    Ids are the item ids and writes are upserts, so a run killed half way and started again
    finishes the job without duplicates. Items are streamed: read ``window`` at a time, checked
    (an item no store may hold is skipped and counted by reason), embedded and written before
    the next window is read, so memory stays bounded and a source that fails late keeps what
    came before. Embedding (the bottleneck) runs in the calling thread while a writer thread
    upserts the previous chunk, so Chroma's time hides behind the model's.
    """

    def __init__(
        self,
        store: ProductStore,
        embedder: Embedder,
        chunk_size: int = 512,
        progress: bool = True,
        window: int = 8192,
        log_every_s: float = 10.0,
        console: Console | None = None,
    ) -> None:
        if window < 1 or chunk_size < 1:
            raise ValueError("chunk_size and window must be at least 1")
        self.store = store
        self.embedder = embedder
        self.chunk_size = chunk_size
        self.progress = progress
        self.window = window
        #: off a terminal, a plain progress line at most this often
        self.log_every_s = log_every_s
        #: where the bar goes (default: rich's, stdout); a command printing JSON passes stderr's
        self.console = console

    def run(self, items: Iterable[Item], report: IndexReport | None = None) -> IndexReport:
        report = report or IndexReport()
        started = time.perf_counter()
        try:
            with self._writer(report) as write, self._progress_bar() as bar:
                task = bar.add_task("indexing", total=None, embedded=0)
                plain = PlainProgress(self.log_every_s) if self.progress and not bar.console.is_terminal else None

                counted = [0]  # items embedded so far: the rate's numerator

                def advance(count: int, embedded: int = 0, final: bool = False) -> None:
                    counted[0] += embedded
                    bar.update(task, advance=count, embedded=counted[0])
                    if plain is not None:
                        plain.advance(count, embedded, final)

                for window in _batched(self._admitted(items, report), self.window):
                    pending = self._pending(window, report)
                    advance(len(window) - len(pending))  # already stored: done without embedding
                    # Similar lengths in one batch waste less padding: the biggest lever on CPU throughput.
                    pending.sort(key=lambda item: len(item.description))
                    for start in range(0, len(pending), self.chunk_size):
                        chunk = pending[start : start + self.chunk_size]
                        vectors = self.embedder.encode([item.description for item in chunk])
                        report.embedded += len(chunk)
                        write(chunk, vectors)
                        advance(len(chunk), embedded=len(chunk))  # per chunk: the speed shows from the first minute
                advance(0, final=True)
        finally:
            report.seconds += time.perf_counter() - started
        report.total_in_store = self.store.count()
        return report

    @staticmethod
    def _admitted(items: Iterable[Item], report: IndexReport) -> Iterator[Item]:
        """Items that may be stored, each id once (the first wins; later copies are counted)."""
        seen: set[str] = set()  # ids only: ~100 bytes each, 40 MB for the 400k-item dataset
        for item in items:
            report.read += 1
            if (problem := item.problem()) is not None:
                report.skipped[problem] += 1
            elif item.id in seen:
                report.skipped["duplicate_id"] += 1
            else:
                seen.add(item.id)
                yield item

    def _pending(self, items: list[Item], report: IndexReport) -> list[Item]:
        step = self.store.max_batch_size
        pending: list[Item] = []
        for start in range(0, len(items), step):
            chunk = items[start : start + step]
            stored = self.store.stored_hashes([item.id for item in chunk])
            for item in chunk:
                if stored.get(item.id) == content_hash(item):
                    report.already_stored += 1
                else:
                    pending.append(item)
        return pending

    @contextlib.contextmanager
    def _writer(self, report: IndexReport) -> Iterator[Callable[[list[Item], Any], None]]:
        """A ``write(items, vectors)`` that upserts in a background thread, two chunks queued at
        most; a failed write is raised by the next ``write`` or when the block ends."""
        writes: queue.Queue[Any] = queue.Queue(maxsize=2)
        errors: list[BaseException] = []

        def writer() -> None:
            while (job := writes.get()) is not None:
                if not errors:
                    try:
                        report.stored += self.store.upsert(*job)
                    except BaseException as error:  # surfaced in the main thread
                        errors.append(error)

        def write(chunk: list[Item], vectors: Any) -> None:
            if errors:
                raise errors[0]
            writes.put((chunk, vectors))

        thread = threading.Thread(target=writer, name="chroma-writer", daemon=True)
        thread.start()
        try:
            yield write
        finally:
            writes.put(None)
            thread.join()
        if errors:
            raise errors[0]

    def _progress_bar(self) -> Progress:
        return Progress(
            TextColumn("[bold]{task.description}"),
            MofNCompleteColumn(),
            ItemsPerSecond(),
            disable=not self.progress,
            transient=False,
            console=self.console,
        )


def _batched(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    """Lists of ``size`` items (the last may be shorter); ``itertools.batched`` is Python 3.12+."""
    iterator = iter(items)
    while window := list(itertools.islice(iterator, size)):
        yield window
