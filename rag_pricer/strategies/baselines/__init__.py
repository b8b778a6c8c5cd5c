"""Traditional machine-learning baselines (the course's week 6 day 3, and two stronger ones),
each a ``Baseline`` (fit / predict / save / load), served as strategies by ``BaselinePricer``
and trained by ``rag-pricer train-baselines`` (``training.baselines``). The baseline classes live in their own modules
(imported on use: scikit-learn, gensim and LightGBM are slow to import)."""

from rag_pricer.strategies.baselines.base import Baseline
from rag_pricer.strategies.baselines.catalog import BASELINES, BaselineSpec
from rag_pricer.strategies.baselines.pricer import BaselinePricer
from rag_pricer.strategies.baselines.storage import ModelFormatError, ModelNotTrained

__all__ = [
    "BASELINES",
    "Baseline",
    "BaselinePricer",
    "BaselineSpec",
    "ModelFormatError",
    "ModelNotTrained",
]
