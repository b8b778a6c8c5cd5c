"""A bounded cache of query embeddings: a description priced again is not embedded again."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence

import numpy as np
from cachetools import LRUCache


class QueryCache:
    """Least-recently-used query vectors, at most ``maxsize`` of them (~1.5 KB each for 384
    dimensions, plus the text), keyed by the exact text and the embedder's settings key.

    One instance may serve several embedders and threads: the key keeps vectors of different
    models or backends apart, and a lock guards the LRU order. Stored vectors are read-only and
    every call returns new arrays, so a caller cannot alter what the next one gets.
    """

    def __init__(self, maxsize: int = 1024) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, not {maxsize}")
        self._vectors: LRUCache[tuple[Hashable, str], np.ndarray] = LRUCache(maxsize)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def maxsize(self) -> int:
        return int(self._vectors.maxsize)

    def __len__(self) -> int:
        return len(self._vectors)

    def encode(self, settings: Hashable, texts: Sequence[str], encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """The vectors of ``texts``: cached ones as stored, the others from one ``encode`` call."""
        if not texts:
            return encode([])
        keys = [(settings, text) for text in texts]
        with self._lock:
            found = [self._vectors.get(key) for key in keys]
        missing = sorted({text for text, vector in zip(texts, found) if vector is None})
        if missing:
            computed = dict(zip(missing, encode(missing)))
            with self._lock:
                for text, vector in computed.items():
                    vector = np.array(vector, dtype=np.float32)
                    vector.setflags(write=False)
                    self._vectors[(settings, text)] = vector
            found = [computed[text] if vector is None else vector for text, vector in zip(texts, found)]
        with self._lock:
            self.misses += len(missing)
            self.hits += len(texts) - len(missing)
        return np.array(found, dtype=np.float32).reshape(len(texts), -1)
