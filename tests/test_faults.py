"""Fault injection: hostile data, files, settings and LLMs. Each test reproduces one defect of
the reliability issue (#12) and fails on the code before its fix."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag_pricer.embeddings import Embedder
from rag_pricer.estimate import Estimate, Query
from rag_pricer.estimator import Estimator
from rag_pricer.guard import CEILING, FLOOR
from rag_pricer.items import MAX_PRICE, InvalidRecord, Item
from rag_pricer.pricer import Pricer, UnusablePrice
from rag_pricer.settings import Settings
from rag_pricer.store import ProductStore, _metadata

from ingest.index import Indexer


# 1. absurd prices -----------------------------------------------------------------------------


@pytest.mark.parametrize("price", [1e300, 1e6, 1000.0, 0.01])
def test_records_with_absurd_prices_are_refused(price: float) -> None:
    with pytest.raises(InvalidRecord) as caught:
        Item.from_record({"id": "a", "title": "t", "price": price})
    assert caught.value.reason == "price_out_of_range"


def test_the_indexer_refuses_absurd_prices_and_counts_them(tmp_path: Path, train_items: list[Item], embedder: Embedder) -> None:
    items = train_items[:5] + [replace(train_items[5], price=1e300), replace(train_items[6], price=math.inf)]
    store = ProductStore(tmp_path / "s")
    report = Indexer(store, embedder, progress=False).run(items)
    assert report.stored == 5 and store.count() == 5
    assert dict(report.skipped) == {"price_out_of_range": 2}


@pytest.fixture()
def poisoned_settings(tmp_path: Path, train_items: list[Item], embedder: Embedder) -> tuple[Settings, Item]:
    """A store written by an older version: one near-copy of an item priced 1e300."""
    store = ProductStore(tmp_path / "poisoned")
    good = train_items[:40]
    store.upsert(good, embedder.encode([i.description for i in good]))
    poison = replace(good[0], id="poison", title=good[0].title + " (new model)", price=1e300)
    store.collection().upsert(
        ids=[poison.id], embeddings=embedder.encode([poison.description]),
        documents=[poison.description], metadatas=[_metadata(poison)],
    )
    settings = Settings(store_path=store.path, llm="fake", llm_cache_dir=None, models_dir=tmp_path / "m", _env_file=None)
    return settings, good[0]


@pytest.mark.parametrize("strategy", ["knn", "rag", "zero-shot"])
def test_a_poisoned_store_never_yields_an_absurd_estimate(poisoned_settings, strategy: str) -> None:
    settings, query = poisoned_settings
    estimate = Estimator.from_settings(settings).estimate(query.description + " (new model)", strategy)
    assert math.isfinite(estimate.price) and FLOOR <= estimate.price <= MAX_PRICE
    assert all(c.price <= MAX_PRICE for c in estimate.comparables)


class ConstantPricer(Pricer):
    def __init__(self, price: float) -> None:
        self.price = price

    def _estimate_many(self, queries: list[Query]) -> list[Estimate]:
        return [Estimate(price=self.price, strategy="constant-test") for _ in queries]


@pytest.mark.parametrize(("price", "expected"), [(1e300, CEILING), (0.01, FLOOR)])
def test_every_strategy_s_estimate_is_held_inside_sane_bounds(price: float, expected: float) -> None:
    estimate = ConstantPricer(price).estimate("a drill")
    assert estimate.price == expected and estimate.fallback and "outside" in estimate.fallback


@pytest.mark.parametrize("price", [math.nan, math.inf, 0.0, -5.0])
def test_a_strategy_s_non_finite_estimate_is_an_error_not_an_answer(price: float) -> None:
    with pytest.raises(UnusablePrice, match="not a finite positive price"):
        ConstantPricer(price).estimate("a drill")


def test_np_floats_are_held_too() -> None:
    assert ConstantPricer(np.float64(5e4)).estimate("x").price == CEILING
