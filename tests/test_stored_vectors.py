"""Nothing is embedded twice: training reads the vectors the knowledge base holds (same model,
same text) and embeds only the rest (issue 19, item 2)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag_pricer.items import Item
from rag_pricer.knowledge.retrieval import Retriever
from rag_pricer.knowledge.store import ProductStore
from rag_pricer.knowledge.vectors import VectorSource
from rag_pricer.settings import Settings
from rag_pricer.strategies.baselines import BASELINES
from rag_pricer.training.baselines import BaselineTrainer


class CountingEmbedder:
    """Deterministic unit vectors seeded by the text; remembers every text it embedded."""

    model_name = "fake-counting-embedder"
    dimension = 8

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.seen += list(texts)
        rows = [
            np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:15], 16)).normal(size=self.dimension)
            for t in texts
        ]
        matrix = np.array(rows, dtype=np.float64).reshape(len(texts), self.dimension)
        return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """What ``Embedder.encode_queries`` is: ``encode`` through the query cache (here: none)."""
        self.queried = [*getattr(self, "queried", []), *texts]
        return self.encode(texts)


@pytest.fixture(scope="module")
def stored(train_items: list[Item]) -> list[Item]:
    return train_items[:120]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, stored: list[Item]) -> ProductStore:
    store = ProductStore(tmp_path_factory.mktemp("store"), model=CountingEmbedder.model_name)
    store.upsert(stored, CountingEmbedder().encode([item.description for item in stored]))
    return store


def test_stored_texts_are_read_not_embedded(store: ProductStore, stored: list[Item], train_items: list[Item]) -> None:
    embedder = CountingEmbedder()
    source = VectorSource(embedder, store)
    edited = replace(stored[1], text=stored[1].text + " (new edition)")  # same id, other text
    items = [*stored[:5], edited, train_items[200], train_items[201]]  # the last two are not stored
    texts = [item.description.strip() for item in items]
    vectors = source.encode(texts, [item.id for item in items])
    assert embedder.seen == [texts[5], texts[6], texts[7]]  # only what the store cannot answer
    assert (source.counts.stored, source.counts.embedded) == (5, 3)
    np.testing.assert_allclose(vectors, CountingEmbedder().encode(texts), atol=1e-6)  # the same vectors


def test_without_ids_or_store_everything_is_embedded(store: ProductStore, stored: list[Item]) -> None:
    texts = [item.description.strip() for item in stored[:3]]
    embedder = CountingEmbedder()
    assert VectorSource(embedder, store).encode(texts).shape == (3, CountingEmbedder.dimension)
    assert VectorSource(embedder).encode(texts, [item.id for item in stored[:3]]).shape == (3, 8)
    assert len(embedder.seen) == 6


def test_a_store_of_another_model_is_never_read(store: ProductStore, stored: list[Item], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="configured for"):
        VectorSource(CountingEmbedder(), ProductStore(store.path, model="all-MiniLM-L6-v2"))
    # configured for this model, but the collection on disk recorded another: embedded, not read
    other = ProductStore(tmp_path / "other", model="another-model")
    other.upsert(stored[:3], CountingEmbedder().encode([i.description for i in stored[:3]]))
    embedder = CountingEmbedder()
    mislabelled = ProductStore(other.path, model=CountingEmbedder.model_name)
    VectorSource(embedder, mislabelled).encode([i.description.strip() for i in stored[:3]], [i.id for i in stored[:3]])
    assert len(embedder.seen) == 3


def test_training_boosting_and_boosting_nn_embeds_none_of_the_stored_items(
    store: ProductStore, stored: list[Item], train_items: list[Item], tmp_path: Path
) -> None:
    embedder = CountingEmbedder()
    retriever = Retriever(embedder, store)  # type: ignore[arg-type]
    trainer = BaselineTrainer(
        ["boosting", "boosting-nn"], embedder=embedder, vectors=VectorSource(embedder, store), retriever=retriever
    )  # type: ignore[arg-type]
    extra = train_items[300:310]  # training items the store does not hold
    trainer.train([*stored, *extra], tmp_path)
    embedded = set(embedder.seen)
    assert not embedded & {item.description.strip() for item in stored}
    assert embedded == {item.description.strip() for item in extra}
    # the same model as one trained by embedding everything
    plain = BASELINES["boosting"].cls(embedder=CountingEmbedder()).fit([*stored, *extra])  # type: ignore[call-arg]
    loaded = BASELINES["boosting"].load(tmp_path / "boosting", embedder=CountingEmbedder())  # type: ignore[arg-type]
    probe = train_items[350:360]
    np.testing.assert_allclose(loaded.predict(probe), plain.predict(probe), rtol=1e-6)


def test_for_settings_reads_the_configured_store(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, store_path=tmp_path / "store", models_dir=tmp_path / "models")
    trainer = BaselineTrainer.for_settings(settings, ["boosting-nn", "constant"])
    assert trainer.vectors is not None and trainer.vectors.store is not None
    assert trainer.vectors.store.path == tmp_path / "store" and trainer.retriever is not None
    assert BaselineTrainer.for_settings(settings, ["constant"]).vectors is None  # nothing embeds


def test_the_store_answers_as_many_queries_as_a_training_set_has(store: ProductStore) -> None:
    # boosting-nn searches the neighbours of every train item at once: 16,442 queries of 11 hits
    # once failed in Chroma with "too many SQL variables" (SQLite's limit is 32,766).
    vectors = np.random.default_rng(0).normal(size=(3_100, CountingEmbedder.dimension)).astype(np.float32)
    found = store.query(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), k=11)
    assert len(found) == 3_100 and all(len(hits) == 11 for hits in found)


def test_predicting_goes_through_the_query_cache(stored: list[Item], train_items: list[Item], tmp_path: Path) -> None:
    # prepare prices the same 2,041 fitting items with knn, boosting and boosting-nn: through the
    # shared embedder's query cache, each text is embedded once, not once per base
    embedder = CountingEmbedder()
    model = BASELINES["boosting"].cls(embedder=embedder).fit(stored)  # type: ignore[call-arg]
    probe = train_items[350:355]
    embedder.queried, before = [], len(embedder.seen)
    model.predict(probe)
    assert len(embedder.queried) == len(probe) and embedder.queried == embedder.seen[before:]
