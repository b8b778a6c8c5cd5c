"""`rag-pricer prepare` on a small slice of the real data: every step once, nothing twice, and
the default strategy then prices with a range; without it, one line naming the command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag_pricer.api import Estimator
from rag_pricer.cli.app import app
from rag_pricer.evaluation.scores import ScoreRecord
from rag_pricer.items import read_items
from rag_pricer.knowledge.store import ProductStore
from rag_pricer.pricing.ranges import DEFAULT_METHOD, calibration_path
from rag_pricer.settings import Settings
from rag_pricer.training.prepare import DEMO_ITEMS, MIN_FIT_ITEMS, PREPARED_BASES, Preparation, items_digest


@pytest.fixture(scope="module")
def again(prepared: tuple[Path, list[str], dict]) -> tuple[dict, str]:
    """The report and the log of a second run of the same `prepare`."""
    _, args, _ = prepared
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


def test_prepare_indexes_trains_fits_and_prices_with_ranges(prepared: tuple[Path, list[str], dict]) -> None:
    root, args, report = prepared
    assert [s["name"] for s in report["steps"]] == ["index", "train", "fit", "demo"]
    assert all(s["status"] == "done" and s["seconds"] >= 0 for s in report["steps"])
    assert report["strategy"] == "ensemble" and len(report["demo"]) == len(DEMO_ITEMS)
    for row in report["demo"]:
        assert row["low"] is not None and row["low"] <= row["price"] <= row["high"]
    models = root / "models"
    trained = [name for name in PREPARED_BASES if name != "knn"]
    assert all((models / name / "baseline.json").is_file() for name in trained)
    assert {p.name for p in models.glob("*.prepared.json")} == {f"{n}.prepared.json" for n in [*trained, "ensemble"]}
    manifest = json.loads((models / "ensemble.prepared.json").read_text())
    assert (
        manifest["n_scored"] == MIN_FIT_ITEMS
        and manifest["seconds"] > 0
        and set(manifest["used"]) <= set(PREPARED_BASES)
    )
    store = json.loads((root / "store" / "prepared.json").read_text())
    assert store["n_train"] == int(args[args.index("--limit") + 1]) and store["n_extra"] == manifest["n_extra"] > 0
    assert store["n"] == store["n_train"] + store["n_extra"]
    assert ScoreRecord.load(models, "ensemble") is None  # a quick run's figures are not put on record


def test_the_extra_items_are_knowledge_and_fitting_items_and_dev_is_never_stored(
    prepared: tuple[Path, list[str], dict], items_path: Path
) -> None:
    root, args, _ = prepared
    settings = Settings(_env_file=None, store_path=root / "store", models_dir=root / "models", llm="fake")
    extra = read_items(Path(args[args.index("--extra") + 1]), limit=MIN_FIT_ITEMS)
    dev = read_items(items_path, split="dev", limit=MIN_FIT_ITEMS)
    store = ProductStore.from_settings(settings)
    assert sorted(store.contains_any([i.id for i in extra])) == sorted(i.id for i in extra)
    assert store.contains_any([i.id for i in dev]) == []
    # every base priced the stored extra items leave-one-out: none was skipped from the ensemble
    assert json.loads((root / "models" / "ensemble.prepared.json").read_text())["used"] == list(PREPARED_BASES)
    # boosting-nn learnt beside this knowledge base: with other knowledge it is not current, boosting still is
    preparation = Preparation(
        settings.updated(items_path=items_path), extra=None, limit=int(args[args.index("--limit") + 1])
    )
    train = preparation.train_items()
    digest = items_digest(train)
    assert preparation._trained_on("boosting", digest, train)
    assert not preparation._trained_on("boosting-nn", digest, train)


def test_a_second_run_does_nothing_but_the_demo(
    prepared: tuple[Path, list[str], dict], again: tuple[dict, str]
) -> None:
    first, (second, log) = prepared[2], again
    assert [(s["name"], s["status"]) for s in second["steps"]] == [
        ("index", "skipped"),
        ("train", "skipped"),
        ("fit", "skipped"),
        ("demo", "done"),
    ]
    assert [r["price"] for r in second["demo"]] == pytest.approx([r["price"] for r in first["demo"]])
    # a log gets plain lines: each step's start and end with its seconds
    assert "prepare: index: started" in log and "prepare: fit: skipped in" in log


def test_the_default_strategy_then_gives_every_estimate_a_range(prepared: tuple[Path, list[str], dict]) -> None:
    root = prepared[0]
    settings = Settings(_env_file=None, store_path=root / "store", models_dir=root / "models", llm="fake")
    assert settings.strategy == "ensemble"
    estimates = Estimator.from_settings(settings).estimate_many(["Yoga mat, 6 mm", "USB-C charger, 65 W"])
    assert all(e.strategy == "ensemble" and e.low is not None and e.low <= e.price <= e.high for e in estimates)


def test_without_prepare_the_default_estimate_fails_in_one_line_naming_it(
    tmp_path: Path, prepared: tuple[Path, list[str], dict]
) -> None:
    root = prepared[0]
    args = ["estimate", "Yoga mat, 6 mm", "--store", str(root / "store")]
    result = CliRunner(env={"RAG_PRICER_MODELS_DIR": str(tmp_path / "empty")}).invoke(app, args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "rag-pricer prepare" in lines[0] and "ensemble" in lines[0]


def test_demo_says_when_the_default_was_fitted_on_the_items_it_shows(
    prepared: tuple[Path, list[str], dict], items_path: Path
) -> None:
    root = prepared[0]
    env = {"RAG_PRICER_MODELS_DIR": str(root / "models"), "RAG_PRICER_LLM": "fake"}
    args = ["demo", "--n", "3", "--items", str(items_path), "--store", str(root / "store")]
    result = CliRunner(env=env).invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "3 of these items were used to fit ensemble" in " ".join(result.stdout.split())


def test_an_ensemble_whose_range_an_older_method_calibrated_is_fitted_again(
    prepared: tuple[Path, list[str], dict], items_path: Path, tmp_path: Path
) -> None:
    root, args, _ = prepared
    models = tmp_path / "models"
    shutil.copytree(root / "models", models)  # the shared run stays as it is
    manifest_path = models / "ensemble.prepared.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["state"].pop("range_method", None)  # what a run before the range's method was recorded wrote
    manifest_path.write_text(json.dumps(manifest))
    settings = Settings(_env_file=None, store_path=root / "store", models_dir=models, llm="fake")
    preparation = Preparation(
        settings.updated(items_path=items_path),
        extra=Path(args[args.index("--extra") + 1]),
        limit=int(args[args.index("--limit") + 1]),
    )
    refitted, _ = preparation.fit()
    assert refitted
    saved = json.loads(calibration_path(models, "ensemble").read_text())
    assert saved["method"] == DEFAULT_METHOD
    assert preparation.fit()[0] is False  # and once refitted, it is current
