"""The OpenAI backends' retries are the openai client's: checked against a scripted server on
loopback (429 with Retry-After, 5xx, 400), built through ``build_llm`` as the product builds it."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage
from pydantic import SecretStr

from rag_pricer.llms import LLMError, PricingLLM, build_llm
from rag_pricer.settings import Settings

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 0,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "42"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}


@dataclass
class Script:
    """The answers the server gives, in order (the last one repeats), and when each request came."""

    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)


class _Handler(http.server.BaseHTTPRequestHandler):
    script = Script()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        script = type(self).script
        script.times.append(time.monotonic())
        status, headers = script.answers[min(len(script.times), len(script.answers)) - 1]
        body = json.dumps(COMPLETION if status == 200 else {"error": {"message": f"scripted {status}"}}).encode()
        self.send_response(status)
        for name, value in {"content-type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[tuple[str, Script]]:
    _Handler.script = Script()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", _Handler.script
    httpd.shutdown()


def llm_for(url: str, tmp_path: Path, retries: int) -> PricingLLM:
    settings = Settings(
        _env_file=None, llm_api_key=SecretStr("k"), llm_base_url=None, llm_cache_dir=None, llm_max_retries=retries
    )
    return build_llm(f"openai-compatible:m@{url}", settings)


def test_rate_limit_waits_as_long_as_retry_after_says(server: tuple[str, Script], tmp_path: Path) -> None:
    url, script = server
    # Without the header the first retry would wait at most 0.5 s (the client's backoff).
    script.answers = [(429, {"retry-after": "1.2"}), (200, {})]
    llm = llm_for(url, tmp_path, retries=2)
    reply = llm.ask([HumanMessage("a lamp")])
    assert reply.text == "42" and len(script.times) == 2
    assert script.times[1] - script.times[0] >= 1.2
    assert llm.calls == 1 and llm.totals.prompt_tokens == 5  # the retry is one call to account


def test_server_errors_are_retried_then_reported_with_the_attempts(server: tuple[str, Script], tmp_path: Path) -> None:
    url, script = server
    script.answers = [(503, {"retry-after-ms": "20"})]
    with pytest.raises(LLMError) as caught:
        llm_for(url, tmp_path, retries=2).ask([HumanMessage("a lamp")])
    assert (caught.value.reason, caught.value.attempts, len(script.times)) == ("server_error", 3, 3)


def test_a_bad_request_is_not_retried(server: tuple[str, Script], tmp_path: Path) -> None:
    url, script = server
    script.answers = [(400, {})]
    with pytest.raises(LLMError) as caught:
        llm_for(url, tmp_path, retries=3).ask([HumanMessage("a lamp")])
    assert (caught.value.reason, caught.value.attempts, len(script.times)) == ("bad_request", 1, 1)


def test_no_retries_when_told_none(server: tuple[str, Script], tmp_path: Path) -> None:
    url, script = server
    script.answers = [(429, {"retry-after": "0.01"})]
    with pytest.raises(LLMError) as caught:
        llm_for(url, tmp_path, retries=0).ask([HumanMessage("a lamp")])
    assert (caught.value.reason, caught.value.attempts, len(script.times)) == ("rate_limit", 1, 1)
