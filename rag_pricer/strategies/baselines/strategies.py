"""Registers every baseline of ``catalog.BASELINES`` as a strategy of the same name, loading the
model that ``rag-pricer train-baselines`` saved under settings ``models_dir``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rag_pricer.pricing.registry import Factory, Missing, ModelsCheck, StrategyOptions, register
from rag_pricer.pricing.resources import Resources
from rag_pricer.settings import Settings
from rag_pricer.strategies.baselines.catalog import BASELINES, BaselineSpec
from rag_pricer.strategies.baselines.pricer import BaselinePricer
from rag_pricer.strategies.baselines.storage import MANIFEST


class BaselineOptions(StrategyOptions):
    """The baselines take no options: everything they use was fixed when they were trained."""


def _factory(spec: BaselineSpec) -> Factory:
    def build(resources: Resources, options: BaselineOptions) -> BaselinePricer:
        directory = resources.settings.models_dir / spec.name
        # Only boosting reads the embedder, only boosting-nn the store: the others must not load them.
        embedder = resources.embedder if "embedder" in spec.cls.runtime_params else None
        retriever = resources.retriever if "retriever" in spec.cls.runtime_params else None
        return BaselinePricer(
            spec.load(directory, embedder, retriever),
            model_dir=directory,
            embedder=embedder,
            store=retriever.store if retriever is not None else None,
        )

    build.__name__ = f"build_{spec.name.replace('-', '_')}"
    build.__doc__ = spec.summary
    return build


def _models(spec: BaselineSpec) -> ModelsCheck:
    def missing(settings: Settings, options: Mapping[str, Any]) -> Missing | None:
        directory = settings.models_dir / spec.name
        if (directory / MANIFEST).is_file():
            return None
        command = f"rag-pricer train-baselines --items {settings.items_path} --split train --only {spec.name}"
        return Missing("needs-training", f"no trained model in {directory}", command)

    return missing


for _spec in BASELINES.values():
    register(
        _spec.name,
        _spec.summary,
        needs=("trained", "store") if _spec.uses_store else ("trained",),
        options=BaselineOptions,
        extra="ml",
        models=_models(_spec),
    )(_factory(_spec))
