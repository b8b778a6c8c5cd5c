"""The ensemble: weights learned on synthetic estimates, cross-fitting, refusal of fitted items,
saving, the trainer's honest figures, the strategy and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rag_pricer.api import Estimator
from rag_pricer.cli.app import app
from rag_pricer.evaluation import Bootstrap, Evaluation, LeakageError, resolve_strategies
from rag_pricer.items import Item
from rag_pricer.pricing.confidence import ConfidenceLevels
from rag_pricer.pricing.pricer import Pricer
from rag_pricer.pricing.ranges import RangeCalibration
from rag_pricer.pricing.registry import registry
from rag_pricer.pricing.values import Comparable, Estimate
from rag_pricer.query import Query
from rag_pricer.settings import Settings
from rag_pricer.strategies.ensemble import BaseOutput, EnsembleModel, EnsemblePricer, cross_fit, feature_matrix
from rag_pricer.training.ensemble_trainer import EnsembleTrainer

FAST = Bootstrap(resamples=100)


def synthetic_bases(n: int, seed: int = 0) -> tuple[dict[str, list[BaseOutput]], np.ndarray]:
    """Two noisy base estimates of known log prices, both biased low (as on dev), and the truth
    being exactly ``0.6 * log a + 0.3 * log b + 1.0`` plus small noise."""
    rng = np.random.default_rng(seed)
    log_a = rng.uniform(1, 6, n)
    log_b = log_a + rng.normal(0, 0.8, n)
    log_truth = 0.6 * log_a + 0.3 * log_b + 1.0 + rng.normal(0, 0.05, n)
    signals = [
        {"top_similarity": float(s), "log_spread": 0.5, "log_median": float(m)}
        for s, m in zip(rng.uniform(0.3, 0.9, n), log_a)
    ]
    outputs = {
        "a": [BaseOutput(float(np.exp(x)), s) for x, s in zip(log_a, signals)],
        "b": [BaseOutput(float(np.exp(x))) for x in log_b],
    }
    return outputs, np.exp(log_truth)


def test_blend_weights_recover_a_known_blend() -> None:
    outputs, truth = synthetic_bases(400)
    model = EnsembleModel(["a", "b"], kind="blend", alpha=1e-6)
    model.fit(feature_matrix(outputs, ["a", "b"], None), truth)
    weights = model.weights()
    assert weights["log:a"] == pytest.approx(0.6, abs=0.02) and weights["log:b"] == pytest.approx(0.3, abs=0.02)
    assert model.intercept_ == pytest.approx(1.0, abs=0.05)
    # the bias correction: both bases are low, the blend is not
    predicted = model.predict(feature_matrix(outputs, ["a", "b"], None))
    assert abs(np.mean(np.log(predicted / truth))) < 0.01
    assert np.mean(np.log(np.array([o.price for o in outputs["a"]]) / truth)) < -0.3


def test_predictions_are_finite_positive_and_clipped() -> None:
    outputs, truth = synthetic_bases(50)
    model = EnsembleModel(["a"], kind="blend").fit(feature_matrix(outputs, ["a"], None), truth)
    wild = model.predict(np.array([[np.log(1e12)], [np.log(1e-9)], [np.nan]]))
    assert np.all(np.isfinite(wild)) and np.all(wild > 0) and wild[0] <= truth.max() * np.exp(0.5) + 1e-6


def test_cross_fitting_never_prices_an_item_with_a_model_fitted_on_it() -> None:
    outputs, truth = synthetic_bases(120)
    ids = [f"id{i}" for i in range(120)]
    scored = [i < 80 for i in range(120)]  # the last 40 are extra fitting items
    features = feature_matrix(outputs, ["a", "b"], "a")
    fit = cross_fit(lambda: EnsembleModel(["a", "b"], "stack", "a"), features, truth, ids, scored, folds=5, seed=1)
    for row in range(80):
        assert fit.fold[row] >= 0 and np.isfinite(fit.predictions[row])
        assert ids[row] not in fit.fitted_ids[fit.fold[row]]
        # ... and every other fold's model did see it
        assert all(ids[row] in fitted for f, fitted in enumerate(fit.fitted_ids) if f != fit.fold[row])
    assert np.all(fit.fold[80:] == -1) and np.all(np.isnan(fit.predictions[80:]))
    assert all(set(ids[80:]) <= fitted for fitted in fit.fitted_ids)  # extra items always fit, never scored
    assert sorted(np.bincount(fit.fold[:80])) == [16] * 5


def test_the_trainer_reports_cross_fitted_figures_better_than_its_bases() -> None:
    outputs, truth = synthetic_bases(300, seed=2)
    ids = [f"id{i}" for i in range(300)]
    outcome = EnsembleTrainer(["a", "b"], signal_base="a", bootstrap=FAST).train(
        outputs, truth, ids, [True] * 200 + [False] * 100
    )
    assert (
        set(outcome.kinds) == {"blend", "stack", "median", "boosted"}
        and outcome.n_scored == 200
        and outcome.n_extra == 100
    )
    best_base = min(m["mae"].value for m in outcome.bases.values())
    assert outcome.kinds[outcome.chosen]["mae"].value < best_base / 2
    assert outcome.model.fitted_ids_ == sorted(ids)  # the saved model is fitted on everything
    assert outcome.calibration.ids == sorted(ids[:200]) and outcome.calibration.strategy == "ensemble"
    assert 0.7 <= outcome.coverage.coverage <= 0.9
    # paired with each base on the same items: the difference of the two MAEs, an interval around it
    for name, base in outcome.bases.items():
        found = outcome.paired[name]["mae"]
        assert found.value == pytest.approx(outcome.kinds[outcome.chosen]["mae"].value - base["mae"].value)
        assert found.low <= found.value <= found.high < 0
    assert set(outcome.to_dict()["paired_vs_bases"]) == {"a", "b"}
    assert outcome.coverage.median_width < min(c.median_width for c in outcome.base_coverage.values())


class Scripted(Pricer):
    """A base pricer returning ``factor * truth`` (from the table) and, if asked, comparables."""

    def __init__(
        self, prices: dict[str, float], factor: float, comparables: bool = False, known: tuple[str, ...] = ()
    ) -> None:
        self.prices, self.factor, self.comparables, self.known = prices, factor, comparables, known

    def _estimate_many(self, queries: list[Query]) -> list[Estimate]:
        found = []
        for q in queries:
            price = self.prices[q.id or ""] * self.factor
            comps = (
                [Comparable("c1", "x", price, 0.8), Comparable("c2", "y", price * 2, 0.6)] if self.comparables else []
            )
            found.append(Estimate(price, self.name, comparables=comps))
        return found

    def leaked_ids(self, ids: list[str]) -> list[str]:
        return [i for i in ids if i in self.known]


def make_items(n: int, start: int = 0) -> list[Item]:
    rng = np.random.default_rng(start)
    return [
        Item(id=f"item{start + i}", title=f"thing {i}", text="a product", price=float(round(p, 2)), split="dev")
        for i, p in enumerate(np.exp(rng.uniform(1, 6, n)))
    ]


def fitted_pricer(fit_on: list[Item], prices: dict[str, float], known: tuple[str, ...] = ()) -> EnsemblePricer:
    bases = {"a": Scripted(prices, 0.5, comparables=True, known=known), "b": Scripted(prices, 0.8)}
    outputs = {name: [BaseOutput.of(e) for e in pricer.estimate_many(fit_on)] for name, pricer in bases.items()}
    model = EnsembleModel(["a", "b"], "stack", "a").fit(
        feature_matrix(outputs, ["a", "b"], "a"), [i.price for i in fit_on], [i.id for i in fit_on]
    )
    return EnsemblePricer(model, bases)


def test_the_harness_refuses_items_the_ensemble_was_fitted_on() -> None:
    fit_on, other = make_items(30), make_items(10, start=100)
    prices = {i.id: i.price for i in [*fit_on, *other]}
    pricer = fitted_pricer(fit_on, prices)
    with pytest.raises(LeakageError, match="2 of the 12 items"):
        Evaluation(pricer, [*other, *fit_on[:2]]).run()
    result = Evaluation(pricer, other, bootstrap=FAST).run()
    # the bases are off by 50% and 20%; the fitted blend undoes their bias
    assert result.n == 10 and result.value("mae") < 0.05 * np.mean([i.price for i in other])
    estimate = pricer.estimate(Query("thing", id=other[0].id))
    assert [c.id for c in estimate.comparables] == ["c1", "c2"] and "a $" in estimate.notes[0]


def test_items_a_base_knows_are_refused_too() -> None:
    fit_on, other = make_items(30), make_items(10, start=100)
    pricer = fitted_pricer(fit_on, {i.id: i.price for i in [*fit_on, *other]}, known=(other[3].id,))
    assert pricer.leaked_ids([i.id for i in other]) == [other[3].id]


@pytest.mark.parametrize("kind", ["stack", "median", "boosted"])
def test_the_model_round_trips_as_json_and_a_damaged_one_is_refused(tmp_path: Path, kind: str) -> None:
    outputs, truth = synthetic_bases(200)
    model = EnsembleModel(["a", "b"], kind, "a").fit(feature_matrix(outputs, ["a", "b"], "a"), truth, ["x", "y"])
    model.save(tmp_path)
    loaded = EnsembleModel.load(tmp_path)
    features = feature_matrix(outputs, ["a", "b"], "a")
    assert np.allclose(loaded.predict(features), model.predict(features)) and loaded.fitted_ids_ == ["x", "y"]
    (tmp_path / "ensemble.json").write_text('{"format": 1, "bases": ["a"]}')
    with pytest.raises(ValueError, match="train-ensemble"):
        EnsembleModel.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="rag-pricer train-ensemble"):
        EnsembleModel.load(tmp_path / "none")


def test_ensemble_is_registered_but_not_in_all_cpu() -> None:
    assert "ensemble" in registry.names()
    assert "dev-fitted" in registry.get("ensemble").needs
    assert "ensemble" not in resolve_strategies("all-cpu") and "ensemble" in resolve_strategies("knn,ensemble")


def test_the_strategy_loads_the_saved_model_over_its_bases(settings: Settings, dev_items: list[Item]) -> None:
    fit_on = dev_items[:15]
    bases = {"knn": Estimator.from_settings(settings).pricer("knn")}
    outputs = {"knn": [BaseOutput.of(e) for e in bases["knn"].estimate_many(fit_on)]}
    EnsembleModel(["knn"], "stack", "knn").fit(
        feature_matrix(outputs, ["knn"], "knn"), [i.price for i in fit_on], [i.id for i in fit_on]
    ).save(Path(settings.models_dir) / "ensemble")
    pricer = Estimator.from_settings(settings).pricer("ensemble")
    assert pricer.leaked_ids([i.id for i in dev_items]) == [i.id for i in fit_on]
    estimate = pricer.estimate(dev_items[18])
    assert np.isfinite(estimate.price) and estimate.price > 0 and estimate.comparables
    assert "no price range for this strategy (it is not calibrated)" in estimate.notes  # no calibration saved here


def test_cli_without_a_trained_ensemble_fails_cleanly(
    settings: Settings, items_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_PRICER_STORE_PATH", str(settings.store_path))
    monkeypatch.setenv("RAG_PRICER_MODELS_DIR", str(settings.models_dir))
    runner = CliRunner()
    result = runner.invoke(
        app, ["evaluate", "--strategy", "ensemble", "--items", str(items_path), "--split", "dev", "--limit", "3"]
    )
    assert result.exit_code == 2 and "rag-pricer prepare" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["train-ensemble", "--items", str(items_path), "--bases", "nope,ensemble2"])
    assert (
        result.exit_code == 2
        and "skipped base nope" in result.output
        and "no base strategy could be built" in result.output
    )


def test_train_ensemble_calibrate_and_the_refusal_from_the_command_line(
    settings: Settings, items_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_PRICER_STORE_PATH", str(settings.store_path))
    monkeypatch.setenv("RAG_PRICER_MODELS_DIR", str(settings.models_dir))
    runner, cache = CliRunner(), str(tmp_path / "cache")
    common = ["--items", str(items_path), "--split", "dev", "--limit", "20", "--cache", cache]
    trained = runner.invoke(app, ["train-ensemble", *common, "--bases", "knn,boosting", "--kinds", "blend,stack"])
    assert trained.exit_code == 0, trained.output
    assert "skipped base boosting" in trained.output and "Cross-fitted on 20 dev items" in trained.output
    assert (Path(settings.models_dir) / "ensemble" / "ensemble.json").is_file()
    ensemble = RangeCalibration.load(settings.models_dir, "ensemble")
    assert ensemble.n == 20 and ensemble.method == "mondrian-glm" and ensemble.scale is not None
    assert ConfidenceLevels.load(settings.models_dir).strategy == "ensemble"  # placed on knn's evidence
    # the ensemble was fitted on these dev items: the harness refuses to score them
    refused = runner.invoke(app, ["evaluate", "--strategy", "ensemble", "--items", str(items_path), "--limit", "5"])
    assert refused.exit_code == 2 and "already known to strategy 'ensemble'" in refused.output
    calibrated = runner.invoke(app, ["calibrate", "--strategy", "knn", *common])
    assert (
        calibrated.exit_code == 0 and "coverage" in calibrated.output and "confidence: low below" in calibrated.output
    )
    assert ConfidenceLevels.load(settings.models_dir).strategy == "knn"
    knn = RangeCalibration.load(settings.models_dir, "knn")
    assert knn.n == 20 and knn.cross_fitted["folds"] == 5 and 0 <= knn.cross_fitted["coverage"] <= 1
    shown = runner.invoke(app, ["estimate", "Stainless steel kitchen sink faucet with pull-down sprayer", "--json"])
    assert shown.exit_code == 0, shown.output
    # the runner mixes stderr in (the embedding model's loading bar): read the JSON object
    body, _ = json.JSONDecoder().raw_decode(shown.output[shown.output.index("{") :])
    assert body["coverage"] == 0.8 and 0 < body["low"] < body["price"] < body["high"]
    assert body["confidence"] in ("high", "medium", "low") and body["confidence_reason"]


def test_the_base_table_prices_only_items_missing_from_its_cache(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag_pricer.pricing.registry import Strategy
    from rag_pricer.training.base_table import BaseTable

    items = make_items(8, start=300)
    seen: list[str] = []

    class Counting(Scripted):
        def _estimate_many(self, queries: list[Query]) -> list[Estimate]:
            seen.extend(q.id or "" for q in queries)
            return super()._estimate_many(queries)

    prices = {i.id: i.price for i in items}
    registry.all()
    factory = lambda resources: Counting(prices, 0.5, known=(items[7].id,))  # noqa: E731
    monkeypatch.setitem(registry._entries, "test-table", Strategy("test-table", "test", factory, ("trained",)))
    table = BaseTable(Estimator.from_settings(settings), tmp_path / "cache")
    first = table.outputs("test-table", items[:5])
    assert seen == [i.id for i in items[:5]] and [o.price for o in first] == [i.price * 0.5 for i in items[:5]]
    again = BaseTable(Estimator.from_settings(settings), tmp_path / "cache").outputs("test-table", items[2:7])
    assert seen[5:] == [items[5].id, items[6].id]  # only the two new ones were priced
    assert [o.price for o in again] == [i.price * 0.5 for i in items[2:7]]
    with pytest.raises(LeakageError):
        table.outputs("test-table", items)


class Retrieving(Scripted):
    """A base that knows ``known`` items only by retrieving them (leave-one-out): not trained on them."""

    def trained_ids(self, ids: list[str]) -> list[str]:
        return []


def test_unscored_items_a_base_only_retrieves_are_fitted_on_and_scored_ones_stay_refused(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag_pricer.pricing.registry import Strategy
    from rag_pricer.training.base_table import BaseTable

    items = make_items(8, start=400)
    prices, stored = {i.id: i.price for i in items}, (items[7].id,)
    registry.all()
    for name, kind in (("test-retrieving", Retrieving), ("test-trained", Scripted)):
        factory = lambda resources, kind=kind: kind(prices, 0.5, known=stored)  # noqa: E731
        monkeypatch.setitem(registry._entries, name, Strategy(name, "test", factory, ("trained",)))
    table = BaseTable(Estimator.from_settings(settings), tmp_path / "cache")
    found = table.outputs("test-retrieving", items, leave_one_out=set(stored))
    assert [o.price for o in found] == [i.price * 0.5 for i in items]
    with pytest.raises(LeakageError):  # a scored item it can retrieve: refused
        table.outputs("test-retrieving", items)
    with pytest.raises(LeakageError):  # trained on it: refused even unscored
        table.outputs("test-trained", items, leave_one_out=set(stored))


def test_extra_items_in_the_knowledge_base_are_priced_leave_one_out_for_fitting(
    tmp_path: Path, train_items: list[Item], dev_items: list[Item], data_dir: Path
) -> None:
    from rag_pricer.items import read_items
    from rag_pricer.knowledge.embeddings import Embedder
    from rag_pricer.knowledge.store import ProductStore
    from rag_pricer.training.ensemble_job import EnsembleJob

    embedder = Embedder()
    extra = read_items(data_dir / "items_extra.jsonl.gz", limit=6)
    store = ProductStore(tmp_path / "store", collection="products")
    stored = [*train_items[:60], *extra]
    store.upsert(stored, embedder.encode([i.description for i in stored]))
    settings = Settings(
        _env_file=None, store_path=store.path, collection="products", llm="fake", models_dir=tmp_path / "models"
    )
    scored = dev_items[:10]
    job = EnsembleJob(Estimator.from_settings(settings), tmp_path / "cache")
    outputs = job.outputs(["knn"], [*scored, *extra], unscored={i.id for i in extra})["knn"]
    skipped: list[str] = []
    with pytest.raises(ValueError, match="no base strategy"):  # without saying they are unscored: refused
        job.outputs(["knn"], [*scored, *extra], on_skip=lambda name, why: skipped.append(why))
    assert "knows 6 of the fitting items" in skipped[0]
    # each stored extra item gets the price a store without it gives: its own price is never used
    for row, item in enumerate(extra[:2], start=len(scored)):
        store.delete([item.id])
        alone = Estimator.from_settings(settings).pricer("knn").estimate(item)
        store.upsert([item], embedder.encode([item.description]))
        assert outputs[row].price == pytest.approx(alone.price)
