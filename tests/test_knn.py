"""Retrieval and the knn strategy on a small real store."""

from __future__ import annotations

import math

import pytest

from rag_pricer.api import Estimator
from rag_pricer.items import Item
from rag_pricer.knowledge.retrieval import SearchOptions, mmr
from rag_pricer.knowledge.store import Neighbour
from rag_pricer.query import InvalidQuery, Query
from rag_pricer.settings import Settings
from rag_pricer.strategies.knn import weighted_price
from rag_pricer.strategies.neighbour_prices import trimmed, weighted_median


def n(price: float, similarity: float) -> Neighbour:
    return Neighbour(id=str(price), title="t", price=price, similarity=similarity)


def test_weighted_price_arithmetic_and_geometric() -> None:
    assert weighted_price([n(10, 0.5), n(40, 0.5)], power=1, mean="geometric") == pytest.approx(20.0)
    assert weighted_price([n(10, 0.5), n(40, 0.5)], power=1, mean="arithmetic") == pytest.approx(25.0)
    # weights 0.9 and 0.3 (power 1)
    pair = [n(10, 0.9), n(40, 0.3)]
    assert weighted_price(pair, power=1, mean="arithmetic") == pytest.approx((0.9 * 10 + 0.3 * 40) / 1.2)
    assert weighted_price(pair, power=1, mean="geometric") == pytest.approx(
        math.exp((0.9 * math.log(10) + 0.3 * math.log(40)) / 1.2)
    )
    # power 2: weights 0.81 and 0.09
    assert weighted_price(pair, power=2) == pytest.approx((0.81 * 10 + 0.09 * 40) / 0.9)
    with pytest.raises(ValueError):
        weighted_price([])
    with pytest.raises(ValueError, match="mean"):
        weighted_price(pair, mean="harmonic")


def test_weighted_median_takes_the_value_where_half_the_weight_is_reached() -> None:
    assert weighted_median([1.0, 2.0, 3.0], [1.0, 1.0, 1.0]) == 2.0
    assert weighted_median([1.0, 2.0, 3.0], [1.0, 1.0, 5.0]) == 3.0
    assert weighted_median([30.0, 10.0, 20.0], [1.0, 5.0, 1.0]) == 10.0  # unsorted input
    with pytest.raises(ValueError):
        weighted_median([], [])


def test_robust_combinations_ignore_the_accessory_the_other_comparables_contradict() -> None:
    # issue 19: a Boss DS-1 pedal's comparables: pedals around $60 and a 9V adapter at $9.99
    pedals = [n(62.99, 0.92), n(9.99, 0.90), n(59.0, 0.88), n(69.0, 0.86), n(55.0, 0.85)]
    mean = weighted_price(pedals, power=4)
    assert mean < 52  # the adapter drags the weighted mean down
    median = weighted_price(pedals, power=4, mean="median")
    assert median == 59.0
    trim = weighted_price(pedals, power=4, mean="trimmed")
    kept = [p for p in pedals if p.price != 9.99]
    assert trimmed(pedals, power=4) == kept
    assert trim == pytest.approx(weighted_price(kept, power=4))
    # when nothing is contradicted, trimmed is the plain weighted mean
    agreeing = [n(50.0, 0.9), n(60.0, 0.8), n(70.0, 0.7)]
    assert weighted_price(agreeing, mean="trimmed") == pytest.approx(weighted_price(agreeing))


def test_knn_prices_from_evidence_and_excludes_the_item_itself(settings: Settings, train_items: list[Item]) -> None:
    estimator = Estimator.from_settings(settings)
    target = train_items[5]  # stored: its own price must not be used
    estimate = estimator.estimate(target, "knn", k=5)
    assert estimate.strategy == "knn" and len(estimate.comparables) == 5
    assert target.id not in {c.id for c in estimate.comparables}
    prices = [c.price for c in estimate.comparables]
    assert min(prices) <= estimate.price <= max(prices)
    sims = [c.similarity for c in estimate.comparables]
    assert sims == sorted(sims, reverse=True) and all(-1 <= s <= 1 for s in sims)
    # the same text pasted by a user is an exact copy too
    pasted = estimator.estimate(target.description, "knn", k=5)
    assert target.id not in {c.id for c in pasted.comparables}


def test_batch_equals_one_at_a_time(settings: Settings, dev_items: list[Item]) -> None:
    pricer = Estimator.from_settings(settings).pricer("knn")
    batch = pricer.estimate_many(dev_items[:6])
    single = [pricer.estimate(item) for item in dev_items[:6]]
    # padding in a batch changes the embeddings in the 7th digit, not the neighbours
    assert [e.price for e in batch] == pytest.approx([e.price for e in single], rel=1e-4)
    assert [[c.id for c in e.comparables] for e in batch] == [[c.id for c in e.comparables] for e in single]


def test_category_filter_and_fallback_when_nothing_matches(settings: Settings, dev_items: list[Item]) -> None:
    estimator = Estimator.from_settings(settings)
    filtered = estimator.estimate(dev_items[0], "knn", category="Automotive")
    assert {c.category for c in filtered.comparables} == {"Automotive"}
    nothing = estimator.estimate(dev_items[0], "knn", category="No Such Category")
    assert nothing.comparables and "no product matched the filter" in nothing.notes[0]
    banded = estimator.estimate(dev_items[0], "knn", min_price=100, max_price=200)
    assert all(100 <= c.price <= 200 for c in banded.comparables)


def test_mmr_prefers_diverse_candidates() -> None:
    import numpy as np

    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    near_a = (a - 0.05 * b) / np.linalg.norm(a - 0.05 * b)
    cands = [
        Neighbour("1", "a", 1, 0.9, embedding=a),
        Neighbour("2", "a'", 1, 0.89, embedding=near_a),
        Neighbour("3", "b", 1, 0.5, embedding=b),
    ]
    query = (a + 0.5 * b) / np.linalg.norm(a + 0.5 * b)
    assert [c.id for c in mmr(query, cands, k=2, lambda_mult=0.5)] == ["1", "3"]
    assert [c.id for c in mmr(query, cands, k=2, lambda_mult=1.0)] == ["1", "2"]


def test_mmr_search_on_the_store(settings: Settings, dev_items: list[Item]) -> None:
    estimator = Estimator.from_settings(settings)
    hits = estimator.resources.retriever.search(Query.of(dev_items[1]), SearchOptions(k=4, mmr=True, fetch_k=12))
    assert len(hits) == 4 and len({h.id for h in hits}) == 4


def test_bad_input(settings: Settings) -> None:
    estimator = Estimator.from_settings(settings)
    with pytest.raises(InvalidQuery):
        estimator.estimate("   ", "knn")
    long = estimator.estimate("cordless drill 18V " * 2000, "knn")
    assert long.price > 0 and any("truncated" in note for note in long.notes)


@pytest.mark.parametrize(
    "filters",
    [{"category": "Automotive"}, {"min_price": 20.0, "max_price": 80.0}, {"category": "Automotive", "max_price": 50.0}],
)
def test_over_fetched_filtering_finds_what_chroma_filtering_finds(
    settings: Settings, dev_items: list[Item], filters, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from rag_pricer.pricing.resources import Resources

    retriever = Resources(settings).retriever
    queries = [Query.of(item) for item in dev_items[:8]]
    vectors = retriever.embedder.encode([query.text for query in queries])
    by_chroma = retriever.search_vectors(queries, vectors, SearchOptions(k=5, filter_overfetch=0, **filters))
    assert all(found for found in by_chroma)  # every query has matches to compare
    wheres: list = []
    query = retriever.store.query
    monkeypatch.setattr(retriever.store, "query", lambda *a, **kw: wheres.append(kw.get("where")) or query(*a, **kw))
    # over-fetching no more than the 8 nearest of 400 stored items leaves queries short (Chroma
    # filters those); growing past the 400 reads them all, and leaves none to Chroma
    for overfetch_max, chroma_filtered in ((8, True), (6400, False)):
        wheres.clear()
        options = replace(SearchOptions(k=5, **filters), filter_overfetch=8, filter_overfetch_max=overfetch_max)
        here = retriever.search_vectors(queries, vectors, options)
        assert [[n.id for n in found] for found in here] == [[n.id for n in found] for found in by_chroma]
        assert all(options.matches(n) for found in here for n in found)
        # (the first read of the whole store, unfiltered, is a query too: where None)
        assert any(where is not None for where in wheres) == chroma_filtered


def test_the_python_filter_is_the_where_filter() -> None:
    options = SearchOptions(category="Automotive", min_price=10, max_price=20)
    assert options.where() == {
        "$and": [{"category": "Automotive"}, {"price": {"$gte": 10.0}}, {"price": {"$lte": 20.0}}]
    }
    assert options.matches(Neighbour("1", "t", 10.0, 0.9, "Automotive"))
    assert options.matches(Neighbour("1", "t", 20.0, 0.9, "Automotive"))
    assert not options.matches(Neighbour("1", "t", 20.01, 0.9, "Automotive"))
    assert not options.matches(Neighbour("1", "t", 15.0, 0.9, "Appliances"))
    assert not options.matches(Neighbour("1", "t", 15.0, 0.9, None))
    assert SearchOptions(max_price=5).matches(Neighbour("1", "t", 4.0, 0.9, None))
