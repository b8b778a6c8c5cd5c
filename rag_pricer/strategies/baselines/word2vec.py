"""``word2vec-lr``, ``word2vec-svr``, ``word2vec-rf``: the course's regressors on word2vec
document vectors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.svm import LinearSVR

from rag_pricer.query import Query
from rag_pricer.strategies.baselines.base import Baseline
from rag_pricer.strategies.baselines.storage import load_estimator, save_estimator
from rag_pricer.strategies.baselines.word_vectors import Word2VecVectorizer

Regressor = Literal["lr", "svr", "rf"]
REGRESSORS = ("lr", "svr", "rf")
# A forest's trees are the one scikit-learn type that skops does not trust by default; only the
# forest's loader accepts them.
TRUSTED_TYPES = {"rf": ("sklearn.tree._tree.Tree",)}


class Word2VecBaseline(Baseline):
    """A regressor of the price on ``Word2VecVectorizer`` document vectors.

    ``regressor``: ``lr`` (``LinearRegression``), ``svr`` (``LinearSVR``) or ``rf``
    (``RandomForestRegressor`` of ``n_estimators`` trees, leaves of at least
    ``min_samples_leaf`` items and ``max_features`` of the dimensions per split: fully grown
    trees on every dimension take minutes and a hundred MB on 16k items, for little gain).

    ``vectorizer``: a fitted ``Word2VecVectorizer`` to share between baselines (it is reused as
    is); unfitted or ``None``, ``fit`` trains a new one with its parameters (default ones
    seeded with ``seed``).
    """

    kind = "word2vec"
    runtime_params = ("vectorizer",)

    def __init__(
        self,
        regressor: Regressor = "lr",
        vectorizer: Word2VecVectorizer | None = None,
        n_estimators: int = 100,
        min_samples_leaf: int = 5,
        max_features: float = 0.33,
        n_jobs: int = 1,
        seed: int = 42,
    ) -> None:
        self.regressor = regressor
        self.vectorizer = vectorizer
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.n_jobs = n_jobs
        self.seed = seed

    def _make_regressor(self) -> Any:
        if self.regressor == "lr":
            return LinearRegression()
        if self.regressor == "svr":
            return LinearSVR(random_state=self.seed, max_iter=10_000)
        if self.regressor == "rf":
            return RandomForestRegressor(
                n_estimators=self.n_estimators,
                min_samples_leaf=self.min_samples_leaf,
                max_features=self.max_features,
                random_state=self.seed,
                n_jobs=self.n_jobs,
            )
        raise ValueError(f"unknown regressor {self.regressor!r}; choose from {', '.join(REGRESSORS)}")

    def _fit(self, queries: list[Query], prices: np.ndarray) -> None:
        regressor = self._make_regressor()
        texts = [query.text for query in queries]
        vectorizer = self.vectorizer or Word2VecVectorizer(seed=self.seed)
        if not vectorizer.is_fitted:
            vectorizer = Word2VecVectorizer(**vectorizer.params()).fit(texts)
        self.vectorizer_ = vectorizer
        self.regressor_ = regressor.fit(vectorizer.transform(texts), prices)

    def _predict(self, queries: list[Query]) -> np.ndarray:
        return self.regressor_.predict(self.vectorizer_.transform([query.text for query in queries]))

    def _save_state(self, directory: Path) -> None:
        self.vectorizer_.save(directory)
        save_estimator(self.regressor_, directory / "regressor.skops")

    def _load_state(self, directory: Path) -> None:
        self.vectorizer_ = Word2VecVectorizer.load(directory)
        self.regressor_ = load_estimator(directory / "regressor.skops", trusted=TRUSTED_TYPES.get(self.regressor, ()))
