"""What a pricing LLM call returns (``LLMReply``) or raises (``LLMError``)."""

from __future__ import annotations

from dataclasses import dataclass

from rag_pricer.llms.usage import Usage

#: reasons an ``LLMError`` can carry; the retryable ones are retried before the error is raised
REASONS = {
    "timeout": "the call took longer than the timeout",
    "rate_limit": "the endpoint refused the call because of its rate limit (HTTP 429)",
    "server_error": "the endpoint failed (HTTP 5xx)",
    "connection": "the endpoint could not be reached",
    "auth": "the API key was refused (HTTP 401/403)",
    "not_found": "the endpoint or the model does not exist (HTTP 404)",
    "bad_request": "the request was refused (HTTP 400/422, prompt longer than the context window)",
    "crashed": "the local model's runtime process died (a native crash); the next call restarts it",
    "error": "any other failure of the model",
}
RETRYABLE = frozenset({"timeout", "rate_limit", "server_error", "connection"})


@dataclass
class LLMReply:
    """One completion. ``text`` holds only what the model generated: with an assistant prefill
    (a final ``AIMessage`` such as ``"Price is $"``) it is the continuation, without the prefill."""

    text: str
    usage: Usage
    latency_s: float


class LLMError(RuntimeError):
    """An LLM call that failed for good: retries exhausted, or an error that retrying cannot fix.

    ``reason`` is one of ``REASONS``; ``attempts`` counts the calls made. The message never holds
    the API key (``PricingLLM`` redacts it).
    """

    def __init__(self, reason: str, message: str, attempts: int = 1) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown LLM error reason {reason!r}; choose from {sorted(REASONS)}")
        super().__init__(f"{reason}: {message}" + (f" (after {attempts} attempts)" if attempts > 1 else ""))
        self.reason = reason
        self.attempts = attempts

    @property
    def retryable(self) -> bool:
        return self.reason in RETRYABLE
