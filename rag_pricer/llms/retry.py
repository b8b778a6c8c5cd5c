"""How long to wait before retrying a failed LLM call, for the chat models that do not retry by
themselves (the local runtimes, the fake); the OpenAI backends use the openai client's retries.

Not LangChain's ``with_retry``: it would wrap the chat model in a Runnable (``PricingLLM`` reads
the model's parameters for its cache key), sleep inside the caller's concurrency slot, and not
say how many attempts were made; tests inject the sleep here instead of waiting."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter.

    Attempt ``n`` (0-based) waits a uniform random time in ``[0, min(max_delay_s, base_delay_s *
    2**n)]``: jitter spreads the retries of concurrent calls so that they do not hit a rate
    limit again all at once. A server's ``Retry-After`` wins when it asks for longer, up to
    ``max_delay_s``. ``seed`` makes the delays reproducible.
    """

    max_retries: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("retry counts and delays must be >= 0")
        self._rng = random.Random(self.seed)

    def delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to sleep after failed attempt ``attempt`` (0 for the first failure)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2**attempt)
        wait = self._rng.uniform(0.0, ceiling)
        if retry_after_s is not None:
            wait = max(wait, min(retry_after_s, self.max_delay_s))
        return wait
