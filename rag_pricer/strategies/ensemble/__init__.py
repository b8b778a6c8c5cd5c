"""The ``ensemble`` strategy: base strategies' estimates combined in log-price space by a small
model fitted on items of the target distribution with K-fold cross-fitting."""

from rag_pricer.strategies.ensemble.crossfit import CrossFit, cross_fit
from rag_pricer.strategies.ensemble.model import KINDS, EnsembleModel
from rag_pricer.strategies.ensemble.pricer import EnsemblePricer
from rag_pricer.strategies.ensemble.signals import SIGNALS, BaseOutput, feature_matrix, feature_names

__all__ = [
    "KINDS",
    "SIGNALS",
    "BaseOutput",
    "CrossFit",
    "EnsembleModel",
    "EnsemblePricer",
    "cross_fit",
    "feature_matrix",
    "feature_names",
]
