"""Fault injection: hostile data, files, settings and LLMs. Each test reproduces one defect of
the reliability issue (#12) and fails on the code before its fix."""

from __future__ import annotations

import http.server
import json
import math
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field, SecretStr
from typer.testing import CliRunner

from ingest.cli import app as ingest_app
from ingest.index import Indexer
from rag_pricer.api import Estimator
from rag_pricer.cli.app import app as rag_app
from rag_pricer.items import MAX_PRICE, MAX_TEXT_CHARS, MAX_TITLE_CHARS, InvalidRecord, Item, write_items
from rag_pricer.knowledge.embeddings import Embedder
from rag_pricer.knowledge.store import DiskFull, ProductStore, StoreError, _metadata
from rag_pricer.pricing.pricer import Pricer, UnusablePrice
from rag_pricer.pricing.values import CEILING, FLOOR, Estimate
from rag_pricer.query import Query
from rag_pricer.settings import Settings

# 1. absurd prices -----------------------------------------------------------------------------


@pytest.mark.parametrize("price", [1e300, 1e6, 1000.0, 0.01])
def test_records_with_absurd_prices_are_refused(price: float) -> None:
    with pytest.raises(InvalidRecord) as caught:
        Item.from_record({"id": "a", "title": "t", "price": price})
    assert caught.value.reason == "price_out_of_range"


def test_the_indexer_refuses_absurd_prices_and_counts_them(
    tmp_path: Path, train_items: list[Item], embedder: Embedder
) -> None:
    items = train_items[:5] + [replace(train_items[5], price=1e300), replace(train_items[6], price=math.inf)]
    store = ProductStore(tmp_path / "s")
    report = Indexer(store, embedder, progress=False).run(items)
    assert report.stored == 5 and store.count() == 5
    assert dict(report.skipped) == {"price_out_of_range": 2}


@pytest.fixture()
def poisoned_settings(tmp_path: Path, train_items: list[Item], embedder: Embedder) -> tuple[Settings, Item]:
    """A store written by an older version: one near-copy of an item priced 1e300."""
    store = ProductStore(tmp_path / "poisoned")
    good = train_items[:40]
    store.upsert(good, embedder.encode([i.description for i in good]))
    poison = replace(good[0], id="poison", title=good[0].title + " (new model)", price=1e300)
    store.collection().upsert(
        ids=[poison.id],
        embeddings=embedder.encode([poison.description]),
        documents=[poison.description],
        metadatas=[_metadata(poison)],
    )
    settings = Settings(
        store_path=store.path, llm="fake", llm_cache_dir=None, models_dir=tmp_path / "m", _env_file=None
    )
    return settings, good[0]


@pytest.mark.parametrize("strategy", ["knn", "rag", "zero-shot"])
def test_a_poisoned_store_never_yields_an_absurd_estimate(poisoned_settings, strategy: str) -> None:
    settings, query = poisoned_settings
    estimate = Estimator.from_settings(settings).estimate(query.description + " (new model)", strategy)
    assert math.isfinite(estimate.price) and FLOOR <= estimate.price <= MAX_PRICE
    assert all(c.price <= MAX_PRICE for c in estimate.comparables)


class ConstantPricer(Pricer):
    def __init__(self, price: float) -> None:
        self.price = price

    def _estimate_many(self, queries: list[Query]) -> list[Estimate]:
        return [Estimate(price=self.price, strategy="constant-test") for _ in queries]


@pytest.mark.parametrize(("price", "expected"), [(1e300, CEILING), (0.01, FLOOR)])
def test_every_strategy_s_estimate_is_held_inside_sane_bounds(price: float, expected: float) -> None:
    estimate = ConstantPricer(price).estimate("a drill")
    assert estimate.price == expected and estimate.fallback and "outside" in estimate.fallback


@pytest.mark.parametrize("price", [math.nan, math.inf, 0.0, -5.0])
def test_a_strategy_s_non_finite_estimate_is_an_error_not_an_answer(price: float) -> None:
    with pytest.raises(UnusablePrice, match="not a finite positive price"):
        ConstantPricer(price).estimate("a drill")


def test_np_floats_are_held_too() -> None:
    assert ConstantPricer(np.float64(5e4)).estimate("x").price == CEILING


# 2. one bad line never aborts a file ------------------------------------------------------------


def _index(path: Path, store: Path) -> tuple[int, dict, str]:
    result = CliRunner().invoke(ingest_app, ["index", str(path), "--store", str(store), "--json"])
    lines = result.stdout.strip().splitlines()
    report = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    return result.exit_code, report, result.output


def test_a_non_utf8_line_is_skipped_and_counted(tmp_path: Path, train_items: list[Item]) -> None:
    path = tmp_path / "items.jsonl"
    write_items(train_items[:90], path)
    with path.open("ab") as handle:
        handle.write(b'{"id": "bad", "title": "caf\xe9 \xff", "price": 3}\n')
        handle.write((json.dumps(train_items[90].to_record()) + "\n").encode())
    code, report, output = _index(path, tmp_path / "s")
    assert code == 0, output
    assert report["stored"] == 91 and report["skipped"] == {"invalid_utf8": 1}


def test_a_truncated_gzip_keeps_what_was_read_and_says_so(tmp_path: Path, train_items: list[Item]) -> None:
    whole = tmp_path / "whole.jsonl.gz"
    write_items(train_items[:200], whole)
    data = whole.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    code, report, output = _index(cut, tmp_path / "s")
    assert code == 0, output
    assert report["skipped"] == {"truncated_file": 1}
    assert 50 < report["stored"] < 200 and report["total_in_store"] == report["stored"]


def test_a_bad_field_skips_its_item_not_the_file(tmp_path: Path, train_items: list[Item]) -> None:
    path = tmp_path / "items.jsonl"
    records = [i.to_record() for i in train_items[:106]]
    records[50]["category"] = {"x": 1}
    records[60]["split"] = ["train"]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    code, report, output = _index(path, tmp_path / "s")
    assert code == 0, output
    assert report["stored"] == 104 and report["skipped"] == {"bad_category": 1, "bad_split": 1}


def test_indexing_streams_what_it_reads(tmp_path: Path, train_items: list[Item], embedder: Embedder) -> None:
    """A source that fails after 100 items: the items before it are stored, not lost."""

    def source():
        yield from train_items[:100]
        raise RuntimeError("the source broke")

    store = ProductStore(tmp_path / "s")
    with pytest.raises(RuntimeError, match="the source broke"):
        Indexer(store, embedder, chunk_size=16, window=32, progress=False).run(source())
    assert store.count() >= 64


# 7. clear CLI errors; the OpenAI key goes to OpenAI only ------------------------------------------


@pytest.mark.parametrize(
    ("cli", "args", "variable"),
    [
        (rag_app, ["estimate", "drill"], "RAG_PRICER_K"),
        (rag_app, ["serve"], "RAG_PRICER_LLM_TIMEOUT_S"),
        (ingest_app, ["index", "items.jsonl"], "RAG_PRICER_EMBEDDING_BATCH_SIZE"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2(
    cli, args: list[str], variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "abc")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert variable.removeprefix("RAG_PRICER_").lower() in result.output


class _HeaderCatcher(http.server.BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        type(self).seen.append(self.headers.get("Authorization"))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error": {"message": "no"}}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def endpoint() -> Iterator[str]:
    _HeaderCatcher.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HeaderCatcher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


OPENAI_KEY = "sk-openai-Xq93-only-for-openai"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, None),  # no key of its own: the OpenAI key is not sent
        ({"llm_api_key": SecretStr("endpoint-key-7")}, "Bearer endpoint-key-7"),
        ({"llm_send_openai_key": True}, f"Bearer {OPENAI_KEY}"),  # the user's explicit opt-in
    ],
)
@pytest.mark.parametrize("style", ["compatible", "base_url"])
def test_the_openai_key_is_not_sent_to_another_endpoint(
    endpoint: str, overrides: dict, expected: str | None, style: str
) -> None:
    from langchain_core.messages import HumanMessage

    from rag_pricer.llms import build_llm
    from rag_pricer.llms.reply import LLMError

    base = {"llm_base_url": endpoint} if style == "base_url" else {}
    settings = Settings(
        openai_api_key=SecretStr(OPENAI_KEY), llm_cache_dir=None, llm_max_retries=0, _env_file=None, **base, **overrides
    )
    spec = "openai:gpt-4o-mini" if style == "base_url" else f"openai-compatible:m@{endpoint}"
    llm = build_llm(spec, settings)
    with pytest.raises(LLMError):  # the fake endpoint answers nothing a chat model can read
        llm.ask([HumanMessage("price?")])
    assert _HeaderCatcher.seen, "the endpoint was not called"
    sent = _HeaderCatcher.seen[-1]
    assert OPENAI_KEY not in (sent or "") if expected is None else sent == expected


# 6. readiness tells the truth; read-only commands never create a store ----------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["estimate", "a cordless drill", "--strategy", "knn"],
        ["serve", "--port", "1"],
        ["evaluate", "--strategy", "knn", "--limit", "2"],
    ],
)
def test_read_only_commands_refuse_a_missing_store(
    args: list[str], tmp_path: Path, items_path: Path, monkeypatch
) -> None:
    import uvicorn

    missing = tmp_path / "typo-store"
    monkeypatch.setenv("RAG_PRICER_ITEMS_PATH", str(items_path))
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("served a missing store"))
    result = CliRunner().invoke(rag_app, [*args, "--store", str(missing)])
    assert result.exit_code == 2, (result.output, result.exception)
    assert "no store at" in result.output and len(result.output.strip().splitlines()) == 1
    assert not missing.exists()


def test_reading_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store at"):
        ProductStore(tmp_path / "nope").count()
    assert not (tmp_path / "nope").exists()


def _wait_status(client, wanted: str, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while (body := client.get("/readyz").json())["status"] != wanted:
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    return body


def test_readiness_follows_the_store_and_retries_a_failed_start(
    tmp_path: Path, train_items: list[Item], embedder: Embedder
) -> None:
    from fastapi.testclient import TestClient

    from rag_pricer.service import create_app

    path = (tmp_path / "late-store").resolve()
    settings = Settings(store_path=path, llm="fake", llm_cache_dir=None, models_dir=tmp_path / "m", _env_file=None)
    app = create_app(settings=settings)
    app.state.pricing.retry_s = 0.2
    with TestClient(app) as client:
        failed = _wait_status(client, "failed")
        assert str(path) not in json.dumps(failed) and str(tmp_path) not in json.dumps(failed)
        assert not path.exists()  # the service did not create an empty store
        store = ProductStore(path)
        store.upsert(train_items[:30], embedder.encode([i.description for i in train_items[:30]]))
        ready = _wait_status(client, "ready")  # the failed start was retried
        assert ready["store_items"] == 30
        shutil.rmtree(path)
        gone = client.get("/readyz")
        assert gone.status_code == 503 and gone.json()["ready"] is False
        assert str(path) not in gone.text


# 4. one request, one deadline -------------------------------------------------------------------


class SlowChat(BaseChatModel):
    """Answers "$42" after ``delay_s`` (or, with ``hang``, once ``hang`` is set); ``started``
    records each call as it begins."""

    delay_s: float = 0.5
    hang: threading.Event | None = None
    started: list[int] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "slow-test"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        self.started.append(1)  # list.append: atomic, the calls run in several threads
        if self.hang is not None:
            self.hang.wait(60)
        else:
            time.sleep(self.delay_s)
        return ChatResult(generations=[ChatGeneration(message=AIMessage("$42"))])


def _wait_for(condition, timeout_s: float = 60) -> None:
    """Poll ``condition`` (a generous bound: this waits for threads, it times nothing)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_calls_still_queued_at_the_deadline_are_not_made() -> None:
    from rag_pricer.llms.client import PricingLLM, llm_deadline
    from rag_pricer.llms.reply import LLMError

    hang = threading.Event()
    chat = SlowChat(hang=hang)
    llm = PricingLLM(chat, spec="slow", model_id="slow", supports_prefill=False, concurrency=2)
    try:
        with llm_deadline(1.0):  # time enough for the first wave to start on a busy machine
            results = llm.ask_many([[HumanMessage(f"item {n}")] for n in range(8)])
        # Returned while the two calls in flight still hang: at the deadline, not after a wave.
        assert not hang.is_set() and llm.calls == 0
        assert all(isinstance(r, LLMError) and r.reason == "timeout" for r in results)
    finally:
        hang.set()
    _wait_for(lambda: llm.calls == len(chat.started))
    assert 0 < len(chat.started) <= 2  # the calls in flight finished; the six queued ones were never made


def test_a_batch_against_a_hung_llm_takes_one_deadline(
    tmp_path: Path, small_store: ProductStore, train_items: list[Item]
) -> None:
    """One deadline for the whole batch: at most the first wave of calls starts, whatever the
    machine's load (no timing is asserted: the queued calls are never made)."""
    from fastapi.testclient import TestClient

    from rag_pricer.llms.client import PricingLLM
    from rag_pricer.service import create_app

    hang = threading.Event()
    chat = SlowChat(hang=hang)
    settings = Settings(
        store_path=small_store.path,
        llm="hung",
        llm_cache_dir=None,
        llm_concurrency=2,
        max_batch_items=16,
        models_dir=tmp_path / "m",
        _env_file=None,
    )
    estimator = Estimator.from_settings(settings)
    llm = PricingLLM(chat, spec="hung", model_id="hung", supports_prefill=False, concurrency=2)
    estimator.resources.shared(("llm", "hung"), lambda: llm)
    descriptions = [i.description for i in train_items[100:116]]
    # Embedding the descriptions is the knn fallback's one CPU-bound step: done first (the query
    # cache keeps the vectors), so the fallback fits its share of the deadline on a busy machine.
    estimator.estimate_many(descriptions, "knn")
    try:
        # a deadline long enough for the knn fallback's store queries under any load we run tests at
        with TestClient(create_app(estimator, settings, deadline_s=10.0)) as client:
            _wait_status(client, "ready")
            items = [{"description": d, "strategy": "rag"} for d in descriptions]
            response = client.post("/v1/estimate/batch", json={"items": items})
            assert response.status_code == 200, response.text
            assert all(r["fallback"] for r in response.json()["items"])
            assert len(chat.started) <= 2  # the first wave only; the old rule made 8 waves of 2
    finally:
        hang.set()


# 3. bounded text: what is stored and what a prompt carries -----------------------------------------

HUGE = "cheap " * 200_000  # 1.2 MB


def test_stored_text_is_bounded() -> None:
    item = Item.from_record({"id": "a", "title": "Drill " * 10_000, "text": HUGE, "price": 30})
    assert len(item.title) <= MAX_TITLE_CHARS and len(item.text) <= MAX_TEXT_CHARS
    assert item.text.startswith("cheap cheap") and not item.text.endswith(" ")


def _prompt_bytes(messages) -> int:
    return sum(len(str(m.content).encode("utf-8")) for m in messages)


def test_a_prompt_is_bounded_whatever_the_comparables_and_query() -> None:
    from rag_pricer.knowledge.store import Neighbour
    from rag_pricer.strategies.prompting.prompts import PromptBudget, rag_messages, zero_shot_messages

    budget = PromptBudget(max_tokens=3000, product_tokens=800, query_tokens=1000)
    neighbours = [Neighbour(str(n), "t", 10.0 + n, 0.9, document="é" * 500_000) for n in range(20)]
    rag = rag_messages("日本語" * 100_000, neighbours, prefill=True, budget=budget)
    # UTF-8 bytes bound the tokens of byte-level BPE tokenizers (GPT-4o, Llama 3, SmolLM2).
    assert _prompt_bytes(rag) <= 3000 + len("Price is $")
    assert "Potentially related product" in str(rag[1].content)
    assert _prompt_bytes(zero_shot_messages("x" * 100_000, prefill=False, budget=budget)) <= 1000 + 200


class RecordingChat(BaseChatModel):
    prompts: list = []

    @property
    def _llm_type(self) -> str:
        return "recording-test"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        type(self).prompts.append(messages)
        return ChatResult(generations=[ChatGeneration(message=AIMessage("$12"))])


def test_a_poisoned_description_cannot_blow_up_another_user_s_prompt(poisoned_settings, embedder: Embedder) -> None:
    from rag_pricer.llms.client import PricingLLM

    settings, query = poisoned_settings
    store = ProductStore(settings.store_path)
    huge = replace(query, id="huge", title=query.title + " (pack)", text=HUGE, price=20.0)
    store.collection().upsert(  # as an older version stored it
        ids=["huge"],
        embeddings=embedder.encode([query.description]),
        documents=[huge.description],
        metadatas=[_metadata(huge)],
    )
    estimator = Estimator.from_settings(settings.model_copy(update={"llm": "recording"}))
    RecordingChat.prompts = []
    estimator.resources.shared(
        ("llm", "recording"),
        lambda: PricingLLM(RecordingChat(), spec="recording", model_id="r", supports_prefill=False),
    )
    estimator.estimate(query.description + " (pack)", "rag")
    sent = RecordingChat.prompts[-1]
    assert _prompt_bytes(sent) <= settings.llm_max_prompt_tokens


# 5. disk full: one clear line, a readable store -------------------------------------------------------


def test_a_nearly_full_disk_stops_the_indexer_before_chroma_breaks(
    tmp_path: Path, train_items: list[Item], embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag_pricer.knowledge.store as store_module

    path = tmp_path / "items.jsonl"
    write_items(train_items[:40], path)
    store_path = tmp_path / "s"
    assert _index(path, store_path)[0] == 0
    write_items(train_items[40:80], path)
    real = store_module.shutil.disk_usage
    monkeypatch.setattr(store_module.shutil, "disk_usage", lambda p: real(p)._replace(free=5 * 1024 * 1024))
    result = CliRunner().invoke(ingest_app, ["index", str(path), "--store", str(store_path), "--json"])
    assert result.exit_code == 1, (result.output, result.exception)
    # (transformers' own "Loading weights" bar aside)
    errors = [line for line in result.output.splitlines() if line.strip() and "Loading weights" not in line]
    assert len(errors) == 1 and "disk full" in errors[0] and "Traceback" not in result.output
    assert ProductStore(store_path).count() == 40  # still readable, nothing half-written


def test_an_os_disk_full_error_is_one_clear_line(
    tmp_path: Path, train_items: list[Item], embedder: Embedder, monkeypatch
) -> None:
    import errno

    store = ProductStore(tmp_path / "s")
    Indexer(store, embedder, progress=False).run(train_items[:10])
    collection = store.collection()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(type(collection), "upsert", full)
    with pytest.raises(DiskFull, match="disk full") as caught:
        Indexer(store, embedder, progress=False).run(train_items[10:20])
    assert "\n" not in str(caught.value) and "No space left on device" in str(caught.value)
