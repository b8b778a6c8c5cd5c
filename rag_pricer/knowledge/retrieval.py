"""Finding comparable products: embed the query, search the store, clean the results."""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    #: a filtered search first takes this many nearest products (of the whole store, or of
    #: the category's partition when the store keeps them) and filters them here, taking 4x more
    #: while too few pass, up to ``filter_overfetch_max``; Chroma's own filter (linear in the
    #: store: seconds at 400k products, see benchmarks/filters.py) takes only the queries still
    #: short then. 0: always let Chroma filter.
    filter_overfetch: int = 100
    filter_overfetch_max: int = 6400

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
        """The ``fetch`` nearest products passing the filter, per vector (see ``_filtered``)."""
        where = options.where()
        if where is None or options.filter_overfetch <= 0:
            return self.store.query(vectors, k=fetch, where=where, with_embeddings=options.mmr)
        return self._filtered(vectors, fetch, options, where)

    def _filtered(
        self, vectors: np.ndarray, fetch: int, options: SearchOptions, where: dict[str, Any]
    ) -> list[list[Neighbour]]:
        """Filtered search by over-fetching: the ``n`` nearest products (of the category's
        partition when the store keeps one, else of the whole store), checked in that order
        against the stored metadata until ``fetch`` pass; while too few pass, ``n`` grows 4x. The
        result is the ``fetch`` nearest that pass among the ``n`` nearest: what an exact filtered
        search finds, up to HNSW's own recall. Queries still short at ``filter_overfetch_max`` go
        to Chroma's ``where``; a source with fewer than ``n`` products was read whole, so what
        passed is all there is. Each Chroma call costs more than a few rows it reads, and each
        row of metadata more than an id (benchmarks/filters.py): the first few nearest of the
        whole store come with their metadata in one query, later ones as ids, whose metadata is
        read in as many rows as the share that passed so far says are needed."""
        source = options.category if options.category and self.store.partitioned() else None
        checked: list[dict[str, Neighbour | None]] = [{} for _ in range(len(vectors))]
        hits: list[list[Neighbour]] = [[] for _ in range(len(vectors))]
        todo = list(range(len(vectors)))
        # the first read of the whole store brings metadata, which costs per row: a few rows,
        # as many as the query's own category or price band needs (their 8th passing product is
        # the 10th nearest, median at 400k); then ids from filter_overfetch on, growing 4x
        # the ids of a partition are cheap, and its graph needs a wider search (ef = n) for a
        # query far from the category: Electronics for any query at 400k, recall 0.91 at 100, 0.997 at 400
        n = _first_n(source, fetch, options)
        first = True
        while todo:
            found: dict[int, list[tuple[str, float]]] = {}
            whole = True  # whether fewer than n found means the source was read whole
            if first and source is None:  # ids with their metadata, in one call
                whole = False  # (this query leaves out products with an impossible price)
                for i, probe in zip(todo, self.store.query(vectors[todo], k=n, with_embeddings=options.mmr)):
                    checked[i].update({hit.id: hit if options.matches(hit) else None for hit in probe})
                    found[i] = [(hit.id, hit.similarity) for hit in probe]
            else:
                ranked = self.store.nearest_ids(vectors[todo], n, category=source)
                if ranked is None:  # the store has no partition of this category (yet)
                    source = None
                    n = _first_n(source, fetch, options)
                    continue
                found = dict(zip(todo, ranked))
                self._check(found, checked, fetch, options, all_pass=first and not _price_bounded(options))
            first = False
            short = []
            for i, nearest in found.items():
                passed = [hit for item_id, _ in nearest if (hit := checked[i].get(item_id)) is not None]
                hits[i] = passed[:fetch]
                if len(passed) < fetch and (len(nearest) >= n or not whole):
                    short.append(i)
            if short and n >= options.filter_overfetch_max:
                filtered = self.store.query(vectors[short], k=fetch, where=where, with_embeddings=options.mmr)
                for i, result in zip(short, filtered):
                    hits[i] = result
                break
            todo, n = short, min(max(n * 4, options.filter_overfetch), max(options.filter_overfetch_max, fetch))
        return hits

    def _check(
        self,
        found: dict[int, list[tuple[str, float]]],
        checked: list[dict[str, Neighbour | None]],
        fetch: int,
        options: SearchOptions,
        all_pass: bool = False,
    ) -> None:
        """Read the stored metadata of the ranked ids in ``found``, nearest first, until
        ``fetch`` of each query's pass (``checked[i]``: id -> the product, or ``None`` when it
        fails the filter or is no longer stored). Each read takes the rows the share passed so
        far says are needed, and half again (``all_pass``: a category's partition asked for its
        category alone, where all should pass)."""
        while True:
            asked: dict[int, list[tuple[str, float]]] = {}
            for i, nearest in found.items():
                read = [hit for item_id, _ in nearest if item_id in checked[i] for hit in (checked[i][item_id],)]
                passed = sum(hit is not None for hit in read)
                share = 1.0 if all_pass and not read else (passed + 1) / (len(read) + 1)
                step = int((fetch - passed) / share * 1.5) + 2
                count, unread = 0, list[tuple[str, float]]()
                for item_id, similarity in nearest:
                    if count >= fetch or len(unread) >= step:
                        break
                    if item_id in checked[i]:
                        count += checked[i][item_id] is not None
                    else:  # unread before the fetch-th pass: it may pass, and rank before it
                        unread.append((item_id, similarity))
                if unread:
                    asked[i] = unread
            if not asked:
                return
            similarities = {item_id: s for unread in asked.values() for item_id, s in unread}
            products = self.store.neighbours_of(similarities, with_embeddings=options.mmr)
            for i, unread in asked.items():
                for item_id, similarity in unread:
                    product = products.get(item_id)
                    ok = product is not None and options.matches(product)
                    checked[i][item_id] = replace(product, similarity=similarity) if ok and product else None

    def search(self, query: Query, options: SearchOptions = SearchOptions()) -> list[Neighbour]:
        return self.search_many([query], options)[0]


def _first_n(partition: str | None, fetch: int, options: SearchOptions) -> int:
    """How many nearest products a filtered search reads first (see ``Retriever._filtered``)."""
    if partition:
        return min(4 * max(options.filter_overfetch, fetch), max(options.filter_overfetch_max, fetch))
    return max(min(3 * fetch, options.filter_overfetch), fetch)


def _price_bounded(options: SearchOptions) -> bool:
    return options.min_price is not None or options.max_price is not None


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
