"""``BaselineTrainer``: fits and saves a set of baselines, sharing their expensive parts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag_pricer.items import Item
from rag_pricer.knowledge.embeddings import Embedder
from rag_pricer.knowledge.retrieval import Retriever
from rag_pricer.knowledge.store import ProductStore
from rag_pricer.knowledge.vectors import VectorSource
from rag_pricer.settings import Settings
from rag_pricer.strategies.baselines.catalog import BASELINES, SharedParts, spec_of

__all__ = ["BASELINES", "BaselineTrainer", "TrainingStep"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingStep:
    """One timed step: a shared part (``shared=True``, e.g. word2vec) or a baseline fitted and
    saved to ``path``."""

    name: str
    seconds: float
    n_train: int
    shared: bool = False
    path: Path | None = None


class BaselineTrainer:
    """Fits the baselines ``names`` (default: all) on training items and saves each to
    ``out_dir / name``. A shared part (word2vec) is trained once, as its own timed step, before
    the baselines that use it; ``embedder`` (default all-MiniLM-L6-v2) serves ``boosting``;
    ``vectors`` gives it the stored items' vectors instead of embedding them again;
    ``retriever`` finds ``boosting-nn``'s neighbours; ``n_jobs`` threads serve the forest and
    LightGBM; ``seed`` seeds everything random."""

    def __init__(
        self,
        names: Sequence[str] | None = None,
        embedder: Embedder | None = None,
        n_jobs: int = 1,
        seed: int = 42,
        vectors: VectorSource | None = None,
        retriever: Retriever | None = None,
    ) -> None:
        self.names = list(names) if names is not None else list(BASELINES)
        for name in self.names:
            spec_of(name)  # unknown names fail before any work
        self.embedder = embedder
        self.n_jobs = n_jobs
        self.seed = seed
        self.vectors = vectors
        self.retriever = retriever

    @classmethod
    def for_settings(
        cls, settings: Settings, names: Sequence[str] | None = None, n_jobs: int = 1, seed: int = 42
    ) -> BaselineTrainer:
        """A trainer whose ``boosting`` and ``boosting-nn`` (when asked for) embed with the
        configured embedder and read the vectors of the items the configured store holds
        (same model, same text) from the store instead of embedding them again."""
        chosen = list(names) if names is not None else list(BASELINES)
        if not {"boosting", "boosting-nn"} & set(chosen):
            return cls(chosen, n_jobs=n_jobs, seed=seed)
        embedder = Embedder(
            settings.embedding_model,
            batch_size=settings.embedding_batch_size,
            backend=settings.embedding_backend,
            threads=settings.embedding_threads,
        )
        store = ProductStore.from_settings(settings)
        return cls(
            chosen,
            embedder=embedder,
            n_jobs=n_jobs,
            seed=seed,
            vectors=VectorSource(embedder, store),
            retriever=Retriever(embedder, store),
        )

    def steps(self) -> list[str]:
        """Step names in order: each shared part before the first baseline that uses it."""
        order: list[str] = []
        for name in self.names:
            shared = [f"{part} (shared)" for part in spec_of(name).shares.values()]
            order += [step for step in shared if step not in order]
            order.append(name)
        return order

    def train(
        self, items: Sequence[Item], out_dir: Path, on_step: Callable[[str], None] | None = None
    ) -> list[TrainingStep]:
        """Run every step; ``on_step(name)`` is called as each step starts."""
        if not items:
            raise ValueError("no training items")
        items = list(items)
        shared = SharedParts(
            [item.description for item in items],
            self.embedder,
            self.n_jobs,
            self.seed,
            vectors=self.vectors,
            retriever=self.retriever,
        )
        results = []
        for step in self.steps():
            if on_step:
                on_step(step)
            started = time.perf_counter()
            if step.endswith(" (shared)"):
                getattr(shared, step.removesuffix(" (shared)"))
                results.append(TrainingStep(step, time.perf_counter() - started, len(items), shared=True))
                continue
            baseline = spec_of(step).make(shared).fit(items)
            path = baseline.save(Path(out_dir) / step)
            results.append(TrainingStep(step, time.perf_counter() - started, len(items), path=path))
            if self.vectors is not None and self.vectors.counts.stored + self.vectors.counts.embedded:
                counts = self.vectors.counts
                log.info("%s: %d vectors read from the store, %d embedded", step, counts.stored, counts.embedded)
        return results
