"""``tfidf-ridge``: word and character n-gram TF-IDF, ridge regression on the log price."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.compose import TransformedTargetRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Ridge

from rag_pricer.query import Query
from rag_pricer.strategies.baselines.base import Baseline
from rag_pricer.strategies.baselines.storage import (
    load_array,
    load_estimator,
    load_vocabulary,
    save_array,
    save_estimator,
    save_vocabulary,
)


class TfidfRidgeBaseline(Baseline):
    """TF-IDF of word 1-2-grams and of character 3-5-grams within words (robust to model
    numbers and spelling: "1500W", "18V"), sublinear counts, ``Ridge`` on ``log1p(price)``.

    Prices are log-normal-ish, so the log target keeps a few $900 items from dominating the fit
    (``TransformedTargetRegressor`` with ``log1p`` / ``expm1``); predictions are clipped to the
    training range of prices.
    """

    kind = "tfidf-ridge"
    #: 2: the regressor is a TransformedTargetRegressor (format 1 saved the bare Ridge on log prices)
    file_format = 2

    def __init__(
        self, word_features: int = 50_000, char_features: int = 100_000, min_df: int = 2, alpha: float = 1.0
    ) -> None:
        self.word_features = word_features
        self.char_features = char_features
        self.min_df = min_df
        self.alpha = alpha

    def _vectorizers(self) -> dict[str, TfidfVectorizer]:
        common = {"min_df": self.min_df, "sublinear_tf": True, "strip_accents": "unicode", "dtype": np.float64}
        return {
            "words": TfidfVectorizer(ngram_range=(1, 2), max_features=self.word_features, **common),
            "chars": TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), max_features=self.char_features, **common),
        }

    def _matrix(self, texts: list[str], fit: bool = False) -> sp.csr_matrix:
        parts = [v.fit_transform(texts) if fit else v.transform(texts) for v in self.vectorizers_.values()]
        return sp.hstack(parts, format="csr")

    def _fit(self, queries: list[Query], prices: np.ndarray) -> None:
        self.vectorizers_ = self._vectorizers()
        self.price_range_ = (float(prices.min()), float(prices.max()))
        regressor = TransformedTargetRegressor(Ridge(alpha=self.alpha), func=np.log1p, inverse_func=np.expm1)
        self.regressor_ = regressor.fit(self._matrix([query.text for query in queries], fit=True), prices)

    def _predict(self, queries: list[Query]) -> np.ndarray:
        return np.clip(self.regressor_.predict(self._matrix([query.text for query in queries])), *self.price_range_)

    def _save_state(self, directory: Path) -> None:
        for name, vectorizer in self.vectorizers_.items():
            save_vocabulary(vectorizer, directory, name)
        save_estimator(self.regressor_, directory / "regressor.skops")
        save_array(directory / "price_range.npy", np.array(self.price_range_))

    def _load_state(self, directory: Path) -> None:
        self.vectorizers_ = {n: load_vocabulary(v, directory, n) for n, v in self._vectorizers().items()}
        self.regressor_ = load_estimator(directory / "regressor.skops")
        low, high = load_array(directory / "price_range.npy")
        self.price_range_ = (float(low), float(high))
