"""Filtered search (category, price range, both) returns exactly what a brute-force filtered
search over the stored vectors returns, on small stores: over-fetching the whole store, from
the category partitions, and when it hands the queries left short to Chroma's ``where``; and the
partitions stay right while products are added, moved to another category and removed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag_pricer.items import Item
from rag_pricer.knowledge.retrieval import Retriever, SearchOptions
from rag_pricer.knowledge.store import PARTITIONED, ProductStore, partition_name
from rag_pricer.query import Query

DIM = 16
CATEGORIES = ["Electronics", "Software", "Tools & Home", None]


def _items(count: int, seed: int = 0, prefix: str = "p") -> tuple[list[Item], np.ndarray]:
    rng = np.random.default_rng(seed)
    items = [
        Item(
            id=f"{prefix}{i}",
            title=f"product {prefix}{i}",
            text=f"a thing number {prefix}{i}",
            price=float(np.round(rng.uniform(1, 300), 2)),
            # skewed: Electronics is rare (~6%), as a narrow category of a large store
            category=CATEGORIES[int(rng.choice(4, p=[0.06, 0.5, 0.24, 0.2]))],
            split="train",
        )
        for i in range(count)
    ]
    vectors = rng.standard_normal((count, DIM)).astype(np.float32)
    return items, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class Exact:
    """What the store holds, searched by brute force (numpy): the reference answer."""

    def __init__(self, items: list[Item], vectors: np.ndarray) -> None:
        self.rows = {item.id: (item, vector) for item, vector in zip(items, vectors)}

    def upsert(self, items: list[Item], vectors: np.ndarray) -> None:
        self.rows.update({item.id: (item, vector) for item, vector in zip(items, vectors)})

    def delete(self, ids: list[str]) -> None:
        for i in ids:
            self.rows.pop(i, None)

    def top(self, query: np.ndarray, options: SearchOptions) -> list[str]:
        passing = [
            (float(vector @ query), item.id)
            for item, vector in self.rows.values()
            if (not options.category or item.category == options.category)
            and (options.min_price is None or item.price >= options.min_price)
            and (options.max_price is None or item.price <= options.max_price)
        ]
        return [i for _, i in sorted(passing, reverse=True)[: options.k]]


FILTERS: list[dict[str, Any]] = [
    {"category": "Electronics"},  # rare: ~20 of 400
    {"category": "Tools & Home"},  # a name Chroma's collection names cannot hold as it is
    {"min_price": 20.0, "max_price": 50.0},
    {"min_price": 100.0},
    {"max_price": 4.0},  # a handful of products: fewer than k for some queries' needs
    {"category": "Electronics", "max_price": 100.0},
    {"category": "Software", "min_price": 250.0, "max_price": 260.0},
    {"category": "Nothing"},  # no product: an empty answer
]


def _search(store: ProductStore, queries: np.ndarray, options: SearchOptions) -> list[list[str]]:
    retriever = Retriever(None, store)  # type: ignore[arg-type]  (search_vectors embeds nothing)
    found = retriever.search_vectors([Query(f"query {i}") for i in range(len(queries))], queries, options)
    return [[n.id for n in hits] for hits in found]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[ProductStore, ProductStore, Exact, np.ndarray]:
    """The same 400 products in a plain store and in a partitioned one; 12 query vectors."""
    items, vectors = _items(400)
    plain = ProductStore(tmp_path_factory.mktemp("plain"))
    plain.upsert(items, vectors)
    partitioned = ProductStore(tmp_path_factory.mktemp("partitioned"))
    partitioned.upsert(items, vectors)
    counts = partitioned.partition_by_category()
    assert counts == {c: sum(item.category == c for item in items) for c in CATEGORIES if c}
    queries = np.random.default_rng(9).standard_normal((12, DIM)).astype(np.float32)
    return plain, partitioned, Exact(items, vectors), queries / np.linalg.norm(queries, axis=1, keepdims=True)


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()))
@pytest.mark.parametrize(
    "search",
    [
        {"filter_overfetch": 0},  # Chroma's where
        {"filter_overfetch": 100},  # the default: over-fetch, growing
        {"filter_overfetch": 8, "filter_overfetch_max": 32},  # short queries end at Chroma's where
    ],
    ids=["chroma-where", "over-fetch", "over-fetch-then-where"],
)
@pytest.mark.parametrize("kind", ["plain", "partitioned"])
def test_a_filtered_search_is_the_exact_filtered_search(
    stores: tuple[ProductStore, ProductStore, Exact, np.ndarray],
    filters: dict[str, Any],
    search: dict[str, int],
    kind: str,
) -> None:
    plain, partitioned, exact, queries = stores
    store = partitioned if kind == "partitioned" else plain
    options = SearchOptions(k=7, **filters, **search)
    assert _search(store, queries, options) == [exact.top(q, options) for q in queries]


def test_a_category_search_of_a_partitioned_store_reads_its_partition_not_chroma_s_filter(
    stores: tuple[ProductStore, ProductStore, Exact, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, partitioned, exact, queries = stores
    assert partitioned.partitioned()
    sources: list[Any] = []
    nearest = partitioned.nearest_ids
    monkeypatch.setattr(
        partitioned, "nearest_ids", lambda *a, **kw: sources.append(kw.get("category")) or nearest(*a, **kw)
    )
    monkeypatch.setattr(partitioned, "query", lambda *a, **kw: pytest.fail("Chroma's where was asked"))
    options = SearchOptions(k=7, category="Electronics", max_price=150.0)
    assert _search(partitioned, queries, options) == [exact.top(q, options) for q in queries]
    assert sources and set(sources) == {"Electronics"}


def test_partitions_follow_products_added_moved_and_removed(tmp_path: Path) -> None:
    items, vectors = _items(200, seed=3)
    store = ProductStore(tmp_path / "store")
    store.upsert(items[:150], vectors[:150])
    store.partition_by_category()
    exact = Exact(items[:150], vectors[:150])
    # added after partitioning, by this client and by another one (another writer of the folder)
    store.upsert(items[150:175], vectors[150:175])
    other = ProductStore(tmp_path / "store")
    other.upsert(items[175:], vectors[175:])
    exact.upsert(items[150:], vectors[150:])
    # moved: every Electronics product becomes Software, and three products lose their category
    moved = [replace(item, category="Software") for item in items if item.category == "Electronics"]
    moved_vectors = np.stack([exact.rows[item.id][1] for item in moved])
    other.upsert(moved, moved_vectors)
    exact.upsert(moved, moved_vectors)
    uncategorised = [replace(item, category=None) for item in items[:3]]
    store.upsert(uncategorised, vectors[:3])
    exact.upsert(uncategorised, vectors[:3])
    # removed
    gone = [item.id for item in items[10:40]]
    store.delete(gone + ["never-stored"])
    exact.delete(gone)

    queries = vectors[::20] + 0.01
    for category in ("Electronics", "Software", "Tools & Home"):
        options = SearchOptions(k=7, category=category)
        assert _search(store, queries, options) == [exact.top(q, options) for q in queries]
        partition = store._partition(category)
        stored = set(partition.get(include=[])["ids"]) if partition is not None else set()
        assert stored == {i for i, (item, _) in exact.rows.items() if item.category == category}
    assert partition_name("products", "Tools & Home").startswith("products.category.Tools_Home.")


def test_a_store_is_not_partitioned_until_asked_and_its_writers_then_keep_the_partitions(tmp_path: Path) -> None:
    items, vectors = _items(60, seed=5)
    store = ProductStore(tmp_path / "store")
    store.upsert(items[:30], vectors[:30])
    assert not store.partitioned()
    assert store._partition("Software") is None  # writes of an unpartitioned store keep none
    store.partition_by_category()
    reopened = ProductStore(tmp_path / "store")
    assert reopened.partitioned() and (reopened.collection().metadata or {})[PARTITIONED]
    reopened.upsert(items[30:], vectors[30:])
    software = {item.id for item in items if item.category == "Software"}
    assert set(reopened._partition("Software").get(include=[])["ids"]) == software


def test_the_ingest_cli_partitions_a_store_and_refuses_a_missing_one(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from ingest.cli import app

    items, vectors = _items(40, seed=7)
    ProductStore(tmp_path / "store").upsert(items, vectors)
    done = CliRunner().invoke(app, ["partition", "--store", str(tmp_path / "store"), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["partitioned_products"] == sum(item.category is not None for item in items)
    assert ProductStore(tmp_path / "store").partitioned()
    missing = CliRunner().invoke(app, ["partition", "--store", str(tmp_path / "typo")])
    assert missing.exit_code == 1 and "no store at" in missing.output


def test_a_search_of_an_empty_store_says_so(tmp_path: Path) -> None:
    from rag_pricer.knowledge.store import StoreError

    items, vectors = _items(5, seed=8)
    store = ProductStore(tmp_path / "store")
    store.upsert(items, vectors)
    store.delete([item.id for item in items])
    for search in (lambda: store.query(vectors[:1], k=3), lambda: store.nearest_ids(vectors[:1], 3)):
        with pytest.raises(StoreError, match="is empty"):
            search()
    with pytest.raises(StoreError, match="is empty"):
        _search(store, vectors[:1], SearchOptions(k=3, category="Software"))
