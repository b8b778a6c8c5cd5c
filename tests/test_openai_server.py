"""The OpenAI-compatible backend end to end, against a real server started by the test:
llama.cpp's OpenAI-compatible server (with extra buffer types off, as on AMX CPUs it must be)
running the packaged SmolLM2 GGUF on loopback."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from rag_pricer.llms import LLMError, LLMReply, PricingLLM, build_llm
from rag_pricer.llms.local_chat import default_gguf_path
from rag_pricer.settings import Settings

SERVER_KEY = "sk-local-server-KEY-0123456789"
WRONG_KEY = "sk-wrong-KEY-9876543210"
READY_WITHIN_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def conversation(text: str) -> list[BaseMessage]:
    # A chat API cannot continue an assistant message: the user prompt carries the cue too.
    return [
        SystemMessage("You estimate prices of products. Reply with the price only."),
        HumanMessage(f"How much does this cost to the nearest dollar?\n\n{text}\n\nPrice is $"),
        AIMessage("Price is $"),
    ]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "rag_pricer.llms.llama_server",
        "--model",
        str(default_gguf_path()),
        "--model_alias",
        "smollm2",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_threads",
        "1",
        "--n_ctx",
        "2048",
        "--api_key",
        SERVER_KEY,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + READY_WITHIN_S
        while True:
            if process.poll() is not None:
                pytest.fail(
                    "llama.cpp server exited with "
                    f"{process.returncode}:\n{log_path.read_text(errors='replace')[-2000:]}"
                )
            try:
                if (
                    httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {SERVER_KEY}"}, timeout=2).status_code
                    == 200
                ):
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"llama.cpp server not ready within {READY_WITHIN_S} "
                    f"s:\n{log_path.read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def client(url: str, tmp_path: Path, key: str = SERVER_KEY, **update: object) -> PricingLLM:
    # The endpoint's own key (llm_api_key): OpenAI's key would not be sent to it.
    settings = Settings(
        _env_file=None, llm_api_key=key, llm_base_url=None, llm_cache_dir=tmp_path / "cache", llm_concurrency=2
    )
    return build_llm(f"openai-compatible:smollm2@{url}", settings.model_copy(update=update))


@pytest.mark.slow
def test_answers_through_the_openai_client(server_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    llm = client(server_url, tmp_path)
    assert not llm.supports_prefill and llm.model_id == "smollm2" and llm.price is None
    with caplog.at_level(logging.DEBUG):
        reply = llm.ask(conversation("Delphi FG0166 Fuel Pump Module"))
    assert reply.text.strip()
    assert reply.usage.prompt_tokens > 20 and reply.usage.cost_usd == 0.0
    # max_tokens reached the server (it ignores OpenAI's newer max_completion_tokens).
    assert 0 < reply.usage.completion_tokens <= 12
    assert llm.totals.prompt_tokens == reply.usage.prompt_tokens and llm.calls == 1
    cached = llm.ask(conversation("Delphi FG0166 Fuel Pump Module"))
    assert cached.usage.cached and cached.text == reply.text and llm.calls == 1
    assert SERVER_KEY not in caplog.text and SERVER_KEY not in repr(llm)


@pytest.mark.slow
def test_ask_many_against_the_server(server_url: str, tmp_path: Path) -> None:
    llm = client(server_url, tmp_path)
    results = llm.ask_many([conversation(t) for t in ("USB-C cable, 2 m", "Cordless drill, 18 V", "Guitar strings")])
    assert all(isinstance(r, LLMReply) and r.text.strip() for r in results)
    assert llm.calls == 3


@pytest.mark.slow
def test_wrong_key_is_an_auth_error_that_is_not_retried(
    server_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    llm = client(server_url, tmp_path, key=WRONG_KEY)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(LLMError) as caught:
            llm.ask(conversation("Guitar strings"))
    assert caught.value.reason == "auth" and caught.value.attempts == 1
    assert WRONG_KEY not in str(caught.value) and WRONG_KEY not in caplog.text and SERVER_KEY not in caplog.text


@pytest.mark.slow
def test_timeout_is_retried_then_reported(server_url: str, tmp_path: Path) -> None:
    llm = client(server_url, tmp_path, llm_timeout_s=0.001, llm_cache_dir=None, llm_max_retries=1)
    with pytest.raises(LLMError) as caught:
        llm.ask(conversation("Cordless drill, 18 V"))
    assert caught.value.reason == "timeout" and caught.value.attempts == 2


def test_unreachable_server_is_a_connection_error(tmp_path: Path) -> None:
    # Nothing listens there; the openai client retries twice (its backoff: about 0.5 s, then 1 s).
    llm = client(f"http://127.0.0.1:{free_port()}/v1", tmp_path, llm_cache_dir=None, llm_max_retries=2)
    with pytest.raises(LLMError) as caught:
        llm.ask(conversation("Guitar strings"))
    assert caught.value.reason == "connection" and caught.value.attempts == 3
