"""The traditional ML baselines: parsing, fit / save / load, safety of the saved files, the
strategies that serve them, and ``rag-pricer train-baselines``.

Every baseline is fitted once per module on the 400 train items of ``train_items`` and scored
on 50 dev items; ``boosting`` and ``boosting-nn`` use a deterministic fake embedder (the real
model is exercised by the store tests and takes long on a busy machine), ``boosting-nn`` a small
store of the train items' fake vectors.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rag_pricer.cli.app import app
from rag_pricer.items import MIN_PRICE, Item, read_items
from rag_pricer.knowledge.retrieval import Retriever, SearchOptions
from rag_pricer.knowledge.store import ProductStore
from rag_pricer.pricing.registry import registry
from rag_pricer.pricing.resources import Resources
from rag_pricer.query import InvalidQuery, Query
from rag_pricer.settings import Settings
from rag_pricer.strategies.baselines import BASELINES, Baseline, BaselinePricer, ModelFormatError, ModelNotTrained
from rag_pricer.strategies.baselines.catalog import SharedParts
from rag_pricer.strategies.baselines.details import parse_rank, parse_weight
from rag_pricer.strategies.baselines.features import FeatureBuilder
from rag_pricer.strategies.neighbour_prices import NEIGHBOUR_FEATURES

TEXT_BASELINES = ["bow", "word2vec-lr", "word2vec-svr", "word2vec-rf", "tfidf-ridge", "boosting", "boosting-nn"]


class FakeEmbedder:
    """Unit vectors drawn from a generator seeded by the text: deterministic, instant."""

    model_name = "fake-hash-embedder"
    dimension = 16

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        rows = [
            np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:15], 16)).normal(size=16) for t in texts
        ]
        matrix = np.array(rows).reshape(len(texts), self.dimension)
        return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)  # Embedder's query-cache path; this fake has no cache


@pytest.fixture(scope="module")
def dev50(items_path: Path) -> list[Item]:
    return read_items(items_path, split="dev", limit=50)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def fake_store(tmp_path_factory: pytest.TempPathFactory, train_items: list[Item]) -> ProductStore:
    """The 400 train items with their fake vectors, plus a copy of the first one's text under
    another id and price (a duplicate that must never be its neighbour)."""
    store = ProductStore(tmp_path_factory.mktemp("fake-store"), model=FakeEmbedder.model_name)
    copy = replace(train_items[0], id="copy-of-first", price=train_items[0].price / 2)
    stored = [*train_items, copy]
    store.upsert(stored, FakeEmbedder().encode([item.description for item in stored]))
    return store


@pytest.fixture(scope="module")
def fake_retriever(fake_store: ProductStore) -> Retriever:
    return Retriever(FakeEmbedder(), fake_store)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def fitted(train_items: list[Item], models_dir: Path, fake_retriever: Retriever) -> dict[str, Baseline]:
    """Every baseline fitted on the 400 train items (word2vec shared) and saved under models_dir."""
    shared = SharedParts([item.description for item in train_items], embedder=FakeEmbedder(), retriever=fake_retriever)  # type: ignore[arg-type]
    models = {}
    for name, spec in BASELINES.items():
        models[name] = spec.make(shared).fit(train_items)
        models[name].save(models_dir / name)
    return models


def _mae(predictions: np.ndarray, items: list[Item]) -> float:
    return float(np.mean(np.abs(np.maximum(predictions, MIN_PRICE) - np.array([i.price for i in items]))))


# --- parsing the details -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pounds"),
    [
        ("5 pounds", 5.0),
        ("4.4 Pounds", 4.4),
        ("12 ounces", 0.75),
        ("8.6 Ounces", 8.6 / 16),
        ("1.2 Kilograms", 1.2 * 2.20462262),
        ("391 Grams", 391 / 453.59237),
        ("1,000 Grams", 1000 / 453.59237),
        ("500 Milligrams", 500 / 453592.37),
        ("2.2 lbs", 2.2),
        ("16 oz", 1.0),
        ("\u200e3 pounds", 3.0),  # the left-to-right mark that Amazon pages carry
        (".5 kg", 0.5 * 2.20462262),
    ],
)
def test_parse_weight_converts_units_to_pounds(text: str, pounds: float) -> None:
    assert parse_weight(text) == pytest.approx(pounds, rel=1e-6)


@pytest.mark.parametrize("value", [None, "", "heavy", "5 stones", 12, {"value": 3}])
def test_parse_weight_gives_none_for_unusable_values(value: object) -> None:
    assert parse_weight(value) is None


@pytest.mark.parametrize(
    ("value", "rank"),
    [
        ({"Automotive": 909427, "Bumper Covers": 2429}, (909427 + 2429) / 2),
        ({"Tools & Home Improvement": 95657}, 95657.0),
        ("#1,234 in Tools & Home Improvement (See Top 100 in Tools) #56 in Drills", (1234 + 56) / 2),
        ("3,500", 3500.0),
        (42, 42.0),
        ({"Toys": "#12 in Toys"}, 12.0),
    ],
)
def test_parse_rank_averages_the_ranks(value: object, rank: float) -> None:
    assert parse_rank(value) == pytest.approx(rank)


@pytest.mark.parametrize("value", [None, "", {}, "See Top 100", True, [3, 4], {"A": None}])
def test_parse_rank_gives_none_for_unusable_values(value: object) -> None:
    assert parse_rank(value) is None


def test_feature_builder_learns_brands_and_categories_and_imputes_missing_values() -> None:
    def listing(brand: str, category: str | None, weight: str | None = None) -> Query:
        details = {"Brand": brand, **({"Item Weight": weight} if weight else {})}
        return Query("some text", category=category, details=json.dumps(details))

    train = (
        [listing("Pricey", "Tools", "2 pounds")] * 3
        + [listing("Cheap", "Toys", "4 pounds")] * 3
        + [listing("Rare", None)]
    )
    builder = FeatureBuilder(n_top_brands=1, min_brand_items=2).fit(train, np.array([500.0] * 3 + [5.0] * 3 + [999.0]))
    assert builder.top_brands_ == ["pricey"]  # "rare" is priciest but has too few items
    assert builder.categories_ == ["Tools", "Toys", "unknown"]
    free_text = Query("free text, no details")
    rows = builder.transform([listing("PRICEY", "Toys", "32 ounces"), free_text, listing("x", "Garden")])
    names = builder.feature_names_
    first, free, unseen = (dict(zip(names, row)) for row in rows)
    assert (first["weight_lb"], first["weight_missing"], first["top_brand"], first["category=Toys"]) == (2.0, 0, 1, 1)
    assert (free["weight_lb"], free["weight_missing"], free["rank_missing"]) == (3.0, 1, 1)  # mean of 2 and 4
    assert free["text_length"] == len("free text, no details") and free["category=unknown"] == 1
    assert sum(unseen[n] for n in names if n.startswith("category=")) == 0
    assert (
        FeatureBuilder.from_state(json.loads(json.dumps(builder.state()))).transform(train).tolist()
        == builder.transform(train).tolist()
    )


# --- fit, save, load, predict --------------------------------------------------------------


@pytest.mark.parametrize("name", list(BASELINES))
def test_baseline_predicts_the_same_after_reload(
    name: str, fitted: dict[str, Baseline], models_dir: Path, dev50: list[Item], fake_retriever: Retriever
) -> None:
    reloaded = BASELINES[name].load(models_dir / name, embedder=FakeEmbedder(), retriever=fake_retriever)
    before, after = fitted[name].predict(dev50), reloaded.predict(dev50)
    assert before.shape == (len(dev50),) and np.all(np.isfinite(before))
    np.testing.assert_allclose(after, before, rtol=1e-9, atol=1e-9)
    assert reloaded.trained_ids_ == fitted[name].trained_ids_


@pytest.mark.parametrize("name", list(BASELINES))
def test_pricer_prices_are_positive_and_finite(name: str, fitted: dict[str, Baseline], dev50: list[Item]) -> None:
    pricer = BaselinePricer(fitted[name])
    pricer.name = name
    estimates = pricer.estimate_many([*dev50, "Cordless drill, 18V, two batteries", "x"])
    prices = np.array([e.price for e in estimates])
    assert np.all(np.isfinite(prices)) and np.all(prices >= MIN_PRICE)
    assert {e.strategy for e in estimates} == {name}


@pytest.mark.parametrize("name", TEXT_BASELINES)
def test_text_baselines_beat_random_on_dev(name: str, fitted: dict[str, Baseline], dev50: list[Item]) -> None:
    # random is seeded by each text, so both sides are deterministic; the margin seen is >40%.
    random_mae = _mae(fitted["random"].predict(dev50), dev50)
    assert _mae(fitted[name].predict(dev50), dev50) < 0.8 * random_mae


def test_random_is_uniform_whole_dollars_and_repeatable(fitted: dict[str, Baseline], dev50: list[Item]) -> None:
    predictions = fitted["random"].predict(dev50)
    assert np.all((predictions >= 1) & (predictions < 1000)) and np.all(predictions == np.round(predictions))
    assert len(set(predictions)) > 40
    reordered = fitted["random"].predict(dev50[::-1])[::-1]
    assert reordered.tolist() == predictions.tolist()


def test_constant_predicts_the_training_mean(fitted: dict[str, Baseline], train_items: list[Item]) -> None:
    mean = np.mean([item.price for item in train_items])
    assert fitted["constant"].predict(["anything", "else"]) == pytest.approx([mean, mean])


def test_constant_saved_as_before_dummy_regressor_still_loads(tmp_path: Path) -> None:
    # What ConstantBaseline wrote before it used DummyRegressor: the manifest and one number.
    manifest = {"kind": "constant", "format": 1, "params": {}, "n_train": 2, "trained_ids": ["a", "b"]}
    (tmp_path / "baseline.json").write_text(json.dumps(manifest))
    (tmp_path / "constant.json").write_text(json.dumps({"mean": 12.5}))
    loaded = BASELINES["constant"].load(tmp_path)
    assert loaded.predict(["a lamp", "a desk"]).tolist() == [12.5, 12.5] and loaded.trained_ids_ == ["a", "b"]


def test_tfidf_ridge_predicts_what_the_hand_written_log_target_did(
    fitted: dict[str, Baseline], train_items: list[Item], dev50: list[Item]
) -> None:
    from sklearn.linear_model import Ridge

    model = fitted["tfidf-ridge"]
    logs = np.log1p([item.price for item in train_items])
    ridge = Ridge(alpha=model.alpha).fit(model._matrix([Query.of(item).text for item in train_items]), logs)
    predicted_logs = ridge.predict(model._matrix([item.description for item in dev50]))
    by_hand = np.expm1(np.clip(predicted_logs, logs.min(), logs.max()))
    np.testing.assert_allclose(model.predict(dev50), by_hand, rtol=1e-6)


def test_tfidf_ridge_of_the_old_format_asks_to_be_retrained(
    fitted: dict[str, Baseline], models_dir: Path, tmp_path: Path
) -> None:
    old = tmp_path / "tfidf-ridge"
    shutil.copytree(models_dir / "tfidf-ridge", old)
    manifest = json.loads((old / "baseline.json").read_text())
    (old / "baseline.json").write_text(json.dumps({**manifest, "format": 1}))  # a bare Ridge on log prices
    with pytest.raises(ModelFormatError, match="retrain it with `rag-pricer train-baselines`"):
        BASELINES["tfidf-ridge"].load(old)


def test_word2vec_training_is_reproducible(
    train_items: list[Item], fitted: dict[str, Baseline], dev50: list[Item]
) -> None:
    again = BASELINES["word2vec-lr"].make(SharedParts([i.description for i in train_items])).fit(train_items)
    np.testing.assert_array_equal(again.predict(dev50), fitted["word2vec-lr"].predict(dev50))


def test_the_word2vec_baselines_share_one_word2vec(fitted: dict[str, Baseline]) -> None:
    vectorizers = {id(fitted[name].vectorizer_) for name in ("word2vec-lr", "word2vec-svr", "word2vec-rf")}
    assert len(vectorizers) == 1


def test_feature_baseline_uses_details_when_the_query_carries_them(
    fitted: dict[str, Baseline], dev50: list[Item]
) -> None:
    with_details = fitted["features"].predict(dev50)
    text_only = fitted["features"].predict([item.description for item in dev50])
    assert not np.allclose(with_details, text_only)
    estimate = BaselinePricer(fitted["features"]).estimate("A product without details")
    assert any("no product details" in note for note in estimate.notes)


def test_prediction_below_the_floor_is_raised_to_it() -> None:
    class Negative(Baseline):
        kind = "negative"

        def _fit(self, listings, prices):  # type: ignore[no-untyped-def]
            pass

        def _predict(self, listings):  # type: ignore[no-untyped-def]
            return np.full(len(listings), -12.0)

    estimate = BaselinePricer(Negative().fit([Item("a", "t", "x", 3.0)])).estimate("anything")
    assert estimate.price == MIN_PRICE and "raised to the floor" in estimate.notes[0]


def test_unfitted_baseline_refuses_to_predict_or_save(tmp_path: Path) -> None:
    baseline = BASELINES["bow"].cls()
    with pytest.raises(RuntimeError, match="not fitted"):
        baseline.predict(["text"])
    with pytest.raises(RuntimeError, match="not fitted"):
        baseline.save(tmp_path / "bow")
    with pytest.raises(ValueError, match="no training items"):
        baseline.fit([])


# --- safety of the saved files -------------------------------------------------------------


def test_saved_models_hold_no_pickles_and_load_without_pickle(
    fitted: dict[str, Baseline],
    models_dir: Path,
    dev50: list[Item],
    fake_retriever: Retriever,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = [path for path in models_dir.rglob("*") if path.is_file()]
    assert files and not [p for p in files if p.suffix in {".pkl", ".pickle", ".joblib", ".pt", ".bin.pkl"}]

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle used while loading a baseline")

    for attribute in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, attribute, refuse)
    for name, spec in BASELINES.items():
        loaded = spec.load(models_dir / name, embedder=FakeEmbedder(), retriever=fake_retriever)  # type: ignore[arg-type]
        assert loaded.predict(dev50[:3]).shape == (3,)


def test_untrusted_types_in_a_model_file_are_refused(
    fitted: dict[str, Baseline], models_dir: Path, tmp_path: Path
) -> None:
    # A forest's file names a tree type that only the word2vec-rf loader trusts; placed where a
    # linear regression is expected, it must be refused, not loaded.
    tampered = tmp_path / "word2vec-lr"
    tampered.mkdir()
    for path in (models_dir / "word2vec-lr").iterdir():
        (tampered / path.name).write_bytes(path.read_bytes())
    (tampered / "regressor.skops").write_bytes((models_dir / "word2vec-rf" / "regressor.skops").read_bytes())
    with pytest.raises(ModelFormatError, match="not trusted"):
        BASELINES["word2vec-lr"].load(tampered)


def test_a_damaged_model_directory_gives_a_clear_error(
    fitted: dict[str, Baseline], models_dir: Path, tmp_path: Path
) -> None:
    damaged = tmp_path / "bow"
    damaged.mkdir()
    (damaged / "baseline.json").write_bytes((models_dir / "bow" / "baseline.json").read_bytes())
    with pytest.raises(ModelFormatError, match="incomplete or damaged.*train-baselines"):
        BASELINES["bow"].load(damaged)
    (damaged / "baseline.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="cannot read.*train-baselines"):
        BASELINES["bow"].load(damaged)


def test_a_model_saved_under_another_name_is_refused(fitted: dict[str, Baseline], models_dir: Path) -> None:
    with pytest.raises(ModelFormatError, match="word2vec-rf"):
        BASELINES["word2vec-rf"].load(models_dir / "word2vec-lr")
    with pytest.raises(ModelFormatError, match="'bow' baseline"):
        BASELINES["bow"].load(models_dir / "tfidf-ridge")


# --- boosting-nn: the neighbours' prices ---------------------------------------------------


def test_boosting_nn_never_prices_a_training_item_from_itself_or_a_copy(
    fitted: dict[str, Baseline], train_items: list[Item], fake_retriever: Retriever
) -> None:
    model = fitted["boosting-nn"]
    queries = [Query.of(item) for item in train_items]
    vectors = FakeEmbedder().encode([q.text for q in queries])
    features = model._extra_columns(queries, vectors)[0]  # type: ignore[attr-defined]
    top_similarity = features[:, NEIGHBOUR_FEATURES.index("nn_top_similarity")]
    # Fake vectors of distinct texts are nearly orthogonal: 1.0 would be the item itself or its
    # stored copy (``copy-of-first``, another id, another price).
    assert np.all(top_similarity < 0.99)
    found = fake_retriever.search_vectors(queries[:1], vectors[:1], SearchOptions(k=10))[0]
    assert {n.id for n in found}.isdisjoint({train_items[0].id, "copy-of-first"})


def test_boosting_nn_uses_the_neighbours_prices_and_reports_the_stored_items_as_leaked(
    fitted: dict[str, Baseline], train_items: list[Item], dev50: list[Item], fake_store: ProductStore
) -> None:
    gains = fitted["boosting-nn"].booster_.feature_importance("gain")  # type: ignore[attr-defined]
    assert gains[-len(NEIGHBOUR_FEATURES) :].sum() > 0  # the neighbour columns are used
    pricer = BaselinePricer(fitted["boosting-nn"], store=fake_store)
    assert pricer.leaked_ids([dev50[0].id, "copy-of-first", train_items[1].id]) == [
        "copy-of-first",
        train_items[1].id,
    ]
    assert "store" in pricer.fingerprint()


def test_boosting_nn_without_a_knowledge_base_says_what_it_needs(train_items: list[Item]) -> None:
    baseline = BASELINES["boosting-nn"].cls(embedder=FakeEmbedder(), n_estimators=5)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="knowledge base"):
        baseline.fit(train_items[:50])


# --- strategies ----------------------------------------------------------------------------


def test_every_baseline_is_a_registered_strategy_that_needs_training() -> None:
    strategies = {s.name: s for s in registry.all()}
    for name in BASELINES:
        assert strategies[name].needs == (("trained", "store") if name == "boosting-nn" else ("trained",))


def test_strategy_loads_the_saved_model_and_reports_leaked_ids(
    fitted: dict[str, Baseline], models_dir: Path, train_items: list[Item], dev50: list[Item]
) -> None:
    resources = Resources(Settings(models_dir=models_dir))
    pricer = registry.get("tfidf-ridge").build(resources)
    estimate = pricer.estimate(dev50[0])
    assert estimate.strategy == "tfidf-ridge" and estimate.price == pytest.approx(
        fitted["tfidf-ridge"].predict(dev50[:1])[0]
    )
    ids = [dev50[0].id, train_items[3].id, "not-an-id", train_items[0].id]
    assert pricer.leaked_ids(ids) == [train_items[3].id, train_items[0].id]
    assert registry.get("random").build(resources).leaked_ids(ids) == []  # learns nothing


def test_strategy_without_a_trained_model_says_how_to_train_it(tmp_path: Path) -> None:
    with pytest.raises(ModelNotTrained, match="rag-pricer train-baselines"):
        registry.get("bow").build(Resources(Settings(models_dir=tmp_path / "nothing")))


def test_boosting_refuses_an_embedder_other_than_its_own(fitted: dict[str, Baseline], models_dir: Path) -> None:
    # The registry hands boosting the settings' embedding model; this one was trained with a fake.
    with pytest.raises(ModelFormatError, match="fake-hash-embedder"):
        registry.get("boosting").build(Resources(Settings(models_dir=models_dir)))


def test_query_details_are_read_when_a_query_carries_them() -> None:
    details = json.dumps({"Item Weight": "2 pounds"})
    assert Query.of(Item("a", "Title", "text", 5.0, details=details)).details_dict() == {"Item Weight": "2 pounds"}
    assert Query.of("Title\ntext").details_dict() == {}
    assert Query("x", details="not json").details_dict() == {} and Query("x", details="[1, 2]").details_dict() == {}


def test_baselines_refuse_what_is_not_a_description(fitted: dict[str, Baseline]) -> None:
    with pytest.raises(InvalidQuery, match="must be text"):
        fitted["constant"].predict([42])  # type: ignore[list-item]
    with pytest.raises(InvalidQuery, match="empty"):
        fitted["tfidf-ridge"].predict(["a lamp", "  "])


# --- rag-pricer train-baselines ------------------------------------------------------------


def test_cli_trains_saves_and_times_the_chosen_baselines(items_path: Path, tmp_path: Path) -> None:
    args = ["train-baselines", "--items", str(items_path), "--limit", "80", "--out", str(tmp_path), "--json"]
    result = CliRunner().invoke(app, [*args, "--only", "constant,word2vec-lr,word2vec-svr"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [s["name"] for s in report["steps"]] == ["constant", "word2vec (shared)", "word2vec-lr", "word2vec-svr"]
    assert report["n_train"] == 80 and all(s["seconds"] >= 0 for s in report["steps"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["constant", "word2vec-lr", "word2vec-svr"]
    manifest = json.loads((tmp_path / "constant" / "baseline.json").read_text())
    assert manifest["n_train"] == 80 and len(manifest["trained_ids"]) == 80


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--only", "bow,nope"], "unknown baseline"),
        (["--split", "nosuch"], "no items of split"),
        (["--items", "missing.jsonl"], "not found"),
    ],
)
def test_cli_reports_bad_arguments_clearly(items_path: Path, tmp_path: Path, extra: list[str], message: str) -> None:
    args = ["train-baselines", "--items", str(items_path), "--limit", "5", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, *extra])
    assert result.exit_code == 2 and message in result.output
    assert not any(tmp_path.iterdir())
