"""A scripted chat model for tests and dry runs: no network, no weights, instant.

It answers like a pricing LLM would (so strategies can be exercised end to end), reports token
usage (so accounting can be tested), continues an assistant prefill, and can fail the first
``fail_times`` calls with the real ``openai`` exception of a given reason (so retries and error
mapping are tested through the same code path as the OpenAI backend).
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from typing import Any

import httpx2
import openai
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field, PrivateAttr

from rag_pricer.llms.messages import has_prefill, text_of

DEFAULT_PRICE = 49.99
_DOLLARS = re.compile(r"\$\s?(\d[\d,]*(?:\.\d+)?)")


def openai_error(reason: str, retry_after_s: float | None = None) -> Exception:
    """The exception the ``openai`` client raises for ``reason`` (see ``LLMError`` reasons)."""
    request = httpx2.Request("POST", "http://fake.invalid/v1/chat/completions")
    headers = {"retry-after": str(retry_after_s)} if retry_after_s is not None else {}

    def status(cls: type[openai.APIStatusError], code: int) -> Exception:
        return cls(f"fake {reason}", response=httpx2.Response(code, request=request, headers=headers), body=None)

    makers = {
        "rate_limit": lambda: status(openai.RateLimitError, 429),
        "server_error": lambda: status(openai.InternalServerError, 503),
        "bad_request": lambda: status(openai.BadRequestError, 400),
        "auth": lambda: status(openai.AuthenticationError, 401),
        "not_found": lambda: status(openai.NotFoundError, 404),
        "timeout": lambda: openai.APITimeoutError(request=request),
        "connection": lambda: openai.APIConnectionError(request=request),
        "error": lambda: RuntimeError("fake failure"),
    }
    if reason not in makers:
        raise ValueError(f"unknown failure {reason!r}; choose from {sorted(makers)}")
    return makers[reason]()


def echo_price(messages: list[BaseMessage]) -> float:
    """The median of the dollar amounts in the last user message (a RAG prompt lists the prices
    of similar products), else ``DEFAULT_PRICE``: a plausible answer without a model."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            amounts = [float(a.replace(",", "")) for a in _DOLLARS.findall(text_of(message))]
            return round(statistics.median(amounts), 2) if amounts else DEFAULT_PRICE
    return DEFAULT_PRICE


class FakePricingChatModel(BaseChatModel):
    """Cycles through ``answers`` (or echoes a plausible price when there are none).

    With a prefill (final ``AIMessage``, e.g. ``"Price is $"``) the reply is the continuation: an
    answer that starts with the prefill loses it, so ``"Price is $42"`` and ``"42"`` both reply
    ``"42"``. Token usage counts whitespace-separated words: crude but deterministic.
    ``calls`` and ``max_in_flight`` let tests check how often and how concurrently it was called.
    """

    answers: list[str] = Field(default_factory=list)
    fail_times: int = Field(0, ge=0)
    failure: str = "rate_limit"
    retry_after_s: float | None = None
    delay_s: float = Field(0.0, ge=0.0)

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _index: int = PrivateAttr(0)
    _calls: int = PrivateAttr(0)
    _in_flight: int = PrivateAttr(0)
    _max_in_flight: int = PrivateAttr(0)

    def model_post_init(self, context: Any) -> None:
        openai_error(self.failure)  # fail now on an unknown failure name, not at the first call

    @property
    def _llm_type(self) -> str:
        return "fake-pricing"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"answers": self.answers}

    @property
    def calls(self) -> int:
        return self._calls

    @property
    def max_in_flight(self) -> int:
        return self._max_in_flight

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._lock:
            self._calls += 1
            call = self._calls
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            if call <= self.fail_times:
                raise openai_error(self.failure, self.retry_after_s)
            text = self._answer(messages)
        finally:
            with self._lock:
                self._in_flight -= 1
        prompt_tokens = sum(len(text_of(m).split()) for m in messages)
        usage = {"input_tokens": prompt_tokens, "output_tokens": max(1, len(text.split())), "total_tokens": 0}
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text, usage_metadata=usage))])

    def _answer(self, messages: list[BaseMessage]) -> str:
        prefill = text_of(messages[-1]) if has_prefill(messages) else None
        if not self.answers:
            price = f"{echo_price(messages):.2f}"
            return price if prefill is not None else f"Price is ${price}"
        with self._lock:
            answer = self.answers[self._index % len(self.answers)]
            self._index += 1
        if prefill and answer.startswith(prefill):
            answer = answer[len(prefill) :]
        return answer
