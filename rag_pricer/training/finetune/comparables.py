"""The comparables of training items, retrieved exactly as at inference and cached on disk.

Each item is a ``Query`` made as ``Pricer.estimate_many`` makes it (``Query.of``: same text, same
truncation, its id), searched by the same ``Retriever`` with the same options, so the item itself
(same id or the same text) is never among its own comparables. Embedding a few thousand
queries takes minutes on CPU: the result is kept as JSON lines, one item per line, and a line is
reused only for the same item, text and k. ``embed`` computes (and keeps, beside the
comparables) the query vectors alone, so that they can be ready before the store is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag_pricer.items import Item
from rag_pricer.knowledge.retrieval import Retriever, SearchOptions
from rag_pricer.knowledge.store import Neighbour
from rag_pricer.pricing.pricer import Pricer
from rag_pricer.query import Query

Comparables = dict[str, list[Neighbour]]


def _text_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


@dataclass
class ComparablesCache:
    """Retrieves ``k`` comparables per item with ``retriever``, keeping them in ``path``."""

    retriever: Retriever
    k: int
    path: Path | None = None
    batch_size: int = 256

    def retrieve(self, items: Sequence[Item]) -> Comparables:
        queries = {item.id: Query.of(item, Pricer.max_chars) for item in items}
        found = self._cached(queries)
        missing = [q for i, q in queries.items() if i not in found]
        vectors = self._vectors(missing)
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start : start + self.batch_size]
            results = self.retriever.search_vectors(
                batch, vectors[start : start + self.batch_size], SearchOptions(k=self.k)
            )
            self._append(batch, results)
            found.update({q.id: r for q, r in zip(batch, results) if q.id})
        return {item.id: found[item.id] for item in items}

    def embed(self, items: Sequence[Item]) -> np.ndarray:
        """The query vectors of ``items`` (computed once, kept in ``PATH.vectors.npz``)."""
        return self._vectors([Query.of(item, Pricer.max_chars) for item in items])

    def _vectors(self, queries: Sequence[Query]) -> np.ndarray:
        path = self.path.with_suffix(".vectors.npz") if self.path else None
        known: dict[str, np.ndarray] = {}
        if path is not None and path.is_file():
            with np.load(path) as saved:
                known = dict(zip(saved["keys"].tolist(), saved["vectors"]))
        model = self.retriever.embedder.model_name
        keys = [_text_hash(f"{model}\x00{q.text}") for q in queries]
        todo = [(key, q.text) for q, key in zip(queries, keys) if key not in known]
        if todo:
            known.update(zip([key for key, _ in todo], self.retriever.embedder.encode([text for _, text in todo])))
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                np.savez(path, keys=np.array(list(known)), vectors=np.stack(list(known.values())))
        dimension = self.retriever.embedder.dimension
        return np.stack([known[key] for key in keys]) if keys else np.zeros((0, dimension), dtype=np.float32)

    def _cached(self, queries: dict[str, Query]) -> Comparables:
        if self.path is None or not self.path.is_file():
            return {}
        found: Comparables = {}
        for line in self.path.read_text().splitlines():
            row = json.loads(line)
            query = queries.get(row["id"])
            if query is not None and row["k"] == self.k and row["text_sha1"] == _text_hash(query.text):
                found[row["id"]] = [Neighbour(**n) for n in row["comparables"]]
        return found

    def _append(self, queries: Sequence[Query], results: Sequence[list[Neighbour]]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as out:
            for query, neighbours in zip(queries, results):
                kept = [
                    {
                        "id": n.id,
                        "title": n.title,
                        "price": n.price,
                        "similarity": n.similarity,
                        "category": n.category,
                        "document": n.document,
                    }
                    for n in neighbours
                ]
                out.write(
                    json.dumps({"id": query.id, "k": self.k, "text_sha1": _text_hash(query.text), "comparables": kept})
                    + "\n"
                )


def comparables_hash(comparables: Comparables) -> str:
    """Fingerprint of which comparables (ids and prices, in order) each item was trained with."""
    key = "\n".join(f"{i}:" + ",".join(f"{n.id}={n.price}" for n in comparables[i]) for i in sorted(comparables))
    return hashlib.sha256(key.encode()).hexdigest()
