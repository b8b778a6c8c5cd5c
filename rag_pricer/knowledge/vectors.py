"""``VectorSource``: the vectors of texts, read from the store where it holds them, embedded
only where it does not.

The knowledge base already holds the vector of every stored product. Training on those
products (``boosting``, ``boosting-nn``) needs the same vectors again: reading them from the
store costs a look-up instead of a forward pass (16,442 train texts: minutes on 2 cores).
A stored vector is used only when it is the vector the embedder would make of that text:

- the store was built with the embedder's model and kind of vectors (``ProductStore`` refuses
  to open a collection that recorded another model or kind, and this class refuses a store
  configured for another one);
- the store holds the id, and its document is the same text. Stored documents are the items'
  descriptions as indexed; a query's text is that description stripped of surrounding
  whitespace (which the tokenizer ignores) and cut at ``Pricer.max_chars``, so a cut text, an
  edited product or a reused id is a miss and is embedded.

A store that cannot be read (missing, empty, another model) makes every text a miss: the
vectors are then exactly the embedder's, only slower.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from rag_pricer.knowledge.store import ProductStore, StoreError

log = logging.getLogger(__name__)


class TextEmbedder(Protocol):
    """What a ``VectorSource`` needs of an embedder (``Embedder`` and the tests' fakes)."""

    model_name: str

    def encode(self, texts: list[str]) -> np.ndarray: ...


@dataclass
class VectorCounts:
    """How many vectors came from the store and how many were embedded, since creation."""

    stored: int = 0
    embedded: int = 0


@dataclass
class VectorSource:
    """Vectors of texts by ``embedder``'s model; with ``store``, the stored ones by id."""

    embedder: Any  # an Embedder or any object with ``model_name`` and ``encode(texts)``
    store: ProductStore | None = None
    counts: VectorCounts = field(default_factory=VectorCounts)

    def __post_init__(self) -> None:
        if self.store is not None and self.store.model != self.embedder.model_name:
            raise ValueError(
                f"the store is configured for {self.store.model!r}, the embedder is {self.embedder.model_name!r}"
            )
        kind = getattr(self.embedder, "vectors", None)
        if self.store is not None and kind is not None and self.store.vectors != kind:
            raise ValueError(f"the store is configured for {self.store.vectors} vectors, the embedder makes {kind}")

    @property
    def model_name(self) -> str:
        return str(self.embedder.model_name)

    def encode(self, texts: Sequence[str], ids: Sequence[str | None] | None = None) -> np.ndarray:
        """One L2-normalised float32 vector per text: the stored vector of ``ids[i]`` where the
        store holds that id with the text ``texts[i]``, the embedder's otherwise."""
        texts = list(texts)
        if ids is not None and len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
        stored = self._stored(texts, ids) if ids is not None else {}
        missing = [i for i in range(len(texts)) if i not in stored]
        embedded = self.embedder.encode([texts[i] for i in missing]) if missing else None
        self.counts.stored += len(stored)
        self.counts.embedded += len(missing)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        dimension = next(iter(stored.values())).shape[0] if stored else embedded.shape[1]  # type: ignore[union-attr]
        out = np.empty((len(texts), dimension), dtype=np.float32)
        for i, vector in stored.items():
            out[i] = vector
        if embedded is not None:
            out[missing] = embedded
        return out

    def _stored(self, texts: list[str], ids: Sequence[str | None]) -> dict[int, np.ndarray]:
        """Position -> stored vector, for the positions whose id is stored with the same text."""
        if self.store is None:
            return {}
        wanted = {i: key for i, key in enumerate(ids) if key}
        if not wanted:
            return {}
        try:
            found = self.store.vectors_of(list(dict.fromkeys(wanted.values())))
        except StoreError as error:
            log.warning("stored vectors unavailable (%s): embedding every text", error)
            return {}
        hits = {}
        for i, key in wanted.items():
            hit = found.get(key)
            if hit is not None and hit[0].strip() == texts[i]:
                hits[i] = hit[1]
        return hits
