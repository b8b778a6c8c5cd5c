"""``boosting-nn``: ``boosting`` plus what the prices of the nearest other stored products say."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from rag_pricer.knowledge.embeddings import Embedder
from rag_pricer.knowledge.retrieval import Retriever, SearchOptions
from rag_pricer.knowledge.vectors import VectorSource
from rag_pricer.query import Query
from rag_pricer.strategies.baselines.boosting import BoostingBaseline
from rag_pricer.strategies.baselines.storage import ModelFormatError
from rag_pricer.strategies.neighbour_prices import NEIGHBOUR_FEATURES, neighbour_features


class NeighbourBoostingBaseline(BoostingBaseline):
    """``boosting``'s LightGBM with ``NEIGHBOUR_FEATURES`` of the ``neighbours`` nearest stored
    products as more columns: the similarity-weighted mean, median and spread of their log
    prices, the nearest one's price, the similarities.

    Neighbours come from ``retriever`` (the knowledge base) and never include the item itself:
    the retriever drops its own id and any stored product whose text is the item's (a duplicate
    under another id). A training item stored in the knowledge base is thus priced from all the
    other stored products, as a new item is (leave-one-out, no item sees its own price).
    Training reads the stored items' vectors from the store (``vectors``) instead of embedding
    them again; predicting embeds the query once and searches with that vector.
    """

    kind = "boosting-nn"
    runtime_params: ClassVar[tuple[str, ...]] = ("embedder", "vectors", "retriever")

    def __init__(
        self,
        embedder: Embedder | None = None,
        retriever: Retriever | None = None,
        neighbours: int = 10,
        power: float = 4.0,
        text_features: int = 20_000,
        n_components: int = 100,
        n_estimators: int = 600,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        n_jobs: int = 1,
        seed: int = 42,
        vectors: VectorSource | None = None,
    ) -> None:
        super().__init__(
            embedder=embedder,
            text_features=text_features,
            n_components=n_components,
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            num_leaves=num_leaves,
            n_jobs=n_jobs,
            seed=seed,
            vectors=vectors,
        )
        self.retriever = retriever
        self.neighbours = neighbours
        self.power = power

    def _extra_columns(self, queries: list[Query], embeddings: np.ndarray | None) -> list[np.ndarray]:
        if embeddings is None or self.retriever is None:
            raise ValueError("boosting-nn needs an embedder and the knowledge base (a retriever) to find neighbours")
        if self.retriever.store.model != self.embedding_model_:
            raise ValueError(
                f"the knowledge base holds {self.retriever.store.model!r} vectors, not {self.embedding_model_!r} ones"
            )
        found = self.retriever.search_vectors(queries, embeddings, SearchOptions(k=self.neighbours))
        return [np.array([neighbour_features(n, self.power) for n in found]).reshape(len(queries), -1)]

    def _extra_count(self) -> int:
        return len(NEIGHBOUR_FEATURES)

    def _load_state(self, directory: Path) -> None:
        super()._load_state(directory)
        if self.retriever is not None and self.retriever.store.model != self.embedding_model_:
            raise ModelFormatError(
                f"{directory} was trained with neighbours by {self.embedding_model_!r}, "
                f"the knowledge base holds {self.retriever.store.model!r} vectors"
            )
