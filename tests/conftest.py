"""Shared fixtures: paths to the real data beside the repository, small slices of it, a small
knowledge base built once per test session with the packaged embedding model, and a session-wide
cache of that model's fp32 vectors (the suite embeds the same few hundred descriptions in dozens
of tests: each text is embedded once)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from rag_pricer.items import Item, read_items
from rag_pricer.knowledge.embeddings import Embedder
from rag_pricer.knowledge.onnx_embedder import OnnxEmbedder
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


Encode = Callable[[OnnxEmbedder, Sequence[str]], np.ndarray]


class EmbeddingCache:
    """fp32 ONNX vectors by (model folder, text), filled by the first ``OnnxEmbedder.encode`` that
    embeds a text. An fp32 vector does not depend on its batch mates (int8 ones do: never cached),
    so a cached row is the vector a fresh forward pass gives (to ~1e-7). Tests of the embedder
    itself opt out with ``@pytest.mark.real_embeddings`` (every call then runs the model)."""

    def __init__(self) -> None:
        self.vectors: dict[tuple[str, str], np.ndarray] = {}
        self.enabled = True
        self.hits = 0

    def encode(self, embedder: OnnxEmbedder, texts: Sequence[str], original: Encode) -> np.ndarray:
        if not self.enabled or embedder.quantize or isinstance(texts, str) or not texts:
            return original(embedder, texts)
        model = str(embedder.model_path)
        keys = [(model, str(text).strip()) for text in texts]
        missing = list(dict.fromkeys(key for key in keys if key not in self.vectors))
        if missing:
            for key, row in zip(missing, original(embedder, [text for _, text in missing])):
                row.setflags(write=False)  # a caller never changes what the next one gets
                self.vectors[key] = row
        self.hits += len(keys) - len(missing)
        return np.stack([self.vectors[key] for key in keys])  # a fresh, writable array


@pytest.fixture(scope="session", autouse=True)
def embedding_cache() -> Iterator[EmbeddingCache]:
    cache = EmbeddingCache()
    original = OnnxEmbedder.encode

    def encode(self: OnnxEmbedder, texts: Sequence[str]) -> np.ndarray:
        return cache.encode(self, texts, original)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(OnnxEmbedder, "encode", encode)
        yield cache


@pytest.fixture(autouse=True)
def _real_embeddings(request: pytest.FixtureRequest, embedding_cache: EmbeddingCache) -> Iterator[None]:
    """``@pytest.mark.real_embeddings``: the cache is off for the test (it runs the model itself)."""
    if request.node.get_closest_marker("real_embeddings") is None:
        yield
        return
    embedding_cache.enabled = False
    try:
        yield
    finally:
        embedding_cache.enabled = True


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
def small_store(
    tmp_path_factory: pytest.TempPathFactory, train_items: list[Item], embedder: Embedder
) -> Iterator[ProductStore]:
    """A persistent Chroma store holding ``train_items`` (built once per session), shared by every
    test that reads it: one that writes copies it first. Checked unchanged at the session's end."""
    store = ProductStore(tmp_path_factory.mktemp("store"), collection="products")
    store.upsert(train_items, embedder.encode([item.description for item in train_items]))
    version, count = store.version(), store.count()
    yield store
    assert (store.version(), store.count()) == (version, count), "a test wrote to the shared small_store"


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


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Each file's size and modification time: what a write would change."""
    stats = {p: p.stat() for p in folder.rglob("*") if p.is_file()}
    return {str(p.relative_to(folder)): (stat.st_size, stat.st_mtime_ns) for p, stat in stats.items()}


@pytest.fixture(scope="session")
def base_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The packaged GGUF converted once to an fp32 checkpoint (what every fine-tuning test trains).
    Tests hard-link it into their models folders (half a gigabyte each): it must stay unchanged."""
    from rag_pricer.strategies.finetune.base_model import BaseCheckpoint

    cache = tmp_path_factory.mktemp("base-models")
    BaseCheckpoint.resolve("smollm2").checkpoint(cache)
    files = _files(cache)
    yield cache
    assert _files(cache) == files, "a test changed the shared fp32 base model"


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


#: test files that share a costly session fixture run in one pytest-xdist worker, so that it is
#: built once: the fp32 base model they fine-tune, and the quick ``prepare``
SHARED_WORKER = {
    "test_finetune.py": "base-model",
    "test_rag_finetune.py": "base-model",
    "test_prepare.py": "prepared",
    "test_readme.py": "prepared",
}
#: the longest groups go first, so that with two workers the other takes every short file meanwhile
FIRST = ("base-model", "prepared")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Marked here rather than test by test: `-m "not slow"` must never embed 400 items or export
    # an ONNX model because one test forgot its mark.
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the longest groups first
        rank = {group: n for n, group in enumerate(FIRST)}
        items.sort(key=lambda item: rank.get(SHARED_WORKER.get(item.path.name, ""), len(FIRST)))


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, when it is installed
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``-n 2 --dist loadfile``: each file to one worker, and the files of one SHARED_WORKER group
    to the same one. (xdist's own ``loadgroup`` cannot do it under pytest 9: it renames node ids
    through an attribute pytest 9 no longer reads.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return SHARED_WORKER.get(Path(path).name, path)

    return SharedFixtureScheduling(config, log)
