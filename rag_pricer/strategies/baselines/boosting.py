"""``boosting``: LightGBM on text components, engineered features and sentence embeddings."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import lightgbm
import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from rag_pricer.knowledge.embeddings import Embedder, resolve_model
from rag_pricer.knowledge.vectors import VectorSource
from rag_pricer.query import Query
from rag_pricer.strategies.baselines.base import Baseline
from rag_pricer.strategies.baselines.features import FeatureBuilder
from rag_pricer.strategies.baselines.storage import (
    ModelFormatError,
    load_array,
    load_estimator,
    load_vocabulary,
    read_json,
    save_array,
    save_estimator,
    save_vocabulary,
    write_json,
)


class BoostingBaseline(Baseline):
    """Gradient-boosted trees (LightGBM) on ``log1p(price)`` from three views of a product:

    - ``n_components`` SVD components of a word TF-IDF (``text_features`` terms): what it says;
    - ``FeatureBuilder`` features: weight, rank, length, brand, category (imputed without details);
    - the sentence embedding of ``embedder`` (all-MiniLM-L6-v2 by default): what it means.

    ``embedder=None`` at ``fit`` leaves the embedding out; a model trained with one needs the
    same model at ``load`` (given, or built from the saved name). ``vectors`` (optional, same
    model) gives the vectors of items the knowledge base holds without embedding them again
    (``BaselineTrainer.for_settings`` wires it to the store). Predictions are ``expm1`` of
    the log, clipped to the training range of log prices. Training is reproducible
    (``deterministic`` LightGBM, seeded SVD).
    """

    kind = "boosting"
    uses_details = True
    runtime_params: ClassVar[tuple[str, ...]] = ("embedder", "vectors")

    def __init__(
        self,
        embedder: Embedder | None = None,
        text_features: int = 20_000,
        n_components: int = 100,
        n_estimators: int = 600,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        n_jobs: int = 1,
        seed: int = 42,
        vectors: VectorSource | None = None,
    ) -> None:
        self.embedder = embedder
        self.vectors = vectors
        self.text_features = text_features
        self.n_components = n_components
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.n_jobs = n_jobs
        self.seed = seed

    def _vectorizer(self) -> TfidfVectorizer:
        return TfidfVectorizer(
            ngram_range=(1, 2), min_df=2, max_features=self.text_features, sublinear_tf=True, strip_accents="unicode"
        )

    def _matrix(self, queries: list[Query], prices: np.ndarray | None = None) -> np.ndarray:
        """The feature matrix; with ``prices``, the text and feature transforms are fitted first."""
        texts = [query.text for query in queries]
        if prices is not None:
            tfidf = self.vectorizer_.fit_transform(texts)
            # A tiny training set has fewer terms than components: SVD needs n_components < terms.
            self.svd_ = TruncatedSVD(n_components=min(self.n_components, tfidf.shape[1] - 1), random_state=self.seed)
            components = self.svd_.fit_transform(tfidf)
            engineered = self.features_.fit_transform(queries, prices)
        else:
            components = self.svd_.transform(self.vectorizer_.transform(texts))
            engineered = self.features_.transform(queries)
        parts = [components, engineered]
        embeddings = self._embeddings(queries) if self.embedder_ is not None else None
        if embeddings is not None:
            parts.append(embeddings)
        parts += self._extra_columns(queries, embeddings)
        return np.hstack(parts).astype(np.float64)

    def _embeddings(self, queries: list[Query]) -> np.ndarray:
        """The queries' vectors: from ``vectors`` where given (the store's, by id), else embedded."""
        texts = [query.text for query in queries]
        if self.vectors is not None:
            return self.vectors.encode(texts, [query.id for query in queries])
        assert self.embedder_ is not None
        return self.embedder_.encode_queries(texts)  # through the query cache: bases priced on the same items share it

    def _extra_columns(self, queries: list[Query], embeddings: np.ndarray | None) -> list[np.ndarray]:
        """More feature columns (none here; ``boosting-nn`` adds its neighbours' prices)."""
        return []

    def _extra_count(self) -> int:
        return 0

    def training_matrix(self, queries: list[Query], prices: np.ndarray) -> np.ndarray:
        """Fit the text and feature transforms on the training queries; their feature matrix
        (what ``_fit`` gives LightGBM; scripts/shift_weights.py fits it with sample weights)."""
        self.vectorizer_ = self._vectorizer()
        self.features_ = FeatureBuilder()
        self.embedder_ = self.embedder
        self.embedding_model_ = self.embedder.model_name if self.embedder else None
        if self.vectors is not None and self.vectors.model_name != self.embedding_model_:
            raise ValueError(
                f"the vectors are of {self.vectors.model_name!r}, the embedder is {self.embedding_model_!r}"
            )
        logs = np.log1p(prices)
        self.log_range_ = (float(logs.min()), float(logs.max()))
        return self._matrix(queries, prices)

    def _fit(self, queries: list[Query], prices: np.ndarray) -> None:
        matrix = self.training_matrix(queries, prices)
        # The log target by hand, not TransformedTargetRegressor: the model is saved as LightGBM's own
        # text file (safe, exact), which a wrapped LGBMRegressor would trade for a skops file of it.
        self.booster_ = self.regressor().fit(matrix, np.log1p(prices)).booster_

    def matrix(self, queries: list[Query]) -> np.ndarray:
        """The feature matrix of ``queries`` (transforms fitted)."""
        return self._matrix(queries)

    def regressor(self) -> lightgbm.LGBMRegressor:
        """The unfitted LightGBM regressor of these parameters (reproducible: deterministic, seeded)."""
        return lightgbm.LGBMRegressor(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.5,
            random_state=self.seed,
            n_jobs=self.n_jobs,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )

    def _predict(self, queries: list[Query]) -> np.ndarray:
        return np.expm1(np.clip(self.booster_.predict(self._matrix(queries)), *self.log_range_))

    def _save_state(self, directory: Path) -> None:
        save_vocabulary(self.vectorizer_, directory, "words")
        save_estimator(self.svd_, directory / "svd.skops")
        write_json(directory / "features.json", self.features_.state())
        self.booster_.save_model(str(directory / "lightgbm.txt"))
        save_array(directory / "log_range.npy", np.array(self.log_range_))
        write_json(directory / "embedding.json", {"model": self.embedding_model_})

    def _load_state(self, directory: Path) -> None:
        self.vectorizer_ = load_vocabulary(self._vectorizer(), directory, "words")
        self.svd_ = load_estimator(directory / "svd.skops")
        self.features_ = FeatureBuilder.from_state(read_json(directory / "features.json"))
        self.booster_ = lightgbm.Booster(model_file=str(directory / "lightgbm.txt"))
        low, high = (float(x) for x in load_array(directory / "log_range.npy"))
        self.log_range_ = (low, high)
        self.embedding_model_ = read_json(directory / "embedding.json")["model"]
        self.embedder_ = self._runtime_embedder(directory)
        expected = self.booster_.num_feature()
        found = self.svd_.components_.shape[0] + len(self.features_.feature_names_)
        found += self.embedder_.dimension if self.embedder_ else 0
        found += self._extra_count()
        if found != expected:
            raise ModelFormatError(f"{directory} was trained on {expected} features but gets {found}")

    def _runtime_embedder(self, directory: Path) -> Embedder | None:
        """The embedder to use with a loaded model: none if it was trained without one; else
        the given one, which must be the model it was trained with, or that model."""
        if self.embedding_model_ is None:
            return None
        if self.embedder is None:
            return Embedder(self.embedding_model_)
        if resolve_model(self.embedder.model_name) != resolve_model(self.embedding_model_):
            raise ModelFormatError(
                f"{directory} was trained with the embedding model {self.embedding_model_!r}, "
                f"not {self.embedder.model_name!r}: retrain it or use that model"
            )
        return self.embedder
