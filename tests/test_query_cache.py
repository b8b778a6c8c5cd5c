"""The query-embedding cache: a hit returns the vector first computed, the cache stays bounded,
embedders of different settings never share a vector, and retrieval uses it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from rag_pricer.knowledge.embeddings import Embedder
from rag_pricer.knowledge.query_cache import QueryCache
from rag_pricer.knowledge.retrieval import Retriever
from rag_pricer.knowledge.store import ProductStore
from rag_pricer.query import Query
from rag_pricer.settings import Settings


class CountingEmbedder(Embedder):
    """Deterministic vectors that depend on the backend and the text; counts encoded texts."""

    def __init__(self, backend: str = "onnx", query_cache: QueryCache | None = None) -> None:
        super().__init__(backend=backend, query_cache=query_cache)
        self.encoded: list[str] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.encoded += list(texts)
        seeds = [hash((self.backend, text)) % 2**32 for text in texts]
        rows = [np.random.default_rng(seed).normal(size=8) for seed in seeds]
        return np.array(rows, dtype=np.float32).reshape(len(texts), 8)


def test_a_hit_returns_the_identical_vector_without_encoding() -> None:
    embedder = CountingEmbedder(query_cache=QueryCache(16))
    first = embedder.encode_queries(["a red kettle", "a blue drill"])
    again = embedder.encode_queries(["a blue drill", "a red kettle"])
    assert embedder.encoded == ["a blue drill", "a red kettle"]  # sorted misses, encoded once
    np.testing.assert_array_equal(again, first[::-1])
    assert embedder.query_cache.hits == 2 and embedder.query_cache.misses == 2


def test_only_the_misses_are_encoded_in_one_call_and_order_is_kept() -> None:
    embedder = CountingEmbedder(query_cache=QueryCache(16))
    embedder.encode_queries(["b"])
    vectors = embedder.encode_queries(["a", "b", "c", "a"])
    assert embedder.encoded == ["b", "a", "c"]
    np.testing.assert_array_equal(vectors, CountingEmbedder().encode(["a", "b", "c", "a"]))


def test_callers_cannot_change_what_the_cache_returns() -> None:
    embedder = CountingEmbedder(query_cache=QueryCache(4))
    vectors = embedder.encode_queries(["x"])
    vectors[:] = 0
    assert np.abs(embedder.encode_queries(["x"])).sum() > 0


def test_the_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache = QueryCache(3)
    embedder = CountingEmbedder(query_cache=cache)
    embedder.encode_queries(["a", "b", "c"])
    embedder.encode_queries(["a"])  # a is now the most recent: b goes first
    embedder.encode_queries(["d", "e"])
    assert len(cache) == 3
    embedder.encoded.clear()
    embedder.encode_queries(["a", "b", "c", "d", "e"])
    assert embedder.encoded == ["b", "c"]


def test_embedders_with_different_settings_do_not_share_vectors() -> None:
    cache = QueryCache(16)
    fp32 = CountingEmbedder("onnx", query_cache=cache)
    int8 = CountingEmbedder("onnx-int8", query_cache=cache)
    fp32.encode_queries(["a kettle"])
    got = int8.encode_queries(["a kettle"])
    assert int8.encoded == ["a kettle"]  # a miss: the fp32 vector was not reused
    np.testing.assert_array_equal(got, CountingEmbedder("onnx-int8").encode(["a kettle"]))
    assert len(cache) == 2


def test_no_cache_encodes_every_time_and_bad_sizes_are_refused() -> None:
    embedder = CountingEmbedder()
    embedder.encode_queries(["a"])
    embedder.encode_queries(["a"])
    assert embedder.encoded == ["a", "a"]
    assert embedder.encode_queries([]).shape[0] == 0
    with pytest.raises(ValueError, match="at least 1"):
        QueryCache(0)


def test_retrieval_through_the_cache_finds_the_same_neighbours(small_store: ProductStore, dev_items) -> None:
    cached = Retriever(Embedder(query_cache=QueryCache(8)), small_store)
    queries = [Query.of(item.description) for item in dev_items[:3]]
    first = cached.search_many(queries)
    again = cached.search_many(queries)
    assert cached.embedder.query_cache.hits == 3
    assert [[n.id for n in found] for found in again] == [[n.id for n in found] for found in first]
    assert [[n.similarity for n in found] for found in again] == [[n.similarity for n in found] for found in first]
    uncached = Retriever(Embedder(backend="torch"), small_store).search_many(queries)
    assert [[n.id for n in found] for found in uncached] == [[n.id for n in found] for found in first]


def test_the_service_settings_build_a_bounded_cache(settings: Settings) -> None:
    from rag_pricer.pricing.resources import Resources

    embedder = Resources(settings.model_copy(update={"embedding_cache_size": 5})).embedder
    assert embedder.query_cache is not None and embedder.query_cache.maxsize == 5
    assert Resources(settings.model_copy(update={"embedding_cache_size": 0})).embedder.query_cache is None
