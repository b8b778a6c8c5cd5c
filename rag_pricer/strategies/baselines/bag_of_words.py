"""``bow``: the course's bag of words, word counts into a linear regression."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LinearRegression

from rag_pricer.query import Query
from rag_pricer.strategies.baselines.base import Baseline
from rag_pricer.strategies.baselines.storage import load_estimator, load_vocabulary, save_estimator, save_vocabulary


class BagOfWordsBaseline(Baseline):
    """Counts of the ``max_features`` most frequent non-stop words, ``LinearRegression`` on the
    price (the course: ``CountVectorizer(max_features=1000, stop_words="english")``)."""

    kind = "bow"

    def __init__(self, max_features: int = 1000) -> None:
        self.max_features = max_features

    def _vectorizer(self) -> CountVectorizer:
        return CountVectorizer(stop_words="english", max_features=self.max_features)

    def _fit(self, queries: list[Query], prices: np.ndarray) -> None:
        self.vectorizer_ = self._vectorizer()
        counts = self.vectorizer_.fit_transform([query.text for query in queries])
        self.regressor_ = LinearRegression().fit(counts, prices)

    def _predict(self, queries: list[Query]) -> np.ndarray:
        return self.regressor_.predict(self.vectorizer_.transform([query.text for query in queries]))

    def _save_state(self, directory: Path) -> None:
        save_vocabulary(self.vectorizer_, directory, "words")
        save_estimator(self.regressor_, directory / "regressor.skops")

    def _load_state(self, directory: Path) -> None:
        self.vectorizer_ = load_vocabulary(self._vectorizer(), directory, "words")
        self.regressor_ = load_estimator(directory / "regressor.skops")
