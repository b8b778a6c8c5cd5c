"""Heavy objects shared by all strategies of one process, built on first use.

One ``Resources`` holds one embedding model, one store connection and one LLM per spec, so the
CLI, the HTTP service and the evaluation harness load each of them once however many
strategies they run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar, cast

from rag_pricer.knowledge.embeddings import Embedder
from rag_pricer.knowledge.query_cache import QueryCache
from rag_pricer.knowledge.retrieval import Retriever
from rag_pricer.knowledge.store import ProductStore
from rag_pricer.settings import Settings

if TYPE_CHECKING:
    from rag_pricer.llms.client import PricingLLM

T = TypeVar("T")


class Resources:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._shared: dict[Hashable, Any] = {}
        self._lock = threading.RLock()  # reentrant: a build may itself ask for a shared object

    @cached_property
    def embedder(self) -> Embedder:
        size = self.settings.embedding_cache_size
        return Embedder(
            self.settings.embedding_model,
            batch_size=self.settings.embedding_batch_size,
            backend=self.settings.embedding_backend,
            threads=self.settings.embedding_threads,
            query_cache=QueryCache(size) if size else None,
        )

    @cached_property
    def store(self) -> ProductStore:
        return ProductStore.from_settings(self.settings)

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.embedder, self.store)

    def shared(self, key: Hashable, build: Callable[[], T]) -> T:
        """The object stored under ``key``, built by ``build`` on first use and kept for the
        process: strategies that load the same heavy model (e.g. one fine-tuned run decoded two
        ways) share it. The strategy owns what it builds; this cache only keeps it."""
        with self._lock:
            if key not in self._shared:
                self._shared[key] = build()
            return cast(T, self._shared[key])

    def llm(self, spec: str | None = None) -> PricingLLM:
        """The chat model named by ``spec`` (default: settings ``llm``), built once per spec."""
        from rag_pricer.llms import build_llm

        name = spec or self.settings.llm
        return self.shared(("llm", name), lambda: build_llm(name, self.settings))
