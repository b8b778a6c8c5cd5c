"""``BaselinePricer``: a fitted baseline behind the ``Pricer`` contract."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag_pricer.items import MIN_PRICE
from rag_pricer.knowledge.embeddings import Embedder
from rag_pricer.knowledge.store import ProductStore
from rag_pricer.pricing.pricer import Pricer, files_digest
from rag_pricer.pricing.values import Estimate
from rag_pricer.query import Query
from rag_pricer.strategies.baselines.base import Baseline


class BaselinePricer(Pricer):
    """Prices queries with ``baseline``. A prediction below ``floor`` (default ``MIN_PRICE``,
    $0.50, the lowest price an item may have) is raised to it with a note: the linear
    baselines can predict zero or negative prices, which no product has. ``model_dir`` (the
    files it was loaded from) and ``embedder`` (for those that embed their input) make its
    ``fingerprint``; ``store`` (for those that read the knowledge base when they price) joins
    it too, and its products count as seen in ``leaked_ids``."""

    def __init__(
        self,
        baseline: Baseline,
        floor: float = MIN_PRICE,
        model_dir: Path | None = None,
        embedder: Embedder | None = None,
        store: ProductStore | None = None,
    ) -> None:
        if not floor > 0:
            raise ValueError(f"the floor must be positive, got {floor}")
        self.baseline = baseline
        self.floor = floor
        self.model_dir = model_dir
        self.embedder = embedder
        self.store = store
        self._trained = frozenset(baseline.trained_ids_)

    def fingerprint(self) -> dict[str, Any]:
        """The model files (retrained: another digest) and, if it embeds, the embedding model and runtime."""
        model = files_digest(self.model_dir) if self.model_dir is not None else repr(self.baseline.params())
        embedding = self.embedder.fingerprint() if self.embedder else None
        found = {"model": model, "floor": self.floor, "embedding": embedding}
        return found | ({"store": self.store.fingerprint()} if self.store is not None else {})

    def _estimate_many(self, queries: list[Query]) -> list[Estimate]:
        predictions = self.baseline.predict(queries)
        return [self._estimate(query, float(p)) for query, p in zip(queries, predictions)]

    def _estimate(self, query: Query, prediction: float) -> Estimate:
        notes = []
        if prediction < self.floor:
            notes.append(f"the model predicted ${prediction:,.2f}; raised to the floor ${self.floor:,.2f}")
        if self.baseline.uses_details and not query.details_dict():
            notes.append("no product details: weight, rank and brand set to their training means")
        return Estimate(price=max(prediction, self.floor), strategy=self.name, notes=notes)

    def leaked_ids(self, ids: Sequence[str]) -> list[str]:
        """The ``ids`` among the baseline's training items or, for one that reads the knowledge
        base, among the stored products (as ``knn`` reports them)."""
        stored = set(self.store.contains_any(list(ids))) if self.store is not None else set()
        return [i for i in ids if i in self._trained or i in stored]

    def trained_ids(self, ids: Sequence[str]) -> list[str]:
        """The ``ids`` among the baseline's training items (its neighbours, for one that reads
        the knowledge base, never include the item priced)."""
        return [i for i in ids if i in self._trained]
