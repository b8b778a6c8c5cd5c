"""Finding comparable products: embed the query, search the store, clean the results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rag_pricer.knowledge.embeddings import Embedder
from rag_pricer.knowledge.store import Neighbour, ProductStore
from rag_pricer.query import Query


@dataclass(frozen=True)
class SearchOptions:
    """How to search: how many, with which metadata filter, and whether to diversify (MMR)."""

    k: int = 5
    category: str | None = None
    min_price: float | None = None
    max_price: float | None = None
    mmr: bool = False
    mmr_lambda: float = 0.5
    fetch_k: int = 20
    #: a filtered search first takes this many nearest products of the whole store and filters
    #: them here; Chroma filters (slower, see benchmarks/filters.py) only the queries left short.
    #: 0: always let Chroma filter.
    filter_overfetch: int = 100

    def where(self) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        if self.category:
            clauses.append({"category": self.category})
        if self.min_price is not None:
            clauses.append({"price": {"$gte": float(self.min_price)}})
        if self.max_price is not None:
            clauses.append({"price": {"$lte": float(self.max_price)}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def matches(self, neighbour: Neighbour) -> bool:
        """Whether ``neighbour`` passes the filter of ``where()`` (the same clauses, in Python)."""
        return (
            (not self.category or neighbour.category == self.category)
            and (self.min_price is None or neighbour.price >= self.min_price)
            and (self.max_price is None or neighbour.price <= self.max_price)
        )


class Retriever:
    """Embeds queries and returns their comparable products, never the query item itself."""

    def __init__(self, embedder: Embedder, store: ProductStore) -> None:
        self.embedder = embedder
        self.store = store

    def fingerprint(self) -> dict[str, Any]:
        """What the neighbours found depend on: the embedding model and runtime, and the store."""
        return self.embedder.fingerprint() | self.store.fingerprint()

    def search_many(self, queries: list[Query], options: SearchOptions = SearchOptions()) -> list[list[Neighbour]]:
        if not queries:
            return []
        self.store.collection()  # a missing store fails here, before the model is loaded for nothing
        return self.search_vectors(queries, self.embedder.encode_queries([query.text for query in queries]), options)

    def search_vectors(
        self, queries: list[Query], vectors: np.ndarray, options: SearchOptions = SearchOptions()
    ) -> list[list[Neighbour]]:
        """``search_many`` with the queries' embeddings already computed (by this embedder)."""
        if not queries:
            return []
        # Over-fetch: the item itself may be among the hits, and MMR needs candidates to choose from.
        fetch = max(options.fetch_k, options.k + 1) if options.mmr else options.k + 1
        hits = self._query(vectors, fetch, options)
        results = []
        for query, vector, found in zip(queries, vectors, hits):
            found = [n for n in found if not _is_copy(query, n)]
            found = mmr(vector, found, options.k, options.mmr_lambda) if options.mmr else found[: options.k]
            results.append(found)
        return results

    def _query(self, vectors: np.ndarray, fetch: int, options: SearchOptions) -> list[list[Neighbour]]:
        """The ``fetch`` nearest products passing the filter, per vector. When at least ``fetch``
        of the ``filter_overfetch`` nearest products of the whole store pass, they are exactly
        the nearest that pass; the other queries are filtered by Chroma."""
        where = options.where()
        if where is None or options.filter_overfetch <= fetch:
            return self.store.query(vectors, k=fetch, where=where, with_embeddings=options.mmr)
        nearest = self.store.query(vectors, k=options.filter_overfetch, with_embeddings=options.mmr)
        hits = [[n for n in found if options.matches(n)][:fetch] for found in nearest]
        short = [i for i, found in enumerate(hits) if len(found) < fetch]
        if short:
            filtered = self.store.query(vectors[short], k=fetch, where=where, with_embeddings=options.mmr)
            for i, found in zip(short, filtered):
                hits[i] = found
        return hits

    def search(self, query: Query, options: SearchOptions = SearchOptions()) -> list[Neighbour]:
        return self.search_many([query], options)[0]


def _is_copy(query: Query, neighbour: Neighbour) -> bool:
    """The query item itself (same id) or a verbatim copy of its text: using its price is leakage."""
    return (query.id is not None and neighbour.id == query.id) or " ".join(neighbour.document.split()) == " ".join(
        query.text.split()
    )


def mmr(query: np.ndarray, candidates: list[Neighbour], k: int, lambda_mult: float = 0.5) -> list[Neighbour]:
    """Maximal marginal relevance: trade similarity to the query against redundancy among picks."""
    if len(candidates) <= k:
        return candidates
    vectors = np.stack([c.embedding for c in candidates])  # type: ignore[misc]
    relevance = vectors @ query
    chosen: list[int] = [int(np.argmax(relevance))]
    while len(chosen) < k:
        redundancy = (vectors @ vectors[chosen].T).max(axis=1)
        score = lambda_mult * relevance - (1 - lambda_mult) * redundancy
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return [candidates[i] for i in chosen]
