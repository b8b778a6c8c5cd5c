"""``EnsemblePricer``: the base strategies' estimates combined by a fitted ``EnsembleModel``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rag_pricer.pricing.pricer import Pricer
from rag_pricer.pricing.values import Estimate
from rag_pricer.query import Query
from rag_pricer.strategies.ensemble.model import EnsembleModel
from rag_pricer.strategies.ensemble.signals import BaseOutput, feature_matrix


class EnsemblePricer(Pricer):
    """Prices each query with every base pricer, then with ``model`` over their outputs.

    The comparables shown are those of the base that gives the retrieval signals (``knn``);
    a note lists the bases' prices. Items the ensemble was fitted on, and items any base knows,
    are refused by the evaluation harness (``leaked_ids``)."""

    def __init__(self, model: EnsembleModel, bases: Mapping[str, Pricer]) -> None:
        missing = [b for b in model.bases if b not in bases]
        if missing:
            raise ValueError(f"the ensemble needs base strategies {missing}")
        self.model = model
        self.bases = dict(bases)
        self._fitted = frozenset(model.fitted_ids_)

    def fingerprint(self) -> dict[str, Any]:
        """The fitted model itself and every base's options and fingerprint."""
        bases = {name: {"options": dict(b.options), "fingerprint": b.fingerprint()} for name, b in self.bases.items()}
        return {"model": self.model.to_dict(), "bases": bases}

    def _estimate_many(self, queries: list[Query]) -> list[Estimate]:
        estimates = {name: self.bases[name].estimate_many(queries) for name in self.model.bases}
        outputs = {name: [BaseOutput.of(e) for e in found] for name, found in estimates.items()}
        prices = self.model.predict(feature_matrix(outputs, self.model.bases, self.model.signal_base))
        shown = self.model.signal_base or next((b for b in self.model.bases if estimates[b][0].comparables), None)
        results = []
        for row, price in enumerate(prices):
            parts = ", ".join(f"{name} ${estimates[name][row].price:,.2f}" for name in self.model.bases)
            results.append(
                Estimate(
                    price=float(price),
                    strategy=self.name,
                    comparables=list(estimates[shown][row].comparables) if shown else [],
                    notes=[f"{self.model.kind} of {parts}"],
                )
            )
        return results

    def llm_used(self) -> dict[str, Any] | None:
        """The LLM of its first base that asks one (an ensemble over LLM strategies shares one)."""
        return next((used for pricer in self.bases.values() if (used := pricer.llm_used()) is not None), None)

    def leaked_ids(self, ids: Sequence[str]) -> list[str]:
        """The ids the ensemble was fitted on or that any base knows."""
        known = {i for i in ids if i in self._fitted}
        for pricer in self.bases.values():
            known.update(pricer.leaked_ids(list(ids)))
        return [i for i in ids if i in known]

    def trained_ids(self, ids: Sequence[str]) -> list[str]:
        """The ids the ensemble was fitted on or that any base trained on."""
        known = {i for i in ids if i in self._fitted}
        for pricer in self.bases.values():
            known.update(pricer.trained_ids(list(ids)))
        return [i for i in ids if i in known]
