"""Embed items and write them to the knowledge base: idempotent, resumable, pipelined."""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

from rag_pricer.embeddings import Embedder
from rag_pricer.items import Item
from rag_pricer.store import ProductStore, content_hash


class ItemsPerSecond(ProgressColumn):
    """Rich column showing the task's speed in items/s."""

    def render(self, task: Any) -> Text:
        return Text(f"{task.speed or 0:7.1f} items/s")


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
        return self.embedded / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["skipped"] = dict(self.skipped)
        data["items_per_s"] = round(self.items_per_s, 1)
        data["seconds"] = round(self.seconds, 2)
        return data


class Indexer:
    """Writes items to a ``ProductStore``, skipping those already stored with the same content.

    Ids are the item ids and writes are upserts, so a run killed half way and started again
    finishes the job without duplicates. Embedding (the bottleneck) runs in the calling thread
    while a writer thread upserts the previous chunk, so Chroma's time hides behind the model's.
    """

    def __init__(self, store: ProductStore, embedder: Embedder, chunk_size: int = 512, progress: bool = True) -> None:
        self.store = store
        self.embedder = embedder
        self.chunk_size = chunk_size
        self.progress = progress

    def run(self, items: Iterable[Item], report: IndexReport | None = None) -> IndexReport:
        report = report or IndexReport()
        started = time.perf_counter()
        pending = self._pending(self._unique(items, report), report)
        # Similar lengths in one batch waste less padding: the biggest lever on CPU throughput.
        pending.sort(key=lambda item: len(item.description))
        self._embed_and_write(pending, report)
        report.seconds += time.perf_counter() - started
        report.total_in_store = self.store.count()
        return report

    @staticmethod
    def _unique(items: Iterable[Item], report: IndexReport) -> list[Item]:
        by_id: dict[str, Item] = {}
        for item in items:
            report.read += 1
            if (problem := item.problem()) is not None:
                report.skipped[problem] += 1
                continue
            if item.id in by_id:
                report.skipped["duplicate_id"] += 1
            by_id[item.id] = item
        return list(by_id.values())

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

    def _embed_and_write(self, pending: list[Item], report: IndexReport) -> None:
        if not pending:
            return
        writes: queue.Queue[Any] = queue.Queue(maxsize=2)
        errors: list[BaseException] = []

        def writer() -> None:
            while (job := writes.get()) is not None:
                if not errors:
                    try:
                        report.stored += self.store.upsert(*job)
                    except BaseException as error:  # surfaced in the main thread below
                        errors.append(error)

        thread = threading.Thread(target=writer, name="chroma-writer", daemon=True)
        thread.start()
        try:
            with self._progress_bar() as bar:
                task = bar.add_task("embedding", total=len(pending))
                for start in range(0, len(pending), self.chunk_size):
                    if errors:
                        break
                    chunk = pending[start : start + self.chunk_size]
                    vectors = self.embedder.encode([item.description for item in chunk])
                    report.embedded += len(chunk)
                    writes.put((chunk, vectors))
                    bar.advance(task, len(chunk))
        finally:
            writes.put(None)
            thread.join()
        if errors:
            raise errors[0]

    def _progress_bar(self) -> Progress:
        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            ItemsPerSecond(),
            TimeRemainingColumn(),
            disable=not self.progress,
            transient=False,
        )
