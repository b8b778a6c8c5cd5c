"""Shared fixtures: paths to the real data beside the repository, small slices of it, and a
small knowledge base built once per test session with the packaged embedding model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag_pricer.items import Item, read_items
from rag_pricer.knowledge.embeddings import Embedder
from rag_pricer.knowledge.store import ProductStore
from rag_pricer.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RAG_PRICER_DATA_DIR", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def feedback_journal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Estimates the tests' servers give are journalled in a temporary file, never in the
    checkout's var/ (servers started as processes inherit the variable)."""
    path = tmp_path_factory.mktemp("journal") / "feedback.sqlite3"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAG_PRICER_FEEDBACK_PATH", str(path))
        yield path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "items.jsonl.gz").exists():
        pytest.fail(f"the shared data is missing at {DATA} (set RAG_PRICER_DATA_DIR)")
    return DATA


@pytest.fixture(scope="session")
def items_path(data_dir: Path) -> Path:
    return data_dir / "items.jsonl.gz"


@pytest.fixture(scope="session")
def train_items(items_path: Path) -> list[Item]:
    """The first 400 train items: enough to retrieve meaningful neighbours, quick to embed."""
    return read_items(items_path, split="train", limit=400)


@pytest.fixture(scope="session")
def dev_items(items_path: Path) -> list[Item]:
    return read_items(items_path, split="dev", limit=20)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="session")
def small_store(tmp_path_factory: pytest.TempPathFactory, train_items: list[Item], embedder: Embedder) -> ProductStore:
    """A persistent Chroma store holding ``train_items`` (built once per session)."""
    store = ProductStore(tmp_path_factory.mktemp("store"), collection="products")
    store.upsert(train_items, embedder.encode([item.description for item in train_items]))
    return store


@pytest.fixture()
def settings(small_store: ProductStore, tmp_path: Path) -> Settings:
    """Settings pointing at the small store, with a per-test LLM cache directory."""
    return Settings(
        _env_file=None,  # a developer's .env must not change what the tests see
        store_path=small_store.path,
        collection="products",
        llm="fake",
        llm_cache_dir=tmp_path / "llm-cache",
        models_dir=tmp_path / "models",
        strategy="knn",  # the small store has no ensemble: the tests of knn's behaviour name it
    )


@pytest.fixture(scope="session")
def base_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged GGUF converted once to an fp32 checkpoint (what every fine-tuning test trains)."""
    from rag_pricer.strategies.finetune.base_model import BaseCheckpoint

    cache = tmp_path_factory.mktemp("base-models")
    BaseCheckpoint.resolve("smollm2").checkpoint(cache)
    return cache


@pytest.fixture(scope="session")
def checkpoint(base_cache: Path) -> str:
    from rag_pricer.strategies.finetune.base_model import BaseCheckpoint

    return BaseCheckpoint.resolve("smollm2").checkpoint(base_cache)


#: train items of the quick `rag-pricer prepare` the tests share; its ensemble is fitted on
#: training.prepare.MIN_FIT_ITEMS dev items and as many extra ones
PREPARE_LIMIT = 200


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Path, list[str], dict]:
    """One quick `rag-pricer prepare --json` into a fresh store and models folder (``root/store``,
    ``root/models``): its folder, its arguments and its report. The default strategy is ready there."""
    import json

    from typer.testing import CliRunner

    from rag_pricer.cli.app import app

    root = tmp_path_factory.mktemp("prepared")
    args = [
        "prepare",
        "--items", str(data_dir / "items.jsonl.gz"),
        "--extra", str(data_dir / "items_extra.jsonl.gz"),
        "--store", str(root / "store"),
        "--models-dir", str(root / "models"),
        "--limit", str(PREPARE_LIMIT),
        "--json",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return root, args, json.loads(result.stdout)


#: fixtures that load or build something heavy: a test that uses one is slow, whatever its marks
HEAVY_FIXTURES = {"small_store", "embedder", "exported", "fp32", "int8", "base_cache", "checkpoint", "prepared"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Marked here rather than test by test: `-m "not slow"` must never embed 400 items or export
    # an ONNX model because one test forgot its mark.
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
