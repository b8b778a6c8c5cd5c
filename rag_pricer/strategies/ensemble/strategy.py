"""Registers ``ensemble``: the model saved by ``rag-pricer train-ensemble`` over its base strategies."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from rag_pricer.strategies.ensemble.model import EnsembleModel
from rag_pricer.strategies.ensemble.pricer import EnsemblePricer
from rag_pricer.pricing.pricer import Pricer
from rag_pricer.pricing.registry import StrategyOptions, register, registry
from rag_pricer.pricing.resources import Resources

#: where ``train-ensemble`` saves the model, under settings ``models_dir``
ENSEMBLE_DIR = "ensemble"


class EnsembleOptions(StrategyOptions):
    model: str | None = Field(None, description="The folder of a trained ensemble; default: models_dir/ensemble.")


@register(
    "ensemble",
    "Base strategies' log prices combined by weights learned on dev (cross-fitted), plus a bias correction.",
    needs=("trained", "store", "dev-fitted"),
    options=EnsembleOptions,
    extra="ml",
)
def build(resources: Resources, options: EnsembleOptions) -> EnsemblePricer:
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
