"""The contracts between strategies and their users (issue 13): options are declared, typed and
checked; each pricer states its own fingerprint for the result cache; the core install (no
extras) lists every strategy and runs knn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from rag_pricer.api import Estimator
from rag_pricer.cli.app import app
from rag_pricer.evaluation import Bootstrap, Comparison, run_key
from rag_pricer.items import Item, read_items
from rag_pricer.knowledge.store import ProductStore
from rag_pricer.pricing.pricer import Pricer
from rag_pricer.pricing.registry import InvalidOptions, MissingExtra, Registry, registry
from rag_pricer.pricing.resources import Resources
from rag_pricer.pricing.values import Estimate
from rag_pricer.query import Query
from rag_pricer.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="module")
def few_items(items_path: Path) -> list[Item]:
    return read_items(items_path, split="train", limit=12)


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory: pytest.TempPathFactory, few_items: list[Item]) -> Path:
    """A real Chroma store of 12 items with random MiniLM-sized vectors: no model loaded to build it."""
    path = tmp_path_factory.mktemp("tiny-store")
    vectors = np.random.default_rng(0).normal(size=(len(few_items), 384)).astype(np.float32)
    ProductStore(path, collection="products").upsert(
        few_items, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    )
    return path


def tiny_settings(store: Path, tmp_path: Path, **overrides: object) -> Settings:
    return Settings(
        _env_file=None,
        store_path=store,
        collection="products",
        llm="fake",
        llm_cache_dir=None,
        models_dir=tmp_path / "models",
        **overrides,
    )


# --- options: declared, typed, checked --------------------------------------------------------


def test_an_unknown_option_is_an_error_that_lists_the_valid_ones(tiny_store: Path, tmp_path: Path) -> None:
    knn = registry.get("knn")
    with pytest.raises(InvalidOptions) as raised:
        knn.build(Resources(tiny_settings(tiny_store, tmp_path)), contxt_chars="300")
    message = str(raised.value)
    assert "unknown option 'contxt_chars'" in message and "k (int, default 7)" in message and "power" in message


def test_options_are_coerced_from_text_and_bad_values_refused(tiny_store: Path, tmp_path: Path) -> None:
    resources = Resources(tiny_settings(tiny_store, tmp_path))
    pricer = registry.get("knn").build(resources, k="3", mmr="true", power="2.5")
    assert pricer.options["k"] == 3 and pricer.options["mmr"] is True and pricer.options["power"] == 2.5
    assert pricer.search.k == 3 and pricer.search.mmr is True and pricer.power == 2.5
    with pytest.raises(InvalidOptions, match="option 'k'"):
        registry.get("knn").build(resources, k="many")
    with pytest.raises(InvalidOptions, match="option 'mean'"):
        registry.get("knn").build(resources, mean="harmonic")
    # a baseline takes no option at all: k is refused, not silently dropped
    with pytest.raises(InvalidOptions, match="unknown option 'k'"):
        registry.get("constant").build(resources, k=5)


def test_every_strategy_declares_typed_options_with_defaults_and_descriptions() -> None:
    for strategy in registry.all():
        assert strategy.options_model is not None, f"{strategy.name} declares no options model"
        assert strategy.options_model.model_config.get("extra") == "forbid", strategy.name
        for option in strategy.option_info():
            assert option.type and option.description, (strategy.name, option)
    knn = {o.name: o for o in registry.get("knn").option_info()}
    assert (knn["k"].type, knn["k"].default) == ("int", 7)
    assert knn["mean"].type == "arithmetic | geometric | median | trimmed"


def test_cli_refuses_a_mistyped_option_in_one_line(items_path: Path, tmp_path: Path) -> None:
    store = ["--store", str(tmp_path / "none"), "--items", str(items_path)]
    for command in (
        ["estimate", "-s", "knn", "-o", "contxt_chars=300", "a steel water bottle", *store[:2]],
        ["evaluate", "-s", "knn", "-o", "contxt_chars=300", "--limit", "2", "--no-progress", *store],
        [
            "compare",
            "--strategies",
            "knn,rag",
            "-o",
            "contxt_chars=300",
            "--limit",
            "2",
            "--out",
            str(tmp_path / "out"),
            *store,
        ],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        assert "contxt_chars" in result.output and "Traceback" not in result.output, result.output
    assert not (tmp_path / "out" / "cache").exists()  # nothing ran, nothing was cached


def test_strategies_lists_each_option_with_its_type_and_default() -> None:
    rows = {row["name"]: row for row in json.loads(runner.invoke(app, ["strategies", "--json"]).stdout)}
    k = next(o for o in rows["rag"]["options"] if o["name"] == "k")
    assert k == {"name": "k", "type": "int", "default": 5, "description": "Comparable products in the prompt."}
    assert rows["rag"]["extra"] == "llm" and rows["knn"]["extra"] is None and rows["constant"]["options"] == []


def test_http_refuses_an_option_the_strategy_does_not_have_with_422(tmp_path: Path) -> None:
    settings = tiny_settings(tmp_path / "store", tmp_path)
    from rag_pricer.service import create_app

    client = TestClient(create_app(Estimator(Resources(settings)), settings))  # not started: no model loads
    response = client.post("/v1/estimate", json={"description": "a steel water bottle", "strategy": "constant", "k": 5})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_options" and "unknown option 'k'" in response.json()["message"]
    listed = client.get("/v1/strategies").json()["strategies"]
    assert {"name": "k", "type": "int", "default": 7}.items() <= next(s for s in listed if s["name"] == "knn")[
        "options"
    ][0].items()


class Priced(Pricer):
    def _estimate_many(self, queries: list[Query]) -> list[Estimate]:
        return [Estimate(10.0 + len(q.text) % 7, self.name) for q in queries]


def test_a_mistyped_option_is_never_cached_as_the_plain_run_and_defaults_share_a_cache(
    few_items: list[Item], tmp_path: Path
) -> None:
    test_registry = Registry()
    test_registry.register("close", "takes k", needs=("store",))(lambda resources, k=5: Priced())
    resources = Resources(Settings(_env_file=None, store_path=tmp_path / "store"))

    def compare(**options: object) -> object:
        comparison = Comparison(
            resources,
            ["close"],
            few_items,
            tmp_path / "out",
            registry=test_registry,
            options=options,
            workers=1,
            charts=False,
            bootstrap=Bootstrap(resamples=50),
        )
        return comparison.run()

    with pytest.raises(InvalidOptions, match="contxt_chars"):
        compare(contxt_chars=300)
    assert compare().reused == []
    assert compare(k=5).reused == ["close"]  # 5 is the default: the same run
    assert compare(k="5").reused == ["close"]  # text from the command line is the same value
    assert compare(k=6).reused == []


# --- fingerprints: each pricer says what its results depend on --------------------------------


def build(name: str, settings: Settings, **options: object) -> Pricer:
    return registry.get(name).build(Resources(settings), **options)


def test_knn_key_changes_with_the_embedding_runtime_and_the_store(
    tiny_store: Path, tmp_path: Path, few_items: list[Item]
) -> None:
    settings = tiny_settings(tiny_store, tmp_path)
    key = run_key(build("knn", settings), few_items)
    assert key == run_key(build("knn", settings, k=7), few_items)
    other_runtime = {"embedding_backend": "torch" if settings.embedding_backend != "torch" else "onnx"}  # both fp32
    assert key != run_key(build("knn", settings.model_copy(update=other_runtime)), few_items)
    assert key != run_key(build("knn", settings, k=8), few_items)
    assert key != run_key(build("knn", settings), few_items[:-1])
    # not read by knn: the LLM and its generation settings
    assert key == run_key(build("knn", settings.model_copy(update={"llm_max_tokens": 50, "llm": "fake:3"})), few_items)


def test_rag_key_changes_with_the_llm_and_its_generation_settings(
    tiny_store: Path, tmp_path: Path, few_items: list[Item]
) -> None:
    settings = tiny_settings(tiny_store, tmp_path)
    key = run_key(build("rag", settings), few_items)
    assert key == run_key(build("rag", settings), few_items)
    assert key != run_key(build("rag", settings.model_copy(update={"llm_max_tokens": 50})), few_items)
    assert key != run_key(build("rag", settings.model_copy(update={"llm_max_prompt_tokens": 1024})), few_items)
    assert key != run_key(build("rag", settings, llm="fake:42"), few_items)
    other_runtime = {"embedding_backend": "torch" if settings.embedding_backend != "torch" else "onnx"}  # both fp32
    assert key != run_key(build("rag", settings.model_copy(update=other_runtime)), few_items)
    assert key != run_key(build("rag", settings, context_chars=300), few_items)


def test_a_retrained_baseline_and_boosting_s_embedder_change_its_key(
    tiny_store: Path, tmp_path: Path, few_items: list[Item]
) -> None:
    from rag_pricer.knowledge.embeddings import Embedder
    from rag_pricer.strategies.baselines.catalog import BASELINES, SharedParts
    from rag_pricer.strategies.baselines.pricer import BaselinePricer

    settings = tiny_settings(tiny_store, tmp_path)
    constant = BASELINES["constant"]
    constant.make(SharedParts([i.description for i in few_items])).fit(few_items[:6]).save(
        settings.models_dir / "constant"
    )
    first = run_key(build("constant", settings), few_items)
    assert first == run_key(build("constant", settings), few_items)
    constant.make(SharedParts([i.description for i in few_items])).fit(few_items[6:]).save(
        settings.models_dir / "constant"
    )
    assert run_key(build("constant", settings), few_items) != first
    # a baseline that embeds its input (boosting) depends on the embedding model and runtime
    model = constant.load(settings.models_dir / "constant")
    directory = settings.models_dir / "constant"
    torch_key = run_key(BaselinePricer(model, model_dir=directory, embedder=Embedder(backend="torch")), few_items)
    assert torch_key != run_key(
        BaselinePricer(model, model_dir=directory, embedder=Embedder(backend="onnx")), few_items
    )


# --- the core install: no extras ---------------------------------------------------------------

#: what the extras provide; a core install has none of them. Not blocked: scikit-learn (a
#: dependency of sentence-transformers, so in every install) and accelerate, which transformers
#: finds by its installed metadata, not by import, so a block here would break transformers
#: where a real core install would not have it at all (`.ci/run` checks a real core install).
EXTRA_MODULES = [
    *("langchain_core", "langchain", "langchain_openai", "openai", "llama_cpp", "gguf"),
    *("lightgbm", "gensim", "skops", "peft", "trl", "fastapi", "fastapi_offline", "uvicorn"),
]


def core_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``rag-pricer ARGS`` in a fresh interpreter where every extra's package fails to import."""
    prelude = "\n".join(
        [
            "import sys",
            f"for m in {EXTRA_MODULES!r}: sys.modules[m] = None",
            "from rag_pricer.cli.app import main",
            "sys.argv = ['rag-pricer', *sys.argv[1:]]",
            "main()",
        ]
    )
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", prelude, *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )


def test_the_core_install_lists_every_strategy_and_refuses_llm_ones_naming_the_extra(tmp_path: Path) -> None:
    listed = core_cli("strategies", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {"knn", "rag", "zero-shot", "finetuned", "boosting", "ensemble"} <= {
        s["name"] for s in json.loads(listed.stdout)
    }
    refused = core_cli("estimate", "-s", "rag", "a steel water bottle", "--store", str(tmp_path / "none"))
    assert refused.returncode == 2, refused.stderr
    assert "pip install 'rag-pricer[llm]'" in " ".join(refused.stderr.split()) and "Traceback" not in refused.stderr


@pytest.mark.slow
def test_the_core_install_estimates_with_knn(tiny_store: Path, tmp_path: Path) -> None:
    env = {"RAG_PRICER_STORE_PATH": str(tiny_store), "RAG_PRICER_MODELS_DIR": str(tmp_path / "models")}
    result = core_cli("estimate", "-s", "knn", "Stainless steel insulated water bottle, 32 oz", "--json", env=env)
    assert result.returncode == 0, result.stderr
    estimate = json.loads(result.stdout)
    assert estimate["strategy"] == "knn" and estimate["price"] > 0 and len(estimate["comparables"]) == 7


def test_missing_extra_names_the_extra_a_strategy_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    from rag_pricer.pricing.registry import missing_extra

    assert (
        missing_extra(registry.get("knn")) is None and missing_extra(registry.get("rag")) is None
    )  # all installed here
    monkeypatch.setitem(sys.modules, "openai", None)
    assert missing_extra(registry.get("rag")) == "llm" and missing_extra(registry.get("knn")) is None
    with pytest.raises(MissingExtra, match=r"rag-pricer\[llm\]"):
        registry.get("zero-shot").build(Resources(Settings(_env_file=None)))


def test_readiness_says_which_extra_a_strategy_lacks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from rag_pricer.pricing.readiness import Readiness

    store = tmp_path / "store"
    monkeypatch.setitem(sys.modules, "openai", None)
    readiness = Readiness(Settings(_env_file=None, llm="fake", store_path=store, models_dir=tmp_path / "models"))
    rag = readiness.of(registry.get("rag"))
    assert rag.status == "needs-extra" and rag.hint is not None and "pip install 'rag-pricer[llm]'" in rag.hint
    assert readiness.of(registry.get("knn")).status != "needs-extra"
