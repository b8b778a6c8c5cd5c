"""Indexing into the knowledge base: idempotent, resumable, and the Chroma server mode."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ingest.cli import app
from ingest.index import Indexer
from rag_pricer.items import Item, write_items
from rag_pricer.knowledge.embeddings import Embedder
from rag_pricer.knowledge.store import ProductStore, StoreError
from rag_pricer.settings import Settings


class CrashingEmbedder(Embedder):
    """Dies after ``chunks`` encode calls, like a run killed half way."""

    def __init__(self, inner: Embedder, chunks: int) -> None:
        super().__init__(inner.model_name)
        self.inner, self.chunks, self.calls = inner, chunks, 0

    def encode(self, texts):
        self.calls += 1
        if self.calls > self.chunks:
            raise KeyboardInterrupt("killed")
        return self.inner.encode(texts)


def test_index_is_idempotent_and_stores_metadata(tmp_path: Path, train_items: list[Item], embedder: Embedder) -> None:
    items = train_items[:60]
    store = ProductStore(tmp_path / "s")
    first = Indexer(store, embedder, chunk_size=16, progress=False).run(items)
    assert (first.read, first.embedded, first.stored, first.total_in_store) == (60, 60, 60, 60)
    again = Indexer(store, embedder, chunk_size=16, progress=False).run(items)
    assert (again.already_stored, again.embedded, again.stored, again.total_in_store) == (60, 0, 0, 60)
    stored = store.collection().get(ids=[items[0].id], include=["metadatas", "documents"])
    meta = stored["metadatas"][0]
    assert meta["price"] == items[0].price and meta["title"] == items[0].title
    assert stored["documents"][0] == items[0].description


def test_a_killed_run_resumes_without_duplicates_or_losses(
    tmp_path: Path, train_items: list[Item], embedder: Embedder
) -> None:
    items = train_items[:80]
    store = ProductStore(tmp_path / "s")
    with pytest.raises(KeyboardInterrupt):
        Indexer(store, CrashingEmbedder(embedder, chunks=2), chunk_size=16, progress=False).run(items)
    partial = store.count()
    assert 0 < partial < 80
    resumed = Indexer(ProductStore(tmp_path / "s"), embedder, chunk_size=16, progress=False).run(items)
    assert resumed.already_stored == partial and resumed.stored == 80 - partial
    assert store.count() == 80
    assert sorted(store.collection().get(include=[])["ids"]) == sorted(i.id for i in items)


def test_changed_items_are_reindexed_and_duplicate_ids_counted(
    tmp_path: Path, train_items: list[Item], embedder: Embedder
) -> None:
    items = train_items[:10]
    store = ProductStore(tmp_path / "s")
    Indexer(store, embedder, progress=False).run(items)
    changed = [replace(items[0], price=items[0].price + 1)] + items[1:] + [items[3]]
    report = Indexer(store, embedder, progress=False).run(changed)
    assert report.skipped["duplicate_id"] == 1 and report.stored == 1 and store.count() == 10
    assert (
        store.collection().get(ids=[items[0].id], include=["metadatas"])["metadatas"][0]["price"] == items[0].price + 1
    )


def test_store_refuses_vectors_of_another_model(tmp_path: Path) -> None:
    ProductStore(tmp_path / "s", model="model-a").upsert(
        [Item(id="1", title="t", text="x", price=3.0)], np.ones((1, 4), dtype=np.float32)
    )
    with pytest.raises(StoreError, match="model-a"):
        ProductStore(tmp_path / "s", model="model-b").count()
    with pytest.raises(StoreError, match="rag-pricer-ingest index"):
        ProductStore(tmp_path / "empty").count()


def test_store_refuses_to_mix_int8_and_fp32_vectors(tmp_path: Path) -> None:
    item = Item(id="1", title="t", text="x", price=3.0)
    ProductStore(tmp_path / "fp32").upsert([item], np.ones((1, 4), dtype=np.float32))
    assert ProductStore(tmp_path / "fp32").collection().metadata["embedding_vectors"] == "fp32"
    # torch and ONNX fp32 make the same vectors: a store built by either serves both
    torch_settings = Settings(_env_file=None, store_path=tmp_path / "fp32", embedding_backend="torch")
    assert ProductStore.from_settings(torch_settings).count() == 1
    assert ProductStore.from_settings(torch_settings.model_copy(update={"embedding_backend": "onnx"})).count() == 1
    int8 = ProductStore.from_settings(torch_settings.model_copy(update={"embedding_backend": "onnx-int8"}))
    with pytest.raises(StoreError, match="holds fp32 vectors, this embedder makes int8"):
        int8.count()
    with pytest.raises(StoreError, match="holds fp32 vectors"):  # refused again, not remembered as opened
        int8.upsert([item], np.ones((1, 4), dtype=np.float32))
    ProductStore(tmp_path / "int8", vectors="int8").upsert([item], np.ones((1, 4), dtype=np.float32))
    with pytest.raises(StoreError, match="holds int8 vectors.*onnx-int8"):
        ProductStore(tmp_path / "int8").count()


def test_a_store_that_recorded_no_vector_kind_is_fp32(tmp_path: Path) -> None:
    import chromadb

    # what stores built before the kind was recorded hold: the model only
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(path=str(tmp_path / "old"), settings=ChromaSettings(anonymized_telemetry=False))
    old = client.get_or_create_collection(
        "products", embedding_function=None, metadata={"embedding_model": "all-MiniLM-L6-v2"}
    )
    old.add(ids=["1"], embeddings=np.ones((1, 4), dtype=np.float32), metadatas=[{"price": 3.0, "title": "t"}])
    assert ProductStore(tmp_path / "old").count() == 1
    with pytest.raises(StoreError, match="holds fp32 vectors"):
        ProductStore(tmp_path / "old", vectors="int8").count()


def test_cli_reports_counts_and_skips(tmp_path: Path, train_items: list[Item]) -> None:
    path = tmp_path / "items.jsonl"
    write_items(train_items[:12], path)
    with path.open("a") as handle:
        handle.write("{broken\n" + json.dumps({"id": "x", "title": "no price"}) + "\n")
    runner = CliRunner()
    result = runner.invoke(app, ["index", str(path), "--store", str(tmp_path / "s"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["read"] == 12 and report["stored"] == 12 and report["skipped"] == {"invalid_json": 1, "bad_price": 1}
    result = runner.invoke(app, ["index", str(path), "--store", str(tmp_path / "s"), "--json", "--limit", "5"])
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["stored"] == 0 and report["already_stored"] == 5 and report["total_in_store"] == 12


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def chroma_server(tmp_path: Path):
    """A real Chroma server (``chroma run``) on a free loopback port."""
    port = _free_port()
    chroma = Path(sys.executable).with_name("chroma")
    process = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("chroma server did not start within 60 s")
    yield port
    process.terminate()
    process.wait(timeout=20)


@pytest.mark.slow
def test_server_mode_indexes_and_queries(
    chroma_server: int, tmp_path: Path, train_items: list[Item], embedder: Embedder
) -> None:
    path = tmp_path / "items.jsonl"
    write_items(train_items[:30], path)
    args = ["index", str(path), "--chroma-host", "127.0.0.1", "--chroma-port", str(chroma_server), "--json"]
    for expected_stored in (30, 0):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout.strip().splitlines()[-1])
        assert report["stored"] == expected_stored and report["total_in_store"] == 30
        assert report["store"] == f"http://127.0.0.1:{chroma_server}"
    store = ProductStore(host="127.0.0.1", port=chroma_server)
    hits = store.query(embedder.encode_one(train_items[0].description), k=3)[0]
    assert hits[0].id == train_items[0].id and hits[0].similarity > 0.99


def test_progress_off_a_terminal_is_plain_lines_per_chunk(
    tmp_path: Path, train_items: list[Item], embedder: Embedder, capsys: pytest.CaptureFixture[str]
) -> None:
    # In a log (no terminal) a rich bar draws nothing until the end: the user must see lines.
    Indexer(ProductStore(tmp_path / "s"), embedder, chunk_size=16, progress=True, log_every_s=0).run(train_items[:40])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("indexing:")]
    assert len(lines) >= 3 and "16 items" in lines[0] and "40 items" in lines[-1] and "items/s" in lines[-1]


def test_one_rate_per_run_items_already_stored_do_not_count_as_speed(
    tmp_path: Path, train_items: list[Item], embedder: Embedder, capsys: pytest.CaptureFixture[str]
) -> None:
    """Progress and report say the same rate: items embedded per second. A rerun that finds
    everything stored embeds nothing, so its rate is 0, not thousands of items a second."""
    store = ProductStore(tmp_path / "s")
    Indexer(store, embedder, chunk_size=16, progress=False).run(train_items[:24])
    report = Indexer(store, embedder, chunk_size=16, progress=True, log_every_s=0).run(train_items[:40])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("indexing:")]
    assert "40 items, 24 already stored" in lines[-1] and report.embedded == 16
    again = Indexer(store, embedder, chunk_size=16, progress=True, log_every_s=0).run(train_items[:40])
    rerun = [line for line in capsys.readouterr().err.splitlines() if line.startswith("indexing:")]
    assert again.items_per_s == 0.0 and rerun[-1] == "indexing: 40 items, 40 already stored (0.0 items/s)"
