"""Heavy objects shared by all strategies of one process, built on first use.

One ``Resources`` holds one embedding model, one store connection and one LLM per spec, so the
CLI, the HTTP service and the evaluation harness load each of them once however many
strategies they run.
"""

from __future__ import annotations

import threading
from pathlib import Path
from functools import cached_property
from typing import Any

from rag_pricer.embeddings import Embedder
from rag_pricer.query_cache import QueryCache
from rag_pricer.retrieval import Retriever
from rag_pricer.settings import Settings
from rag_pricer.store import ProductStore


class Resources:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._llms: dict[str, Any] = {}
        self._price_models: dict[str, Any] = {}
        self._lock = threading.Lock()

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

    def price_model(self, run_dir: Path, adapter: bool = True) -> Any:
        """The fine-tuned model of ``run_dir`` (or its base alone), loaded once per process:
        strategies that differ only in their decoding share it and its distributions."""
        from rag_pricer.finetune.price_model import PriceModel

        key = f"{Path(run_dir).resolve()}|adapter={adapter}"
        with self._lock:
            if key not in self._price_models:
                self._price_models[key] = PriceModel(run_dir, Path(self.settings.models_dir) / "base", adapter=adapter)
            return self._price_models[key]

    def llm(self, spec: str | None = None) -> Any:
        """The chat model named by ``spec`` (default: settings ``llm``), built once per spec."""
        from rag_pricer.llms import build_llm

        spec = spec or self.settings.llm
        with self._lock:
            if spec not in self._llms:
                self._llms[spec] = build_llm(spec, self.settings)
            return self._llms[spec]
