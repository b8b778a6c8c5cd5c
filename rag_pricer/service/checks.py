"""``GET /v1/strategies?check=true``: one shared, cached check of the strategies' LLMs.

Each ``check=true`` used to build a fresh LLM, and so start a fresh local runtime process: eight
concurrent calls made nine processes (2.97 GB) for ~20 s each. Here a check asks the server's own
LLMs (``Resources.llm``: one runtime per spec, the one estimates use), one check runs at a time,
every caller meanwhile waits for that one, and its result is kept ``ttl_s`` seconds: however many
clients ask, the server asks each LLM at most once per ``ttl_s``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool

from rag_pricer.api import Estimator
from rag_pricer.pricing.readiness import Readiness, StrategyReadiness

#: how long a check's result is served before the LLMs are asked again
CHECK_TTL_S = 60.0


class StrategyChecks:
    """The strategies' readiness with their LLMs asked (``check=True``), shared and cached.

    ``states()`` returns the cached result while it is younger than ``ttl_s``; otherwise it
    starts one check in a worker thread, unless one is running already, and waits at most
    ``wait_s`` for it. A check that outlives the wait keeps running (Python cannot stop a
    thread) and the callers get ``None``: the listing without the check.
    """

    def __init__(
        self,
        estimator: Estimator,
        ttl_s: float = CHECK_TTL_S,
        wait_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.estimator = estimator
        self.ttl_s = ttl_s
        self.wait_s = wait_s if wait_s is not None else estimator.settings.llm_timeout_s + 5.0
        self.clock = clock
        #: checks run since start-up (each asked every LLM once)
        self.runs = 0
        self._result: list[StrategyReadiness] | None = None
        self._checked_at = 0.0
        self._running: asyncio.Future[list[StrategyReadiness]] | None = None

    async def states(self) -> list[StrategyReadiness] | None:
        """Every strategy's readiness with its LLM asked, or ``None`` when no check finished in time."""
        if self._result is not None and self.clock() - self._checked_at < self.ttl_s:
            return self._result
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(run_in_threadpool(self._check))
            self._running.add_done_callback(self._keep)
        try:
            return await asyncio.wait_for(asyncio.shield(self._running), self.wait_s)
        except TimeoutError:
            return None

    def _check(self) -> list[StrategyReadiness]:
        self.runs += 1
        # The server's own LLMs: no new runtime process, the same one its estimates use.
        readiness = Readiness(self.estimator.settings, check=True, llm_factory=self.estimator.resources.llm)
        return readiness.all()

    def _keep(self, future: asyncio.Future[list[StrategyReadiness]]) -> None:
        if not future.cancelled() and future.exception() is None:
            self._result, self._checked_at = future.result(), self.clock()
