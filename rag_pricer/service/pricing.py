"""Pricing for the HTTP service: off the event loop, under a deadline, degrading to ``knn``."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Literal

from rag_pricer.api import Estimator
from rag_pricer.items import Item
from rag_pricer.knowledge.store import StoredProduct, StoreError
from rag_pricer.knowledge.writer import KnowledgeWriter
from rag_pricer.llms.client import llm_deadline
from rag_pricer.pricing.pricer import UnusablePrice
from rag_pricer.pricing.readiness import Readiness, StrategyNotReady, StrategyReadiness
from rag_pricer.pricing.registry import (
    InvalidOptions,
    OptionInfo,
    Strategy,
    StrategyOptions,
    UnknownStrategy,
    registry,
)
from rag_pricer.pricing.values import Estimate
from rag_pricer.query import InvalidQuery
from rag_pricer.redaction import Redactor, llm_name
from rag_pricer.service.fairness import CharacterGate, batch_chars, cut
from rag_pricer.service.schemas import EstimateRequest, EstimateResponse, ProductsWritten

log = logging.getLogger("rag_pricer.service")

#: the part of a request's deadline its LLM calls may use; the rest builds the answers
LLM_SHARE_OF_DEADLINE = 0.8
WARM_UP_TEXT = "Stainless steel chef's knife, 8 inch, full tang"
#: strategy options that name the server's own files: the operator's settings, never a request's
SERVER_ONLY_OPTIONS = frozenset({"run"})


class NotReady(RuntimeError):
    """The models and store are still loading, or failed to load (answered with 503)."""


class PricingUnavailable(RuntimeError):
    """Neither the requested strategy nor the fallback could price (answered with 503)."""


class BatchUnknownStrategy(UnknownStrategy):
    """An unknown strategy in item ``index`` of a batch."""

    def __init__(self, index: int, error: UnknownStrategy) -> None:
        super().__init__(str(error.args[0]), [])
        self.message = f"items[{index}]: {error.message}"


class PricingService:
    """Runs ``Estimator`` calls in thread pools with a per-request deadline.

    The estimator is synchronous (torch, Chroma, blocking LLM clients), so each call runs in a
    worker thread and the event loop keeps serving other requests. Strategies that need an LLM
    get their own pool: a hung LLM then cannot starve the local strategies, and in particular
    not the ``fallback`` strategy that answers for it. When a strategy errors, overruns the
    deadline or returns an unusable price, the request is priced by ``fallback`` with
    ``Estimate.fallback`` saying why, instead of failing. (A thread that overran is not killed,
    Python cannot do that, but its result is dropped; the LLM client's own timeout ends it.)

    Call ``start()`` inside the running event loop (the app's lifespan) and ``stop()`` at exit.
    """

    def __init__(
        self,
        estimator: Estimator,
        deadline_s: float,
        default_strategy: str | None = None,
        fallback: str = "knn",
        secrets: Sequence[str] = (),
        offered_llms: Sequence[str] = (),
        redactor: Redactor | None = None,
        llm_workers: int = 32,
        local_workers: int = 4,
        batch_workers: int = 1,
        ready_wait_s: float = 30.0,
        retry_s: float = 5.0,
    ) -> None:
        self.estimator = estimator
        self.extra_llms = list(offered_llms)
        self.deadline_s = deadline_s
        self.default_strategy = default_strategy or estimator.settings.strategy
        self.fallback = fallback
        self.secrets = [s for s in secrets if s]
        #: what logs and clients may see of the settings (credentials hidden; for clients, paths too)
        self.redactor = redactor or Redactor.from_settings(estimator.settings, extra=self.secrets)
        self.llm_workers = llm_workers
        self.local_workers = local_workers
        self.batch_workers = batch_workers
        #: batches are admitted by the characters they hold (issue 24: large batches starved small requests)
        self.batch_gate = CharacterGate(max_batches=batch_workers)
        self.ready_wait_s = ready_wait_s
        self.retry_s = retry_s
        self._failed_at = 0.0
        self.status: Literal["starting", "ready", "failed"] = "starting"
        self.detail: str | None = "loading the embedding model and the knowledge base"
        self.store_items: int | None = None
        self._ready: asyncio.Event | None = None
        self._warm_task: asyncio.Task[None] | None = None
        self._llm_pool: ThreadPoolExecutor | None = None
        self._local_pool: ThreadPoolExecutor | None = None
        self._batch_pool: ThreadPoolExecutor | None = None

    # lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Create the pools and load models and store in the background (see ``status``)."""
        self._llm_pool = ThreadPoolExecutor(self.llm_workers, thread_name_prefix="pricing-llm")
        self._local_pool = ThreadPoolExecutor(self.local_workers, thread_name_prefix="pricing")
        self._batch_pool = ThreadPoolExecutor(self.batch_workers, thread_name_prefix="pricing-batch")
        self._ready = asyncio.Event()
        self._warm_task = asyncio.create_task(self._warm())

    async def stop(self) -> None:
        if self._warm_task is not None and not self._warm_task.done():
            self._warm_task.cancel()
        for pool in (self._llm_pool, self._local_pool, self._batch_pool):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    async def _warm(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self.store_items = await loop.run_in_executor(self._local_pool, self._load)
        except Exception as error:  # any failure leaves the service up but not ready, with the reason
            self._fail("start-up", error)
            self._ready.set()  # type: ignore[union-attr]
            return
        if self.default_strategy != self.fallback:
            # Build the default strategy's pricer now (it may load a local LLM). A failure here
            # is not fatal: its requests will fall back to ``fallback``.
            try:
                spec = registry.get(self.default_strategy)
                await loop.run_in_executor(self._pool(spec), self.estimator.pricer, spec.name)
            except Exception as error:
                log.warning(
                    "could not prepare the default strategy %r: %s: %s",
                    self.default_strategy,
                    type(error).__name__,
                    self.redact(str(error)),
                )
        self.status, self.detail = "ready", None
        self._ready.set()  # type: ignore[union-attr]
        log.info("ready: %s products, default strategy %s", self.store_items, self.default_strategy)

    def _load(self) -> int:
        """Load the embedding model and the store, and run one query so the first request is fast."""
        resources = self.estimator.resources
        count = resources.store.count()
        if count == 0:
            raise StoreError(f"the store at {resources.store.location} is empty: index some items first")
        self.estimator.estimate(WARM_UP_TEXT, self.fallback)
        return count

    def _fail(self, stage: str, error: BaseException) -> None:
        """Not ready, with a reason fit for anonymous callers (no store path, no secret); the
        log has the whole message. A failed start is tried again after ``retry_s``."""
        self.status, self._failed_at = "failed", time.monotonic()
        self.detail = (
            self._public(str(error)) if isinstance(error, StoreError) else f"{stage} failed ({type(error).__name__})"
        )
        log.error("%s failed: %s: %s", stage, type(error).__name__, self.redact(str(error)))

    def _public(self, text: str) -> str:
        store = self.estimator.resources.store
        for shown in {store.location, str(store.path), str(store.path.resolve()) if store.path else ""} - {"", "None"}:
            text = text.replace(shown, "<store path>")
        return text

    def _retry_if_due(self) -> None:
        """Start loading again when the last attempt failed more than ``retry_s`` ago (the
        store may have been built or restored since)."""
        if self.status != "failed" or time.monotonic() - self._failed_at < self.retry_s:
            return
        if self._warm_task is not None and not self._warm_task.done():
            return
        self.status, self.detail = "starting", "loading again after a failure"
        self.estimator.resources.store.close()  # reopen: the old client may hold deleted files
        self._ready = asyncio.Event()
        self._warm_task = asyncio.create_task(self._warm())

    async def refresh(self) -> None:
        """Check that a ready service still has its store (``/readyz``), or retry a failed start."""
        if self.status == "ready":
            loop = asyncio.get_running_loop()
            try:
                check = loop.run_in_executor(self._local_pool, self.estimator.resources.store.check)
                self.store_items = await asyncio.wait_for(check, 5.0)
            except Exception as error:  # deleted folder, broken files, a hung server: not ready
                self._fail("the store check", error)
        self._retry_if_due()

    async def wait_ready(self) -> None:
        """Return once ready; raise ``NotReady`` if loading failed or takes too long."""
        self._retry_if_due()
        if self.status == "starting" and self._ready is not None:
            try:
                await asyncio.wait_for(self._ready.wait(), self.ready_wait_s)
            except TimeoutError:
                raise NotReady("the service is still loading its models; retry shortly") from None
        if self.status != "ready":
            raise NotReady(self.detail or "the service is not ready")

    # pricing ---------------------------------------------------------------------------------

    def resolve(self, strategy: str | None) -> Strategy:
        """The registered strategy named ``strategy`` (default: the server's); ``UnknownStrategy`` otherwise."""
        return registry.get(strategy or self.default_strategy)

    async def estimate(self, request: EstimateRequest) -> EstimateResponse:
        return (await self.estimate_batch([request]))[0]

    async def estimate_batch(self, requests: Sequence[EstimateRequest]) -> list[EstimateResponse]:
        """Price ``requests`` in order. Requests sharing strategy and options are priced in one
        ``estimate_many`` call (one embedding pass); the groups run concurrently."""
        specs: list[Strategy] = []
        chosen: list[StrategyOptions] = []
        for index, request in enumerate(requests):
            try:
                spec = self.resolve(request.strategy)
            except UnknownStrategy as error:
                raise (BatchUnknownStrategy(index, error) if len(requests) > 1 else error) from None
            try:  # an option the strategy does not have is the client's error (422), not a failure to fall back from
                chosen.append(self.options(spec, request))
            except InvalidOptions as error:
                raise (InvalidOptions(f"items[{index}]: {error}") if len(requests) > 1 else error) from None
            specs.append(spec)
        await self.wait_ready()
        self.require_ready(
            {(s.name, getattr(o, "llm", None) if "llm" in s.needs else None) for s, o in zip(specs, chosen)}
        )
        groups: dict[tuple[str, str], list[int]] = {}
        for index, (spec, options) in enumerate(zip(specs, chosen)):
            groups.setdefault((spec.name, options.model_dump_json()), []).append(index)
        # No request holds more work than the pricer reads: descriptions cut now, not after
        # parsing, embedding or prompting 20,000 characters each.
        max_chars = self.estimator.settings.max_description_chars
        descriptions = [cut(request.description, max_chars) for request in requests]
        batch = len(requests) > 1

        async def price_groups() -> list[list[EstimateResponse]]:
            return await asyncio.gather(
                *(
                    self._price_group(
                        specs[indices[0]], [descriptions[i] for i in indices], chosen[indices[0]].model_dump(), batch
                    )
                    for indices in groups.values()
                )
            )

        if batch and any("llm" not in spec.needs for spec in specs):  # local work: through the batch gate
            priced = await self._admitted(batch_chars(descriptions, max_chars), price_groups)
        else:
            priced = await price_groups()
        results: list[EstimateResponse | None] = [None] * len(requests)
        for indices, responses in zip(groups.values(), priced):
            for index, response in zip(indices, responses):
                results[index] = response
        return results  # type: ignore[return-value]

    async def _admitted(
        self, chars: int, price: Callable[[], Awaitable[list[list[EstimateResponse]]]]
    ) -> list[list[EstimateResponse]]:
        """``price()`` once the batch gate admits ``chars`` characters; ``NotReady`` (503, retry)
        when other batches hold it for longer than ``ready_wait_s``."""
        try:
            held = await asyncio.wait_for(self.batch_gate.acquire(chars), self.ready_wait_s)
        except TimeoutError:
            raise NotReady("too many large batches are being priced; retry shortly") from None
        try:
            return await price()
        finally:
            await self.batch_gate.release(held)

    def options(self, spec: Strategy, request: EstimateRequest) -> StrategyOptions:
        """The request's options for ``spec``, validated once by the strategy's own model (with
        the server's ``k`` when none is given): ``options`` plus the top-level ``k``, ``category``
        and ``llm``. ``InvalidOptions`` (422) for an option the strategy lacks, a bad value, one
        given twice, one that only the operator may set, or an LLM the server does not offer."""
        given = dict(request.options or {})
        refused = sorted(set(given) & SERVER_ONLY_OPTIONS)
        if refused:
            raise InvalidOptions(f"{spec.name}: option {refused[0]!r} is the server's setting, not a request's")
        for name in ("k", "category", "llm"):
            value = getattr(request, name)
            if value is None:
                continue
            if name in given:
                raise InvalidOptions(f"{spec.name}: option {name!r} is given twice (at the top level and in options)")
            # The top-level ``llm`` names the backend of the LLM strategies; other strategies
            # ignore it (a form may send it whatever the strategy), once checked as offered.
            if name == "llm" and not spec.accepts("llm"):
                self.llm_spec(value)
            else:
                given[name] = value
        if "llm" in given:
            backend = given["llm"]
            if not isinstance(backend, str):
                raise InvalidOptions(f"{spec.name}: option 'llm' is a backend name (see GET /v1/llms)")
            given["llm"] = self.llm_spec(backend)
        return self.estimator.options(spec.name, given)

    def request_options(self, spec: Strategy) -> list[OptionInfo]:
        """The options a request may give ``spec``: its declared ones but those of the operator."""
        return [option for option in spec.option_info() if option.name not in SERVER_ONLY_OPTIONS]

    def require_ready(self, wanted: set[tuple[str, str | None]]) -> None:
        """Raise ``StrategyNotReady`` (409, with what to run, no server path) for a strategy and
        LLM spec that cannot price here: untrained models, no usable LLM, a missing extra. Looked
        at afresh on each request (a model trained meanwhile is used at once); LLMs are not called."""
        settings = self.estimator.settings
        readiness = Readiness(settings, llm_factory=self.estimator.resources.llm)
        for name, llm in sorted(wanted, key=str):
            state = readiness.of(name, llm)
            if not state.ready:
                raise StrategyNotReady(self.public_state(state))

    def public_state(self, state: StrategyReadiness) -> StrategyReadiness:
        """``state`` as a client may see it: the server's folders by their setting's name, its LLM
        by the backend's name only (as ``/v1/llms``), no credential and no other local path."""
        state = state.anonymised(self.estimator.settings)
        name = llm_name(state.llm)

        def public(text: str | None) -> str | None:
            if text and state.llm and name:
                text = text.replace(state.llm, name)
            return self.redactor.public(text)

        return replace(state, detail=public(state.detail), hint=public(state.hint), llm=name)

    def offered_llms(self) -> list[str]:
        """The backends a client may name in ``llm``: the server's own, then ``service_llms``.
        Nothing else, so that no client makes the server spend its API key on a backend its
        operator did not offer."""
        own = self.estimator.settings.llm.partition(":")[0].strip()
        return list(dict.fromkeys([own, *self.extra_llms]))

    def llm_spec(self, backend: str | None) -> str | None:
        """The LLM spec for a request naming ``backend``: the server's own spec when it is the
        server's backend (its model, file or endpoint), the backend's defaults otherwise;
        ``InvalidOptions`` (422) for a backend the server does not offer."""
        offered = self.offered_llms()
        if backend is None or backend == offered[0]:
            return None  # the strategy's default: the server's spec
        if backend not in offered:
            raise InvalidOptions(f"llm {backend!r} is not offered by this server; it offers: {', '.join(offered)}")
        return backend

    async def product(self, product_id: str) -> StoredProduct | None:
        """The stored product ``product_id`` (``None``: no such id); ``PricingUnavailable`` when
        the store cannot be read."""
        await self.wait_ready()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._local_pool, self.estimator.resources.store.product, product_id)
        except StoreError as error:
            log.warning("product lookup failed: %s", self.redact(str(error)))
            raise PricingUnavailable("the knowledge base is unavailable") from None

    async def write(self, items: Sequence[Item], delete: Sequence[str]) -> ProductsWritten:
        """Store ``items`` (already validated) and delete the ids ``delete`` through this
        process's own store connection, so that the next estimate retrieves what was written;
        ``PricingUnavailable`` (503) when the store cannot be written (disk full, server gone)."""
        await self.wait_ready()
        loop = asyncio.get_running_loop()
        try:
            written = await loop.run_in_executor(self._local_pool, self._write, list(items), list(delete))
        except StoreError as error:
            log.warning("a product write failed: %s", self.redact(str(error)))
            raise PricingUnavailable(f"the knowledge base cannot be written: {self._public(str(error))}") from None
        self.store_items = written.store_items
        return written

    def _write(self, items: list[Item], delete: list[str]) -> ProductsWritten:
        resources = self.estimator.resources
        writer = KnowledgeWriter(resources.store, resources.embedder)
        upserted = writer.upsert(items)
        deleted = writer.delete(delete)
        missing = [i for i in delete if i not in set(deleted)]
        log.info("products written: %d stored, %d deleted", len(upserted), len(deleted))
        return ProductsWritten(upserted=upserted, deleted=deleted, missing=missing, store_items=resources.store.count())

    async def _price_group(
        self, spec: Strategy, descriptions: list[str], options: dict[str, object], batch: bool = False
    ) -> list[EstimateResponse]:
        started = time.perf_counter()
        estimates, problem = await self._attempt(spec, descriptions, options, batch)
        if problem is not None:
            if spec.name == self.fallback:
                raise PricingUnavailable(problem)
            fallback = registry.get(self.fallback)
            # The options the fallback shares with the strategy (k, category, filters), no others.
            shared = {k: v for k, v in options.items() if fallback.accepts(k)}
            estimates, fallback_problem = await self._attempt(fallback, descriptions, shared, batch)
            if fallback_problem is not None:
                raise PricingUnavailable(f"{problem}; the {self.fallback} fallback failed too: {fallback_problem}")
            for estimate in estimates:  # type: ignore[union-attr]
                estimate.fallback = f"{problem}: {self.fallback} price used"
        per_item = (time.perf_counter() - started) / len(descriptions)
        responses = [EstimateResponse.of(e, spec.name, per_item) for e in estimates]  # type: ignore[union-attr]
        fallbacks = sum(r.fallback for r in responses)
        log.debug(
            "priced %d with %s in %.1f ms each%s",
            len(responses),
            spec.name,
            per_item * 1000,
            f" ({fallbacks} fallback)" if fallbacks else "",
        )
        return responses

    async def _attempt(
        self, spec: Strategy, descriptions: list[str], options: dict[str, object], batch: bool = False
    ) -> tuple[list[Estimate] | None, str | None]:
        """Estimates, or the reason there are none (never the exception's text: it may hold
        endpoint addresses or keys; that goes to the log, redacted)."""
        deadline = self.deadline_s
        # run in the request's context: the worker's log lines carry its request id
        context = contextvars.copy_context()
        call = functools.partial(context.run, self._estimate_within, deadline, descriptions, spec.name, **options)
        try:
            future = asyncio.get_running_loop().run_in_executor(self._pool(spec, batch), call)
            estimates = await asyncio.wait_for(future, deadline)
        except InvalidQuery:
            raise
        except UnusablePrice:
            log.warning("%s returned an unusable price", spec.name)
            return None, f"{spec.name} returned an unusable price"
        except TimeoutError:
            log.warning("%s did not answer within %.1f s", spec.name, deadline)
            return None, f"{spec.name} did not answer within {deadline:g} s"
        except Exception as error:
            log.warning("%s failed: %s: %s", spec.name, type(error).__name__, self.redact(str(error)))
            if isinstance(error, StoreError):
                return None, "the knowledge base is unavailable"
            return None, f"{spec.name} failed ({type(error).__name__})"
        if len(estimates) != len(descriptions) or not all(_usable(e.price) for e in estimates):
            log.warning("%s returned an unusable price", spec.name)
            return None, f"{spec.name} returned an unusable price"
        return estimates, None

    def _pool(self, spec: Strategy, batch: bool = False) -> ThreadPoolExecutor:
        """LLM strategies wait on their LLM in their own pool; local batches compute in theirs,
        so that single requests keep the shared local workers."""
        pool = self._llm_pool if "llm" in spec.needs else self._batch_pool if batch else self._local_pool
        if pool is None:
            raise RuntimeError("PricingService.start() was not called")
        return pool

    def _estimate_within(
        self, deadline_s: float, descriptions: list[str], strategy: str, **options: object
    ) -> list[Estimate]:
        """``estimate_many`` whose LLM calls end a little before the request's deadline,
        whatever the batch size: unanswered items then get the strategy's own knn price (with
        the fallback flag) instead of the whole batch waiting one deadline per wave of calls."""
        with llm_deadline(deadline_s * LLM_SHARE_OF_DEADLINE):
            return self.estimator.estimate_many(descriptions, strategy, **options)

    def redact(self, text: str) -> str:
        """``text`` with every configured secret (and its Base64 form, and any URL credential) as ``***``."""
        return self.redactor.credentials(text)


def _usable(price: object) -> bool:
    return isinstance(price, (int, float)) and not isinstance(price, bool) and math.isfinite(price) and price > 0
