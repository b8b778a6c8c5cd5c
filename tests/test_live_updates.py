"""Knowledge that changes while serving, across processes: a product written by one process is
retrieved by another that already serves from the store, a deleted one no longer, and a write
never loses another process's writes. Real processes on a copy of the small store; a real server
on 127.0.0.1 for the end-to-end case."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from ingest.cli import app as ingest_app
from rag_pricer.items import Item
from rag_pricer.knowledge.embeddings import Embedder
from rag_pricer.knowledge.store import ProductStore

ROOT = Path(__file__).resolve().parents[1]
WRITE_TOKEN = "write-Lm2x-never-shown"
NEW = Item(
    id="zebra-live-1",
    title="Zebracorn 9000 titanium left-handed banjo tuner",
    text="A set of six titanium banjo tuners for left-handed players, zebra-striped, with a unicorn crest.",
    price=123.45,
    category="Musical Instruments",
)
OTHER = Item(
    id="zebra-live-2",
    title="Aardvark deluxe copper kazoo with velvet case",
    text="Hand-hammered copper kazoo tuned by aardvark artisans; velvet-lined carrying case included.",
    price=31.0,
    category="Musical Instruments",
)
#: what a buyer would type: near NEW's text, never a verbatim copy (a copy is never evidence)
QUERY = "zebra-striped titanium banjo tuners for a left-handed player, unicorn crest"


def env(**extra: str) -> dict[str, str]:
    quiet = {"PYTHONPATH": str(ROOT), "RAG_PRICER_LLM_CACHE_DIR": "", "TOKENIZERS_PARALLELISM": "false"}
    return os.environ | quiet | extra


def ingest(*args: str) -> dict:
    """``rag-pricer-ingest ARGS --json`` in a process of its own; its JSON answer."""
    done = subprocess.run(
        [sys.executable, "-m", "ingest.cli", *args, "--json"], cwd=ROOT, env=env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def items_file(path: Path, *items: Item) -> Path:
    path.write_text("".join(json.dumps(i.to_record()) + "\n" for i in items), encoding="utf-8")
    return path


@pytest.fixture()
def store_copy(small_store: ProductStore, tmp_path: Path) -> Path:
    """A copy of the small store that this test may write (others read the original)."""
    target = tmp_path / "store"
    shutil.copytree(small_store.path, target)  # type: ignore[arg-type]
    return target


def nearest(store: ProductStore, embedder: Embedder, text: str) -> str:
    return store.query(embedder.encode([text]), k=1)[0][0].id


def test_a_serving_store_sees_another_process_s_writes_and_loses_none(
    store_copy: Path, tmp_path: Path, embedder: Embedder
) -> None:
    serving = ProductStore(store_copy)
    before = serving.fingerprint()
    assert nearest(serving, embedder, QUERY) != NEW.id  # opened (index in memory) before the write
    assert ingest("add", str(items_file(tmp_path / "new.jsonl", NEW)), "--store", str(store_copy))["upserted"] == 1
    assert nearest(serving, embedder, QUERY) == NEW.id  # no restart, no wait
    assert serving.fingerprint()["version"] != before["version"]  # caches keyed on it miss
    # This process writes after the other one did: the other's product stays in the index.
    serving.upsert([OTHER], embedder.encode([OTHER.description]))
    serving.close()
    fresh = ProductStore(store_copy)
    assert nearest(fresh, embedder, QUERY) == NEW.id
    assert nearest(fresh, embedder, "copper kazoo in a velvet case by aardvark artisans") == OTHER.id
    fresh.close()
    removed = ingest("remove", "--ids", f"{NEW.id},not-stored", "--store", str(store_copy))
    assert removed["deleted"] == 1 and removed["missing"] == ["not-stored"]
    serving = ProductStore(store_copy)
    assert nearest(serving, embedder, QUERY) != NEW.id
    serving.close()


def test_an_update_that_keeps_the_count_changes_the_fingerprint(
    store_copy: Path, tmp_path: Path, embedder: Embedder, train_items: list[Item]
) -> None:
    store = ProductStore(store_copy)
    before = store.fingerprint()
    changed = Item(**(train_items[0].to_record() | {"price": train_items[0].price + 1}))
    ingest("add", str(items_file(tmp_path / "fix.jsonl", changed)), "--store", str(store_copy))
    after = store.fingerprint()
    assert after["products"] == before["products"] and after != before
    store.close()


def test_add_names_each_bad_record_with_its_line_and_writes_nothing(store_copy: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    lines = [
        json.dumps(NEW.to_record()),
        json.dumps(OTHER.to_record() | {"price": 1e6}),
        json.dumps({"id": "x-3", "title": "", "price": 5}),
        "{broken",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(ingest_app, ["add", str(path), "--store", str(store_copy)])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert any("line 2: price_out_of_range" in e for e in errors)
    assert any("line 3: missing_title" in e for e in errors)
    assert any("line 4: invalid_json" in e for e in errors)
    assert "Traceback" not in result.output and "nothing was written" in result.output
    store = ProductStore(store_copy)
    assert store.product(NEW.id) is None
    store.close()


def test_add_refuses_a_missing_store_instead_of_creating_one(tmp_path: Path) -> None:
    path = items_file(tmp_path / "new.jsonl", NEW)
    result = CliRunner().invoke(ingest_app, ["add", str(path), "--store", str(tmp_path / "typo")])
    assert result.exit_code == 1 and "no store at" in result.output
    assert not (tmp_path / "typo").exists()


# a real server and a writer process ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def server(store_copy: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "rag_pricer.cli.app", "serve", "--store", str(store_copy)]
    command += ["--port", str(port), "--strategy", "knn", "--llm", "fake", "--log-level", "warning"]
    extra = {"RAG_PRICER_WRITE_TOKEN": WRITE_TOKEN, "RAG_PRICER_MODELS_DIR": str(tmp_path / "models")}
    with open(tmp_path / "server.log", "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env(**extra), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def comparables(url: str) -> list[str]:
    response = httpx.post(f"{url}/v1/estimate", json={"description": QUERY, "k": 3}, timeout=60)
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["comparables"]]


def test_a_running_server_retrieves_what_another_process_writes_and_forgets_what_it_deletes(
    server: str, store_copy: Path, tmp_path: Path
) -> None:
    assert NEW.id not in comparables(server)
    ingest("add", str(items_file(tmp_path / "new.jsonl", NEW)), "--store", str(store_copy))
    # The server's next request, not a later one, sees it: nothing to wait for.
    assert comparables(server)[0] == NEW.id
    ingest("remove", "--ids", NEW.id, "--store", str(store_copy))
    assert NEW.id not in comparables(server)
    # and writes over HTTP by a third process (this one) with the write token
    record = {k: v for k, v in NEW.to_record().items() if k in ("title", "text", "price", "category")}
    headers = {"Authorization": f"Bearer {WRITE_TOKEN}"}
    assert httpx.put(f"{server}/v1/products/{NEW.id}", json=record, headers=headers, timeout=60).status_code == 200
    assert comparables(server)[0] == NEW.id
    assert httpx.delete(f"{server}/v1/products/{NEW.id}", headers=headers, timeout=60).status_code == 200
    assert NEW.id not in comparables(server)
    # a writer process after the server's own write: both survive in a fresh reader
    ingest("add", str(items_file(tmp_path / "other.jsonl", OTHER)), "--store", str(store_copy))
    assert httpx.put(f"{server}/v1/products/{NEW.id}", json=record, headers=headers, timeout=60).status_code == 200
    assert comparables(server)[0] == NEW.id
    assert httpx.get(f"{server}/v1/products/{OTHER.id}", timeout=60).status_code == 200


def test_threads_that_find_the_store_closed_open_one_client_between_them(
    store_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a reopen (another process wrote), the next requests all find the client closed:
    they must not each open one. Two Chroma clients of one folder share one refcounted
    ``System``; the one the store forgets keeps it alive, and closing the other at the next
    reopen stopped it under a query (``KeyError`` / ``'RustBindingsAPI' object has no attribute
    'bindings'``: 503s in ``benchmarks.live_updates`` while a writer process wrote)."""
    import threading

    import chromadb

    real = chromadb.PersistentClient
    opened: list[object] = []
    arrived = threading.Barrier(4)

    def slow_client(*args: object, **kwargs: object) -> object:
        opened.append(args)
        time.sleep(0.3)  # widens the window; the assertion counts clients, it times nothing
        return real(*args, **kwargs)

    store = ProductStore(store_copy)
    store.count()
    store.close()  # as a reopen leaves it
    monkeypatch.setattr(chromadb, "PersistentClient", slow_client)
    counts: list[int] = []

    def count() -> None:
        arrived.wait()
        counts.append(store.count())

    threads = [threading.Thread(target=count) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(counts) == 4 and len(set(counts)) == 1
    assert len(opened) == 1
    store.close()
