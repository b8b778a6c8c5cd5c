"""Scoring one pricer on a list of items: ``Evaluation(pricer, items).run()``."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from rag_pricer.evaluation.bootstrap import Bootstrap
from rag_pricer.evaluation.progress import progress_bar
from rag_pricer.evaluation.results import EvaluationResult, ItemResult
from rag_pricer.items import Item
from rag_pricer.pricing.pricer import Pricer
from rag_pricer.pricing.values import Estimate

#: items per ``estimate_many`` call for strategies that batch (embedding a batch is much faster)
DEFAULT_BATCH_SIZE = 64

Chunk = list[tuple[int, Item]]


class LeakageError(ValueError):
    """The pricer has seen (trained on, or can retrieve) items it is asked to score."""

    def __init__(self, strategy: str, leaked: Sequence[str], total: int) -> None:
        self.strategy = strategy
        self.leaked = list(leaked)
        self.total = total
        super().__init__(
            f"{len(self.leaked)} of the {total} items to score are already known to strategy {strategy!r} "
            f"(e.g. id {self.leaked[0]}): scoring them would measure memory, not estimation. "
            "Build the store (and train the models) from the train split only, e.g. "
            "`rag-pricer-ingest index ITEMS --split train --store DIR`, and score --split dev."
        )


class Evaluation:
    """Scores ``pricer`` on ``items`` and summarises the run.

    Items are cut into chunks of ``batch_size`` priced with ``estimate_many``; up to
    ``workers`` chunks are in flight at once (threads). Use ``batch_size=1`` and several
    workers for strategies that wait on an LLM, one worker and big batches for the others
    (see ``schedule``). An item that fails is recorded with its error and the run goes on:
    when a chunk raises, its items are priced one by one to find the culprit.

    ``checkpoint`` (a JSONL file) receives each finished row as it comes, and rows found
    there (or passed in ``reuse``) are not priced again: an interrupted run resumes.
    """

    def __init__(
        self,
        pricer: Pricer,
        items: Sequence[Item],
        *,
        workers: int = 1,
        batch_size: int = DEFAULT_BATCH_SIZE,
        bootstrap: Bootstrap | None = None,
        progress: bool = False,
        checkpoint: str | Path | None = None,
        reuse: Iterable[ItemResult] = (),
        settings: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.pricer = pricer
        self.items = list(items)
        self.workers = workers
        self.batch_size = batch_size
        self.bootstrap = bootstrap or Bootstrap()
        self.progress = progress
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.reuse = list(reuse)
        self.settings = settings or {}
        self.options = options or {}

    def run(self) -> EvaluationResult:
        if not self.items:
            raise ValueError("no items to evaluate")
        check_leaks(self.pricer, self.items)
        started = time.perf_counter()
        rows: list[ItemResult | None] = [None] * len(self.items)
        done = {row.id: row for row in [*self.reuse, *read_checkpoint(self.checkpoint)] if row.ok}
        for position, item in enumerate(self.items):
            # A row is reused only for the same item at the same price (the data may have changed).
            if item.id in done and done[item.id].truth == item.price:
                rows[position] = done[item.id]
        resumed = sum(row is not None for row in rows)
        todo = [(position, item) for position, item in enumerate(self.items) if rows[position] is None]
        chunks = [todo[start : start + self.batch_size] for start in range(0, len(todo), self.batch_size)]
        with progress_bar(self.progress) as bar, _Checkpoint(self.checkpoint) as checkpoint:
            task = bar.add_task(self.pricer.name, total=len(self.items), completed=resumed)
            for scored in self._score_all(chunks):
                for position, row in scored:
                    rows[position] = row
                    checkpoint.write(row)
                bar.advance(task, len(scored))
        return EvaluationResult(
            strategy=self.pricer.name,
            rows=[row for row in rows if row is not None],
            seconds=time.perf_counter() - started,
            bootstrap=self.bootstrap,
            settings=self.settings,
            options=self.options,
            model_metrics=self._model_metrics(),
            llm=self.pricer.llm_used(),
            resumed=resumed,
            range_coverage=self.pricer.calibration.coverage if self.pricer.calibration else None,
        )

    def _score_all(self, chunks: list[Chunk]) -> Iterable[list[tuple[int, ItemResult]]]:
        if self.workers == 1:
            yield from map(self._score, chunks)
            return
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="evaluation")
        try:
            futures: list[Future[list[tuple[int, ItemResult]]]] = [pool.submit(self._score, c) for c in chunks]
            for future in as_completed(futures):
                yield future.result()
        finally:
            # On Ctrl-C, drop the chunks not started yet; finished rows are already checkpointed.
            pool.shutdown(wait=True, cancel_futures=True)

    def _score(self, chunk: Chunk) -> list[tuple[int, ItemResult]]:
        """Price a chunk; if it raises, price its items one by one so only the culprit fails."""
        try:
            estimates = self.pricer.estimate_many([item for _, item in chunk])
            if len(estimates) != len(chunk):
                raise RuntimeError(f"{len(estimates)} estimates for {len(chunk)} items")
            calibrated = set(self.pricer.calibration.ids) if self.pricer.calibration else set()
            return [
                (position, _row(item, estimate, item.id in calibrated))
                for (position, item), estimate in zip(chunk, estimates)
            ]
        except Exception as error:
            if len(chunk) > 1:
                return [scored for one in chunk for scored in self._score([one])]
            position, item = chunk[0]
            return [(position, ItemResult(item.id, item.price, category=item.category, error=_describe(error)))]

    def _model_metrics(self) -> dict[str, Any] | None:
        """The pricer's own metrics (e.g. a fine-tuned model's loss) when it has a ``model_metrics()``."""
        hook = getattr(self.pricer, "model_metrics", None)
        if not callable(hook):
            return None
        try:
            # Round-trip through JSON so whatever the hook returns can be saved.
            return json.loads(json.dumps(dict(hook()), default=str))
        except Exception as error:
            return {"error": _describe(error)}


def check_leaks(pricer: Pricer, items: Sequence[Item]) -> None:
    """Refuse (``LeakageError``) when ``pricer`` already knows some of ``items``."""
    leaked = pricer.leaked_ids([item.id for item in items])
    if leaked:
        raise LeakageError(pricer.name, leaked, len(items))


def schedule(needs: Sequence[str], llm_concurrency: int, workers: int | None = None) -> tuple[int, int]:
    """``(workers, batch_size)`` for a strategy: concurrent single items when it waits on an
    LLM (default ``llm_concurrency`` workers), big sequential batches otherwise."""
    if "llm" in needs:
        return (workers or llm_concurrency, 1)
    return (workers or 1, DEFAULT_BATCH_SIZE)


def _row(item: Item, estimate: Estimate, calibrated_on: bool = False) -> ItemResult:
    price = float(estimate.price)
    usage = estimate.usage
    row = ItemResult(
        id=item.id,
        truth=item.price,
        estimate=price,
        category=item.category,
        fallback=estimate.fallback,
        latency_s=float(estimate.latency_s or 0.0),
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
        cost_usd=usage.cost_usd if usage else 0.0,
        low=estimate.low,
        high=estimate.high,
        calibrated_on=calibrated_on,
    )
    if not math.isfinite(price) or price < 0:
        row.estimate, row.error = None, f"invalid price {estimate.price!r}"
    return row


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:500]


def read_checkpoint(path: Path | None) -> list[ItemResult]:
    """Rows saved by an interrupted run; a torn last line (crash mid-write) is ignored."""
    if path is None or not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(ItemResult.from_dict(json.loads(line)))
        except (json.JSONDecodeError, TypeError, AttributeError):
            continue
    return rows


class _Checkpoint:
    """Appends finished rows to a JSONL file, flushed at once so a crash loses nothing."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._handle: Any = None

    def __enter__(self) -> _Checkpoint:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a", encoding="utf-8")
        return self

    def write(self, row: ItemResult) -> None:
        if self._handle is not None:
            self._handle.write(json.dumps(row.to_dict()) + "\n")
            self._handle.flush()

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()
