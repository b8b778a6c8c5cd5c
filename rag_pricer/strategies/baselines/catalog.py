"""``BASELINES``: every baseline by its strategy name, how to make one for training and how to
load a trained one. Classes are imported on use: scikit-learn, gensim and LightGBM take seconds
to import, and the registry imports this module to list the strategies."""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag_pricer.knowledge.embeddings import Embedder
from rag_pricer.knowledge.retrieval import Retriever
from rag_pricer.knowledge.vectors import VectorSource
from rag_pricer.strategies.baselines.storage import ModelFormatError

if TYPE_CHECKING:
    from rag_pricer.strategies.baselines.base import Baseline
    from rag_pricer.strategies.baselines.word_vectors import Word2VecVectorizer


@dataclass
class SharedParts:
    """What the baselines of one training run share: a word2vec model trained once on the
    training texts (built on first use), the embedding model, where the vectors of stored items
    are read (``vectors``: the store, so that they are not embedded again), the knowledge base's
    retriever (``boosting-nn``'s neighbours), threads and seed."""

    texts: list[str]
    embedder: Embedder | None = None
    n_jobs: int = 1
    seed: int = 42
    vectors: VectorSource | None = None
    retriever: Retriever | None = None

    @cached_property
    def word2vec(self) -> Word2VecVectorizer:
        from rag_pricer.strategies.baselines.word_vectors import Word2VecVectorizer

        return Word2VecVectorizer(seed=self.seed).fit(self.texts)


@dataclass(frozen=True)
class BaselineSpec:
    """A strategy name and summary, its class (``module:Class``), the parameters that tell it
    from its siblings (``word2vec-lr`` vs ``word2vec-rf``), the shared parts it takes
    (constructor parameter -> ``SharedParts`` attribute, trained once before it) and whether it
    reads the knowledge base when it prices (``uses_store``: the strategy needs the store)."""

    name: str
    summary: str
    target: str
    params: dict[str, Any] = field(default_factory=dict)
    shares: dict[str, str] = field(default_factory=dict)
    uses_store: bool = False

    @property
    def cls(self) -> type[Baseline]:
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)

    def make(self, shared: SharedParts) -> Baseline:
        """An unfitted baseline with its fixed parameters, seed, threads and shared parts."""
        cls = self.cls
        accepted = inspect.signature(cls).parameters
        kwargs = dict(self.params)
        kwargs.update({k: v for k, v in (("seed", shared.seed), ("n_jobs", shared.n_jobs)) if k in accepted})
        if "embedder" in accepted:
            kwargs["embedder"] = shared.embedder or Embedder()
        for runtime in ("vectors", "retriever"):
            if runtime in accepted and getattr(shared, runtime) is not None:
                kwargs[runtime] = getattr(shared, runtime)
        kwargs.update({param: getattr(shared, part) for param, part in self.shares.items()})
        return cls(**kwargs)

    def load(self, directory: Path, embedder: Embedder | None = None, retriever: Retriever | None = None) -> Baseline:
        """The model saved in ``directory`` (``ModelNotTrained`` when there is none)."""
        cls = self.cls
        given = {"embedder": embedder, "retriever": retriever}
        model = cls.load(directory, **{k: v for k, v in given.items() if k in cls.runtime_params})
        saved = model.params()
        wrong = {k: saved.get(k) for k, v in self.params.items() if saved.get(k) != v}
        if wrong:
            raise ModelFormatError(f"{directory} holds {wrong}, not the {self.name!r} baseline ({self.params})")
        return model


_W2V = {"vectorizer": "word2vec"}

BASELINES: dict[str, BaselineSpec] = {
    spec.name: spec
    for spec in (
        BaselineSpec(
            "random",
            "Course baseline: a random whole-dollar price in [1, 1000), seeded by the text.",
            "rag_pricer.strategies.baselines.random_price:RandomBaseline",
        ),
        BaselineSpec(
            "constant",
            "Course baseline: the mean training price.",
            "rag_pricer.strategies.baselines.constant:ConstantBaseline",
        ),
        BaselineSpec(
            "features",
            "Course baseline: linear regression on weight, rank, length, top brand, category.",
            "rag_pricer.strategies.baselines.feature_regression:FeatureRegressionBaseline",
        ),
        BaselineSpec(
            "bow",
            "Course baseline: counts of 1,000 words, linear regression.",
            "rag_pricer.strategies.baselines.bag_of_words:BagOfWordsBaseline",
        ),
        BaselineSpec(
            "word2vec-lr",
            "Course baseline: word2vec document vectors, linear regression.",
            "rag_pricer.strategies.baselines.word2vec:Word2VecBaseline",
            {"regressor": "lr"},
            _W2V,
        ),
        BaselineSpec(
            "word2vec-svr",
            "Course baseline: word2vec document vectors, linear support vector regression.",
            "rag_pricer.strategies.baselines.word2vec:Word2VecBaseline",
            {"regressor": "svr"},
            _W2V,
        ),
        BaselineSpec(
            "word2vec-rf",
            "Course baseline: word2vec document vectors, random forest.",
            "rag_pricer.strategies.baselines.word2vec:Word2VecBaseline",
            {"regressor": "rf"},
            _W2V,
        ),
        BaselineSpec(
            "tfidf-ridge",
            "Word and character n-gram TF-IDF, ridge regression on the log price.",
            "rag_pricer.strategies.baselines.tfidf_ridge:TfidfRidgeBaseline",
        ),
        BaselineSpec(
            "boosting",
            "LightGBM on TF-IDF components, engineered features and MiniLM embeddings (log price).",
            "rag_pricer.strategies.baselines.boosting:BoostingBaseline",
        ),
        BaselineSpec(
            "boosting-nn",
            "boosting plus the prices of the 10 nearest other products in the knowledge base (log price).",
            "rag_pricer.strategies.baselines.boosting_neighbours:NeighbourBoostingBaseline",
            uses_store=True,
        ),
    )
}


def spec_of(name: str) -> BaselineSpec:
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    return BASELINES[name]
