"""``Word2VecVectorizer``: documents as the mean of their gensim word2vec word vectors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
from gensim.models import KeyedVectors, Word2Vec
from gensim.utils import simple_preprocess

from rag_pricer.strategies.baselines.storage import ModelFormatError, read_json, write_json


class Word2VecVectorizer:
    """Trains word2vec (CBOW) on the training descriptions; a document becomes the mean vector
    of its known words (zeros when it has none), tokenised with gensim's ``simple_preprocess``
    as in the course.

    The course used 400 dimensions; 200 keeps most of the signal and trains in seconds on 16k
    items. ``workers=1`` makes training reproducible for a given ``seed`` (gensim's threads
    otherwise race on the shared weights).
    """

    def __init__(
        self,
        vector_size: int = 200,
        window: int = 5,
        min_count: int = 2,
        epochs: int = 5,
        seed: int = 42,
        workers: int = 1,
    ) -> None:
        self.vector_size = vector_size
        self.window = window
        self.min_count = min_count
        self.epochs = epochs
        self.seed = seed
        self.workers = workers

    def params(self) -> dict[str, Any]:
        return {
            "vector_size": self.vector_size,
            "window": self.window,
            "min_count": self.min_count,
            "epochs": self.epochs,
            "seed": self.seed,
            "workers": self.workers,
        }

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "vectors_")

    def fit(self, texts: Sequence[str]) -> Self:
        sentences = [simple_preprocess(text) for text in texts]
        model = Word2Vec(
            sentences,
            vector_size=self.vector_size,
            window=self.window,
            min_count=self.min_count,
            epochs=self.epochs,
            seed=self.seed,
            workers=self.workers,
        )
        self.vectors_: KeyedVectors = model.wv
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        if not self.is_fitted:
            raise RuntimeError("this Word2VecVectorizer is not fitted")
        index = self.vectors_.key_to_index
        matrix = np.zeros((len(texts), self.vectors_.vector_size))
        for row, text in enumerate(texts):
            known = [index[word] for word in simple_preprocess(text) if word in index]
            if known:
                matrix[row] = self.vectors_.vectors[known].mean(axis=0)
        return matrix

    def save(self, directory: Path, name: str = "word2vec") -> None:
        """``name.json`` (parameters) and ``name.bin`` (word2vec's own binary format, no pickle)."""
        write_json(directory / f"{name}.json", self.params())
        self.vectors_.save_word2vec_format(str(directory / f"{name}.bin"), binary=True)

    @classmethod
    def load(cls, directory: Path, name: str = "word2vec") -> Word2VecVectorizer:
        vectorizer = cls(**read_json(directory / f"{name}.json"))
        vectors = KeyedVectors.load_word2vec_format(str(directory / f"{name}.bin"), binary=True)
        if vectors.vector_size != vectorizer.vector_size:
            raise ModelFormatError(
                f"{directory / name}.bin has {vectors.vector_size} dimensions, expected {vectorizer.vector_size}"
            )
        vectorizer.vectors_ = vectors
        return vectorizer
