"""The scale and ingestion-memory benchmarks' own functions, on a tiny store (not timed: the
figures are the benchmarks' business; this keeps the scripts from rotting)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import benchmarks.ingest_memory as ingest_memory
import benchmarks.scale as scale
from benchmarks.support import free_port, percentiles_ms, wait_until
from rag_pricer.items import Item, write_items
from rag_pricer.knowledge.store import ProductStore


def test_one_percentile_formula_for_every_benchmark() -> None:
    """numpy's linear interpolation: p95 of 1..20 ms is 19.05 ms, p50 the median."""
    seconds = [ms / 1000 for ms in range(1, 21)]
    assert percentiles_ms(seconds) == {"p50_ms": 10.5, "p95_ms": 19.05}
    assert percentiles_ms(seconds, (99,), digits=1) == {"p99_ms": 19.8}


def test_a_free_port_and_a_wait_that_ends_with_the_answer_or_one_line() -> None:
    assert 0 < free_port() < 65536
    answers = iter([None, None, {"status": "ready"}])
    assert wait_until(lambda: next(answers), timeout_s=60, what="server", interval_s=0) == {"status": "ready"}
    with pytest.raises(SystemExit, match="server: not ready after 0 s"):
        wait_until(lambda: None, timeout_s=0, what="server")


def _items(count: int = 100) -> list[Item]:
    rng = np.random.default_rng(1)
    return [
        Item(
            id=f"p{i}",
            title=f"product {i}",
            text=f"a thing number {i}",
            price=float(rng.uniform(5, 200)),
            category="Electronics" if i % 4 == 0 else "Software",
            split="train",
        )
        for i in range(count)
    ]


@pytest.fixture()
def work(tmp_path: Path):
    """A source store of 100 products (random unit vectors), its base read back, and queries."""
    items = _items()
    vectors = np.random.default_rng(2).standard_normal((len(items), 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    source = ProductStore(tmp_path / "source")
    source.upsert(items, vectors)
    source.close()
    folder = tmp_path / "work"
    folder.mkdir()
    base = scale.read_base(tmp_path / "source", folder)
    base.save(folder)
    np.save(folder / "queries.npy", scale._normalised(vectors[:20] + 0.1))
    return folder, base, items, vectors


def test_base_is_read_back_from_a_copy_of_the_store(work, tmp_path: Path) -> None:
    folder, base, items, vectors = work
    assert not (folder / "source-copy").exists() and (tmp_path / "source" / "chroma.sqlite3").is_file()
    order = [base.ids.index(item.id) for item in items]
    np.testing.assert_allclose(base.vectors[order], vectors, atol=1e-6)
    assert base.documents[order[3]] == items[3].description
    assert base.metadatas[order[4]]["category"] == "Electronics"
    again = scale.Base.load(folder)
    assert again.ids == base.ids and np.array_equal(again.vectors, base.vectors)


def test_rounds_are_the_real_vectors_then_unique_perturbed_copies(work) -> None:
    _, base, _, _ = work
    parts = list(scale.rounds(base, 250))
    ids = [i for part_ids, _ in parts for i in part_ids]
    assert [len(p[0]) for p in parts] == [100, 100, 50] and len(set(ids)) == 250
    assert parts[0][0] == base.ids and np.array_equal(parts[0][1], base.vectors)
    assert parts[2][0][0] == f"{base.ids[0]}:2"
    copies = parts[1][1]
    assert np.allclose(np.linalg.norm(copies, axis=1), 1, atol=1e-5)
    cosine = np.sum(copies * base.vectors, axis=1)
    assert 0.9 < cosine.mean() < 1.0  # near their source, not identical to it (16-d: less noise than 384-d)
    assert np.array_equal(list(scale.rounds(base, 250))[1][1], copies)  # deterministic


def test_filters_and_exact_search(work) -> None:
    _, base, _, _ = work
    price = scale.FILTERS["price_range"]
    assert scale.matches({"price": 30.0}, price) and not scale.matches({"price": 60.0}, price)
    assert not scale.matches({}, price) and scale.matches({"category": "Electronics"}, scale.FILTERS["category"])
    assert scale.selectivity(base, scale.FILTERS["category"]) == 0.25
    top = scale.exact_top_k(base, 300, base.vectors[:3], None)
    assert [row[0] for row in top] == base.ids[:3]  # each real vector is its own nearest
    allowed = {i for i, m in zip(base.ids, base.metadatas) if m["category"] == "Electronics"}
    for row in scale.exact_top_k(base, 300, base.vectors[:3], scale.FILTERS["category"]):
        assert len(row) == scale.K and all(i.split(":")[0] in allowed for i in row)
    assert scale.recall([["a", "b"]], [["a", "c"]]) == 0.5


def test_a_persistent_row_is_measured_end_to_end(work) -> None:
    folder, base, _, _ = work
    queries = np.load(folder / "queries.npy")
    exact = {name: scale.exact_top_k(base, 300, queries, where) for name, where in scale.FILTERS.items()}
    row = scale.measure(folder, base, 300, "persistent", exact, ef_search=(10,))
    assert row["build"]["count"] == 300 and row["open"]["count"] == 300 and row["disk_mb"] > 0
    assert set(row["open"]["queries"]) == set(scale.FILTERS)
    for figures in row["open"]["queries"].values():
        assert 0 < figures["p50_ms"] <= figures["p95_ms"] and figures["recall_at_7"] >= 0.9
    assert row["ef_search_sweep"][0]["ef_search"] == 10 and "plain" in row["ef_search_sweep"][0]["queries"]
    assert row["open"]["reader"]["peak_rss_mb"] > 0
    assert not (folder / "store-persistent-300").exists()  # deleted after the row
    assert "plain p50/p95" in scale.table([row])


@pytest.mark.slow
def test_a_server_row_is_measured_end_to_end(work) -> None:
    folder, base, _, _ = work
    exact = {"plain": scale.exact_top_k(base, 150, np.load(folder / "queries.npy"), None)}
    row = scale.measure(folder, base, 150, "server", exact)
    assert row["build"]["count"] == 150 and row["build"]["server"]["peak_rss_mb"] > 0
    assert row["open"]["server"]["rss_mb"] > 0 and row["open"]["queries"]["plain"]["recall_at_7"] >= 0.9


def test_ingestion_streams_the_items_through_the_real_indexer(work, tmp_path: Path) -> None:
    folder, base, items, _ = work
    path = tmp_path / "items.jsonl"
    write_items(items, path)
    streamed = ingest_memory.streamed_items(path, 250)
    assert not isinstance(streamed, list)
    ids = [item.id for item in streamed]
    assert len(ids) == len(set(ids)) == 250 and ids[100] == "p0:1"
    embedder = ingest_memory.PrecomputedEmbedder(base)
    first, again = embedder.encode([items[5].description]), embedder.encode([items[5].description])
    np.testing.assert_allclose(first[0], base.vectors[base.ids.index("p5")], atol=1e-6)
    assert 0.9 < float(first[0] @ again[0]) < 0.9999  # a copy: near, not identical
    with pytest.raises(KeyError):
        embedder.encode(["a text no product has"])
    row = ingest_memory.run_one(folder, path, 250, "persistent")
    assert row["report"]["stored"] == 250 and row["report"]["total_in_store"] == 250
    assert row["after"]["peak_rss_mb"] >= row["before_indexing"]["rss_mb"] > 0


def test_the_filters_benchmark_s_exact_search_is_per_query_and_matches_the_scale_one(work) -> None:
    import benchmarks.filters as filters

    _, base, _, _ = work
    per_query = [filters.filters_of("Electronics", 30.0), filters.filters_of(None, 100.0)]
    assert per_query[1]["own category"] == {"category": "Appliances"}
    assert per_query[0]["own price band"] == {"min_price": 15.0, "max_price": 60.0}
    queries = base.vectors[:2]
    for name in per_query[0]:
        allowed = filters.allowed_rows(base, [f[name] for f in per_query])
        found = filters.exact_filtered(base, 300, queries, allowed)
        for q, row in enumerate(found):
            passing = {i for i, ok in zip(base.ids, allowed[q]) if ok}
            assert all(i.split(":")[0] in passing for i in row) and len(row) == min(scale.K, 3 * len(passing))
    same = filters.exact_filtered(base, 300, queries, filters.allowed_rows(base, [{"category": "Electronics"}] * 2))
    assert same == scale.exact_top_k(base, 300, queries, scale.FILTERS["category"])
    assert "avx" in filters.cpu_flags() or filters.cpu_flags().endswith("; ")
