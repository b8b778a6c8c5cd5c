"""The rag-pricer commands that are not covered elsewhere: strategies, llms, estimate, demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag_pricer.cli.app import app
from rag_pricer.items import Item, write_items
from rag_pricer.settings import Settings

runner = CliRunner()


@pytest.fixture()
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("RAG_PRICER_STORE_PATH", str(settings.store_path))
    monkeypatch.setenv("RAG_PRICER_LLM_CACHE_DIR", "")
    monkeypatch.setenv("RAG_PRICER_MODELS_DIR", str(settings.models_dir))
    monkeypatch.setenv("RAG_PRICER_STRATEGY", "knn")  # the small store has no ensemble (test_prepare has one)
    return settings


def test_strategies_and_llms_are_listed() -> None:
    strategies = json.loads(runner.invoke(app, ["strategies", "--json"]).stdout)
    names = {s["name"] for s in strategies}
    assert {"knn", "zero-shot", "rag", "bow", "tfidf-ridge"} <= names
    rag = next(s for s in strategies if s["name"] == "rag")
    assert set(rag["needs"]) == {"llm", "store"} and {"k", "category", "mmr"} <= {o["name"] for o in rag["options"]}
    backends = {b["name"] for b in json.loads(runner.invoke(app, ["llms", "--json"]).stdout)}
    assert {"local", "openai", "openai-compatible", "fake"} <= backends


@pytest.fixture()
def narrow(monkeypatch: pytest.MonkeyPatch) -> None:
    """An 80-column terminal for the commands' console."""
    from rag_pricer.cli.common import console

    monkeypatch.setattr(console, "width", 80)


def test_strategies_at_80_columns_break_no_word(narrow: None) -> None:
    listed = json.loads(runner.invoke(app, ["strategies", "--json"]).stdout)
    shown = runner.invoke(app, ["strategies"]).stdout
    words = set(shown.split())
    for row in listed:
        assert set(row["summary"].split()) <= words, row["name"]  # "Similarity-weighted", never "Similarity-we ighted"


def test_llms_at_80_columns_show_every_spec_whole(narrow: None) -> None:
    listed = json.loads(runner.invoke(app, ["llms", "--json"]).stdout)
    shown = runner.invoke(app, ["llms"]).stdout
    for row in listed:
        assert row["example"] in shown, row["name"]


def test_help_shows_flags_without_a_value() -> None:
    from ingest.cli import app as ingest_app

    shown = runner.invoke(app, ["--help"]).stdout + runner.invoke(app, ["estimate", "--help"]).stdout
    shown += runner.invoke(ingest_app, ["index", "--help"]).stdout
    assert "--version" in shown and "--mmr" in shown and "--json" in shown and "<bool>" not in shown


def test_estimate_json_has_the_documented_keys(env: Settings) -> None:
    result = runner.invoke(
        app, ["estimate", "Cordless drill 18V with two batteries", "-s", "rag", "--llm", "fake", "--k", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"price", "strategy", "comparables", "llm_answer", "fallback", "latency_s", "load_s"} <= data.keys()
    assert data["strategy"] == "rag" and data["price"] > 0 and len(data["comparables"]) == 3
    assert {"title", "price", "similarity"} <= data["comparables"][0].keys()


def test_estimate_table_and_user_errors(env: Settings) -> None:
    shown = runner.invoke(app, ["estimate", "Cordless drill 18V with two batteries"])
    assert shown.exit_code == 0 and "Comparable products" in shown.stdout and "$" in shown.stdout
    assert "models loaded in" in shown.stdout  # loading is reported apart from the estimate's latency
    for args, message in (
        (["estimate", "   "], "description is empty"),
        (["estimate", "drill", "-s", "nope"], "unknown strategy"),
        (["estimate", "drill", "-s", "bow"], "train-baselines"),
        (["estimate", "drill", "-s", "rag", "--llm", "nope"], "unknown LLM backend"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)


def test_estimate_says_how_far_to_trust_the_price(env: Settings) -> None:
    shown = runner.invoke(app, ["estimate", "hello world"])
    assert shown.exit_code == 0 and "confidence: low — the closest product we know is only" in shown.stdout
    data = json.loads(runner.invoke(app, ["estimate", "hello world", "--json"]).stdout)
    assert data["confidence"] == "low" and "guess" in data["confidence_reason"]


def test_demo_prints_estimate_vs_truth(env: Settings, tmp_path: Path, dev_items: list[Item]) -> None:
    path = tmp_path / "items.jsonl"
    write_items(dev_items[:3], path)
    result = runner.invoke(app, ["demo", "--n", "3", "--items", str(path)])
    assert result.exit_code == 0, result.output
    assert "mean absolute error on these 3 items" in result.stdout
    assert all(f"${item.price:,.2f}" in result.stdout for item in dev_items[:3])  # the truths


def test_strategy_options_are_text_that_the_strategy_s_model_converts() -> None:
    from rag_pricer.cli.common import parse_options
    from rag_pricer.pricing.registry import registry

    parsed = parse_options(["context_chars=300", "mmr=true", "category=123", "k=7"])
    assert parsed == {"context_chars": "300", "mmr": "true", "category": "123", "k": "7"}
    validated = registry.get("rag").validate(parsed)
    assert (validated.context_chars, validated.mmr, validated.category, validated.k) == (300, True, "123", 7)
    result = runner.invoke(app, ["evaluate", "-s", "knn", "-o", "nonsense"])
    assert result.exit_code == 2 and "NAME=VALUE" in result.output


def test_version_and_effective_settings_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.stdout.startswith("rag-pricer ")
    monkeypatch.setenv("RAG_PRICER_LLM_THREADS", "2")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-never-shown")
    shown = runner.invoke(app, ["config", "--json"])
    settings = json.loads(shown.stdout)
    assert settings["llm_threads"] == 2 and settings["openai_api_key"] == "<set>"
    assert "sk-secret-never-shown" not in shown.stdout + runner.invoke(app, ["config"]).stdout


def test_compare_collapses_strategies_skipped_for_the_same_reason() -> None:
    from rag_pricer.cli.compare import skipped_lines

    hint = "(it saves every baseline under the models directory, settings models_dir)"
    skipped = {
        name: f"ModelNotTrained: no trained {name!r} baseline in var/models/{name}: run `rag-pricer "
        f"train-baselines` {hint}"
        for name in ("bow", "constant", "features")
    } | {"rag": "InvalidLLMSpec: no GGUF model file at /x.gguf"}
    lines = skipped_lines(skipped)
    assert lines == [
        f"skipped bow, constant, features (ModelNotTrained): run `rag-pricer train-baselines` {hint}",
        "skipped rag (InvalidLLMSpec): no GGUF model file at /x.gguf",
    ]


def test_load_prepares_what_the_first_estimate_would_load(settings: Settings) -> None:
    from rag_pricer.api import Estimator

    estimator = Estimator.from_settings(settings)
    assert "model" not in estimator.resources.embedder.__dict__
    assert estimator.load("knn") > 0
    assert "model" in estimator.resources.embedder.__dict__  # the embedding model is loaded
    assert estimator.pricer("knn") is estimator.pricer("knn")  # and the pricer built, once


def test_estimator_overrides_are_validated_like_the_environment(settings: Settings) -> None:
    from rag_pricer.api import Estimator
    from rag_pricer.settings import InvalidSettings

    estimator = Estimator.from_settings(settings, store_path=str(settings.store_path), k="5")
    assert estimator.settings.store_path == settings.store_path and estimator.settings.k == 5  # a Path, an int
    with pytest.raises(InvalidSettings, match=r"unknown setting 'stor_path' \(did you mean 'store_path'\?\)"):
        Estimator.from_settings(settings, stor_path="var/other-store")
    with pytest.raises(InvalidSettings, match="RAG_PRICER_K"):
        Estimator.from_settings(settings, k=0)


def test_validated_options_travel_to_the_pricer_without_a_second_validation(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag_pricer.api import Estimator
    from rag_pricer.pricing.registry import registry

    estimator = Estimator.from_settings(settings)
    options = estimator.options("knn", {"k": "3", "category": None})  # text, as a command line gives it
    assert options.k == 3  # type: ignore[attr-defined]

    def again(*args: object, **kwargs: object) -> None:
        raise AssertionError("options validated twice")

    monkeypatch.setattr(registry.get("knn").schema, "model_validate", again)
    pricer = estimator.pricer("knn", options)
    assert pricer.options["k"] == 3
    assert estimator.load("knn", options) >= 0


def test_a_whole_dev_evaluation_goes_on_record_and_strategies_shows_it(
    env: Settings, tmp_path: Path, dev_items: list[Item]
) -> None:
    path = tmp_path / "items.jsonl"
    write_items(dev_items[:12], path)
    quick = runner.invoke(app, ["evaluate", "-s", "knn", "--items", str(path), "--limit", "5", "--no-progress"])
    assert quick.exit_code == 0, quick.output
    assert not (env.models_dir / "scores").exists()  # a part of the split is no score to show
    whole = runner.invoke(app, ["evaluate", "-s", "knn", "--items", str(path), "--no-progress"])
    assert whole.exit_code == 0, whole.output
    record = json.loads((env.models_dir / "scores" / "knn.json").read_text())
    assert record["n"] == 12 and record["split"] == "dev" and record["how"] == "evaluated"
    assert record["items"] == str(path) and "evaluate" in record["command"] and record["mae_ci"][0] <= record["mae"]
    listed = {s["name"]: s for s in json.loads(runner.invoke(app, ["strategies", "--json"]).stdout)}
    assert listed["knn"]["dev_mae"] == record["mae"] and listed["knn"]["recommended"] is True
    assert listed["rag"]["dev_mae"] is None and listed["rag"]["recommended"] is False
    shown = CliRunner(env={"COLUMNS": "80"}).invoke(app, ["strategies"]).stdout
    head = next(line for line in shown.splitlines() if line.startswith("knn "))
    assert head == f"knn  ready  ${record['mae']:,.2f} on dev  recommended"
    score = next(line for line in shown.splitlines() if line.strip().startswith("dev: MAE"))
    assert f"${record['mae']:,.2f}" in score and len(score) <= 80
