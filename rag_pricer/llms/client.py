"""``PricingLLM``: the one object strategies call to ask a chat model for a price."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextvars import ContextVar
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from rag_pricer.llms.cache import CachedReply, ResponseCache
from rag_pricer.llms.errors import classify
from rag_pricer.llms.messages import has_prefill, text_of
from rag_pricer.llms.reply import RETRYABLE, LLMError, LLMReply
from rag_pricer.llms.retry import RetryPolicy
from rag_pricer.llms.token_costs import ModelPrice
from rag_pricer.llms.usage import Usage

log = logging.getLogger(__name__)

#: monotonic time by which ``ask_many`` must return (``llm_deadline``); None: no deadline
_DEADLINE: ContextVar[float | None] = ContextVar("llm_deadline", default=None)


@contextlib.contextmanager
def llm_deadline(seconds: float) -> Iterator[None]:
    """``ask_many`` calls made in this block (in this thread) return within ``seconds`` from
    now, whatever the batch size: conversations still queued or unanswered by then yield
    ``LLMError("timeout")``. This is how a service request gets one deadline instead of one per
    wave of ``concurrency`` calls. (A call already sent is not interrupted, Python cannot; its
    own timeout ends it, and it frees its slot then.)"""
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


class PricingLLM:
    """Wraps a LangChain chat model with what a batch evaluation needs.

    - **Retries**: one way per backend. The OpenAI backends leave them to the openai client
      (``max_retries``: rate limits, 408/409, 5xx, timeouts and connection failures, with
      backoff, ``Retry-After`` honoured) and give ``retry`` no retries; the chat models without
      retries of their own (local runtimes, the fake) are retried here, up to
      ``retry.max_retries`` times, with exponential backoff and jitter. Then, or at once for any
      other failure, ``LLMError`` is raised with a ``reason`` and the ``attempts`` made.
    - **Timeout**: set on the chat model by its backend (HTTP timeout, local deadline).
    - **Concurrency**: at most ``concurrency`` calls in flight (a semaphore shared by ``ask``
      from any thread and by ``ask_many``); the backoff sleeps of ``retry`` do not hold a slot
      (the openai client's, inside its call, do: a rate-limited endpoint then gets fewer calls).
    - **Cache**: replies are kept in ``cache`` keyed by model, endpoint, generation parameters
      and the full messages; a hit is not a model call and reports ``usage.cached=True`` with
      the original token counts and no cost.
    - **Accounting**: ``totals`` adds up tokens and cost of the calls actually made (cache hits
      excluded), priced with ``price`` when the model is a known paid one.
    - **Prefill**: a final ``AIMessage`` is continued when ``supports_prefill``; otherwise it is
      dropped (the user prompt must then end with the cue, e.g. "Price is $").

    ``secrets`` (the API key) are masked in every error message and log line.
    """

    def __init__(
        self,
        chat_model: BaseChatModel,
        *,
        spec: str,
        model_id: str,
        supports_prefill: bool,
        endpoint: str | None = None,
        cache: ResponseCache | None = None,
        retry: RetryPolicy | None = None,
        concurrency: int = 4,
        price: ModelPrice | None = None,
        secrets: Sequence[str] = (),
        sleep: Callable[[float], None] = time.sleep,
        generation: Mapping[str, object] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.chat_model = chat_model
        self.spec = spec
        #: the settings that shape its answers (e.g. max_tokens), for ``fingerprint``
        self.generation = dict(generation or {})
        self.model_id = model_id
        self.supports_prefill = supports_prefill
        self.endpoint = endpoint
        self.cache = cache
        self.retry = retry or RetryPolicy()
        self.concurrency = concurrency
        self.price = price
        self._secrets = tuple(s for s in secrets if s)
        self._sleep = sleep
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self.totals = Usage()
        self.calls = 0
        self.cache_hits = 0

    def identity(self) -> dict[str, Any]:
        """Which model answers: spec, model id, runtime and endpoint (no secret: backends mask
        passwords in it), and the one line that says it, e.g. ``local (SmolLM2-135M-Instruct.Q4_1, llama-cpp)``."""
        runtime = self.chat_model._llm_type
        return {
            "spec": self.spec,
            "model_id": self.model_id,
            "runtime": runtime,
            "endpoint": self.endpoint,
            "description": f"{self.spec} ({self.model_id}, {runtime})",
        }

    def __repr__(self) -> str:
        return (
            f"PricingLLM(spec={self.spec!r}, model_id={self.model_id!r}, "
            f"supports_prefill={self.supports_prefill}, cache={self.cache!r})"
        )

    # -- the API ---------------------------------------------------------------------------

    def ask(self, messages: Sequence[BaseMessage]) -> LLMReply:
        """One completion for ``messages``; raises ``LLMError`` when the model cannot answer."""
        messages = self._prepare(messages)
        started = time.perf_counter()
        cache = self.cache
        key = self._cache_key(messages) if cache is not None else None
        if cache is not None and key is not None and (hit := cache.get(key)) is not None:
            with self._lock:
                self.cache_hits += 1
            usage = Usage(hit.prompt_tokens, hit.completion_tokens, 0.0, cached=True)
            return LLMReply(hit.text, usage, time.perf_counter() - started)
        text, usage = self._call_with_retries(messages)
        if cache is not None and key is not None:
            cache.put(key, CachedReply(text, usage.prompt_tokens, usage.completion_tokens, usage.cost_usd))
        return LLMReply(text, usage, time.perf_counter() - started)

    def ask_many(self, conversations: Sequence[Sequence[BaseMessage]]) -> list[LLMReply | LLMError]:
        """``ask`` for each conversation, ``concurrency`` at a time; the results keep the input
        order and a failed conversation yields its ``LLMError`` without stopping the others.
        Malformed input raises ``ValueError`` before any call is made."""
        prepared = [self._prepare(messages) for messages in conversations]
        if not prepared:
            return []

        deadline = _DEADLINE.get()

        def one(messages: list[BaseMessage]) -> LLMReply | LLMError:
            if deadline is not None and time.monotonic() >= deadline:
                return LLMError("timeout", "the request's deadline passed before this call started", attempts=0)
            try:
                return self.ask(messages)
            except LLMError as error:
                return error

        # Not LangChain's batch(config={"max_concurrency": n}): as fast without a deadline, but it
        # returns only when every call has ended, so a hung endpoint holds a service request past
        # its deadline (benchmarks/llm_batch.py: 8 calls of 1 s, concurrency 2, deadline 0.2 s:
        # batch 1.0 s, this 0.2 s); and its limit is per batch, where the semaphore bounds them all.
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(prepared)), thread_name_prefix="llm")
        futures = [pool.submit(one, messages) for messages in prepared]
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        wait(futures, timeout=timeout)
        # Past the deadline: queued calls are cancelled; calls in flight finish in the background.
        pool.shutdown(wait=False, cancel_futures=True)
        late = LLMError("timeout", "no answer within the request's deadline", attempts=0)
        return [f.result() if f.done() and not f.cancelled() else late for f in futures]

    # -- the parts -------------------------------------------------------------------------

    def _prepare(self, messages: Sequence[BaseMessage]) -> list[BaseMessage]:
        if isinstance(messages, (str, BaseMessage)) or not messages:
            raise ValueError("a conversation is a non-empty list of LangChain messages")
        if not all(isinstance(m, BaseMessage) for m in messages):
            raise ValueError("a conversation is a non-empty list of LangChain messages")
        messages = list(messages)
        if has_prefill(messages) and not self.supports_prefill:
            # Chat APIs answer a trailing assistant message with a new turn, not a continuation.
            messages = messages[:-1]
            if not messages:
                raise ValueError("a conversation needs a message before the assistant prefill")
        return messages

    def fingerprint(self) -> dict[str, object]:
        """What its answers depend on: spec, model, endpoint, runtime, generation parameters."""
        params = getattr(self.chat_model, "_identifying_params", {})
        return {
            "spec": self.spec,
            "model": self.model_id,
            "endpoint": self.endpoint,
            "runtime": type(self.chat_model).__name__,
            "params": dict(params) if isinstance(params, Mapping) else str(params),
            "generation": self.generation,
        }

    def _cache_key(self, messages: list[BaseMessage]) -> str:
        material = self.fingerprint()
        return ResponseCache.key(
            {key: material[key] for key in ("model", "endpoint", "runtime", "params")}
            | {"messages": [[m.type, text_of(m)] for m in messages]}
        )

    def _call_with_retries(self, messages: list[BaseMessage]) -> tuple[str, Usage]:
        attempt = 0
        while True:
            try:
                with self._slots:
                    message = self.chat_model.invoke(messages)
                return self._account(message)
            except Exception as exc:  # every backend failure becomes an LLMError or a retry
                failure = classify(exc)
                detail = self._redact(f"{type(exc).__name__}: {exc}")
                if failure.reason not in RETRYABLE or attempt >= self.retry.max_retries:
                    attempts = attempt + 1 + failure.sdk_retries
                    log.warning(
                        "LLM %s failed (%s) after %d attempt(s): %s", self.spec, failure.reason, attempts, detail
                    )
                    raise LLMError(failure.reason, detail, attempts=attempts) from None
                delay = self.retry.delay(attempt, failure.retry_after_s)
                log.info(
                    "LLM %s: %s, retry %d/%d in %.2f s",
                    self.spec,
                    failure.reason,
                    attempt + 1,
                    self.retry.max_retries,
                    delay,
                )
                attempt += 1
                self._sleep(delay)

    def _account(self, message: BaseMessage) -> tuple[str, Usage]:
        meta = getattr(message, "usage_metadata", None) or {}
        prompt_tokens = int(meta.get("input_tokens", 0))
        completion_tokens = int(meta.get("output_tokens", 0))
        cost = self.price.cost(prompt_tokens, completion_tokens) if self.price else 0.0
        usage = Usage(prompt_tokens, completion_tokens, cost, cached=False)
        with self._lock:
            self.calls += 1
            self.totals = self.totals + usage
        return text_of(message), usage

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
