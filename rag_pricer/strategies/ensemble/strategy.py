"""Registers ``ensemble``: the model saved by ``rag-pricer train-ensemble`` over its base strategies."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from rag_pricer.pricing.pricer import Pricer
from rag_pricer.pricing.registry import Missing, StrategyOptions, register, registry
from rag_pricer.pricing.resources import Resources
from rag_pricer.settings import Settings
from rag_pricer.strategies.ensemble.model import EnsembleModel
from rag_pricer.strategies.ensemble.pricer import EnsemblePricer

#: where ``train-ensemble`` saves the model, under settings ``models_dir``
ENSEMBLE_DIR = "ensemble"
#: the one command that makes the default ensemble ready (store, bases, fit, range)
PREPARE_COMMAND = "rag-pricer prepare"


class EnsembleOptions(StrategyOptions):
    model: str | None = Field(None, description="The folder of a trained ensemble; default: models_dir/ensemble.")


def models(settings: Settings, options: Mapping[str, Any]) -> Missing | None:
    """Missing until ``prepare`` (or ``train-ensemble``) saved a model (or the option ``model``
    names one), then whatever its bases' models lack."""
    directory = Path(options.get("model") or Path(settings.models_dir) / ENSEMBLE_DIR)
    command = PREPARE_COMMAND
    if not (directory / "ensemble.json").is_file():
        return Missing("needs-training", f"no trained ensemble in {directory}", command)
    try:
        bases = EnsembleModel.load(directory).bases
    except ValueError as error:
        return Missing("needs-training", str(error), command)
    for name in bases:
        base = registry.find(name)
        if base is None:
            return Missing("needs-training", f"the ensemble's base strategy {name!r} is not registered here", command)
        lacking = base.models(settings, {}) if base.models is not None else None
        if lacking is not None:
            return Missing(lacking.status, f"its base {name!r}: {lacking.detail}", lacking.hint)
    return None


@register(
    "ensemble",
    "Base strategies' log prices combined by weights learned on dev (cross-fitted), plus a bias correction.",
    needs=("trained", "store", "dev-fitted"),
    options=EnsembleOptions,
    extra="ml",
    models=models,
)
def build(resources: Resources, options: EnsembleOptions) -> EnsemblePricer:
    lacking = models(resources.settings, options.model_dump())
    if lacking is not None:  # one line naming the command (every door shows an OSError as one line)
        raise FileNotFoundError(f"{lacking.detail}: run `{lacking.hint}`")
    folder = Path(options.model) if options.model else Path(resources.settings.models_dir) / ENSEMBLE_DIR
    fitted = EnsembleModel.load(folder)
    bases: dict[str, Pricer] = {}
    for name in fitted.bases:
        if name == "ensemble":
            raise ValueError("an ensemble cannot be its own base")
        try:
            bases[name] = registry.get(name).build(resources)
        except Exception as error:  # a base that cannot load: say which and why
            raise ValueError(f"the ensemble needs base strategy {name!r}, which cannot be built: {error}") from error
    return EnsemblePricer(fitted, bases)
