"""A native crash of the local model's runtime never ends the process that asked: the CLI, a
comparison or the service get the knn fallback with the reason ``crashed``. Shown with a runtime
that kills itself with SIGSEGV / SIGABRT on purpose, so it holds on any CPU."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from runtime_doubles import MisbehavingChat

from rag_pricer.api import Estimator
from rag_pricer.items import Item
from rag_pricer.knowledge.store import ProductStore
from rag_pricer.llms.client import PricingLLM
from rag_pricer.llms.errors import RuntimeCrashed
from rag_pricer.llms.reply import LLMError
from rag_pricer.llms.retry import RetryPolicy
from rag_pricer.llms.runtime_process import RuntimeProcess
from rag_pricer.settings import Settings
from rag_pricer.strategies.rag import RagPricer


@pytest.fixture()
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF")
    return path


@pytest.fixture()
def chat(model_file: Path) -> Iterator[MisbehavingChat]:
    model = MisbehavingChat(model_path=model_file, timeout_s=1.0)
    yield model
    model.close()


def llm_of(chat: MisbehavingChat) -> PricingLLM:
    return PricingLLM(chat, spec="misbehaving", model_id="m", supports_prefill=True, retry=RetryPolicy(max_retries=0))


def ask(llm: PricingLLM, text: str) -> str:
    return llm.ask([HumanMessage(text), AIMessage("Price is $")]).text


@pytest.mark.parametrize("fault", ["segfault", "abort"])
def test_a_native_crash_is_an_llm_error_and_the_runtime_restarts(chat: MisbehavingChat, fault: str) -> None:
    llm = llm_of(chat)
    first_pid = int(ask(llm, "pid"))
    assert first_pid != os.getpid()  # the runtime runs in a child process
    with pytest.raises(LLMError) as caught:
        ask(llm, f"please {fault}")
    assert caught.value.reason == "crashed" and ("SIGSEGV" if fault == "segfault" else "SIGABRT") in str(caught.value)
    assert ask(llm, "a lamp") == "42"  # a fresh child answers the next call
    assert int(ask(llm, "pid")) != first_pid and chat._process.starts == 2


def test_a_runtime_that_keeps_crashing_rests_instead_of_reloading(model_file: Path) -> None:
    spec = {
        "module": MisbehavingChat.__module__,
        "qualname": "MisbehavingChat",
        "fields": {"model_path": str(model_file), "isolated": False},
    }
    process = RuntimeProcess(spec, max_crashes=2, cooldown_s=3600)
    messages = [{"role": "user", "content": "segfault"}]
    try:
        for _ in range(2):
            with pytest.raises(RuntimeCrashed, match="SIGSEGV"):
                process.call("complete", messages, [], 4)
        with pytest.raises(RuntimeCrashed, match="2 times in a row"):
            process.call("complete", [{"role": "user", "content": "fine"}], [], 4)
        assert process.starts == 2  # no third model load during the cool-down
        process.cooldown_s = 0
        assert process.call("complete", [{"role": "user", "content": "fine"}], [], 4) == ["42", 10, 1]
    finally:
        process.close()


def test_a_hung_runtime_is_killed_at_the_deadline(model_file: Path) -> None:
    spec = {
        "module": MisbehavingChat.__module__,
        "qualname": "MisbehavingChat",
        "fields": {"model_path": str(model_file), "isolated": False},
    }
    process = RuntimeProcess(spec)
    try:
        process.start()
        hung = process.pid
        with pytest.raises(TimeoutError, match="took longer than 1 s"):
            process.call("complete", [{"role": "user", "content": "hang"}], [], 4, timeout_s=1)
        assert process.pid is None
        with pytest.raises(ProcessLookupError):
            os.kill(hung, 0)  # the hung child is gone, not left running
        assert process.call("complete", [{"role": "user", "content": "fine"}], [], 4, timeout_s=30)[0] == "42"
    finally:
        process.close()


def test_errors_of_the_child_keep_their_type(tmp_path: Path) -> None:
    missing = MisbehavingChat(model_path=tmp_path / "absent.gguf")
    with pytest.raises(LLMError) as caught:
        ask(llm_of(missing), "a lamp")
    assert caught.value.reason == "error" and "no GGUF model" in str(caught.value)
    missing.close()


@pytest.mark.slow
def test_rag_falls_back_to_knn_when_the_runtime_crashes(
    chat: MisbehavingChat, estimator: Estimator, dev_items: list[Item]
) -> None:
    rag = RagPricer(llm_of(chat), estimator.pricer("knn"))
    rag.name = "rag"
    poisoned = dataclasses.replace(dev_items[0], title="segfault " + dev_items[0].title)
    crashed = rag.estimate(poisoned)
    assert crashed.fallback == "LLM call failed (crashed): knn price used"
    assert crashed.price == pytest.approx(estimator.pricer("knn").estimate(poisoned).price)
    answered = rag.estimate(dev_items[0])  # the same process, a restarted runtime
    assert answered.llm_answer == "42" and "crashed" not in (answered.fallback or "")


@pytest.fixture(scope="module")
def estimator(small_store: ProductStore, tmp_path_factory: pytest.TempPathFactory) -> Estimator:
    settings = Settings(
        _env_file=None,
        store_path=small_store.path,
        collection="products",
        llm="fake",
        llm_cache_dir=None,
        models_dir=tmp_path_factory.mktemp("models"),
    )
    return Estimator.from_settings(settings)


@pytest.mark.slow
def test_the_service_answers_through_a_runtime_crash(
    chat: MisbehavingChat, estimator: Estimator, dev_items: list[Item], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from rag_pricer.service.app import create_app

    llm = llm_of(chat)
    monkeypatch.setattr(estimator.resources, "llm", lambda spec=None: llm)
    with TestClient(create_app(estimator, deadline_s=60)) as client:
        for _ in range(600):
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.1)
        crashed = client.post(
            "/v1/estimate", json={"description": "segfault " + dev_items[0].description, "strategy": "rag"}
        )
        assert (
            crashed.status_code == 200 and crashed.json()["fallback"] and "crashed" in crashed.json()["fallback_reason"]
        )
        answered = client.post("/v1/estimate", json={"description": dev_items[0].description, "strategy": "rag"})
        assert answered.status_code == 200 and answered.json()["llm_answer"] == "42"
        assert client.get("/healthz").status_code == 200
