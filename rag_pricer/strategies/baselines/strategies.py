"""Registers every baseline of ``catalog.BASELINES`` as a strategy of the same name, loading the
model that ``rag-pricer train-baselines`` saved under settings ``models_dir``."""

from __future__ import annotations

from rag_pricer.strategies.baselines.catalog import BASELINES, BaselineSpec
from rag_pricer.strategies.baselines.pricer import BaselinePricer
from rag_pricer.pricing.registry import Factory, StrategyOptions, register
from rag_pricer.pricing.resources import Resources


class BaselineOptions(StrategyOptions):
    """The baselines take no options: everything they use was fixed when they were trained."""


def _factory(spec: BaselineSpec) -> Factory:
    def build(resources: Resources, options: BaselineOptions) -> BaselinePricer:
        directory = resources.settings.models_dir / spec.name
        # Only boosting reads the embedder: the others must not load the model.
        embedder = resources.embedder if "embedder" in spec.cls.runtime_params else None
        return BaselinePricer(spec.load(directory, embedder), model_dir=directory, embedder=embedder)

    build.__name__ = f"build_{spec.name.replace('-', '_')}"
    build.__doc__ = spec.summary
    return build


for _spec in BASELINES.values():
    register(_spec.name, _spec.summary, needs=("trained",), options=BaselineOptions, extra="ml")(_factory(_spec))
