"""``BaseTable``: the base strategies' outputs on a list of items, computed once and cached.

Fitting and cross-fitting an ensemble (or calibrating a strategy) reads each base's price on
hundreds of items; pricing them takes minutes for ``knn`` or ``boosting``, so the outputs are
cached as JSON under ``cache_dir``, keyed by the strategy, the settings that change its answers
and the items (``evaluation.cache.run_key``). Each base is checked for leakage first: a base
that knows an item (trained on it, can retrieve it) is refused, never silently used.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from rag_pricer.ensemble.signals import BaseOutput
from rag_pricer.estimator import Estimator
from rag_pricer.evaluation.cache import run_key
from rag_pricer.evaluation.runner import check_leaks
from rag_pricer.items import Item
from rag_pricer.registry import registry

BATCH = 64


class BaseTable:
    """Outputs of base strategies (built by ``estimator`` with their default options) on items."""

    def __init__(self, estimator: Estimator, cache_dir: str | Path | None = None) -> None:
        self.estimator = estimator
        self.cache_dir = Path(cache_dir) if cache_dir else None

    def outputs(
        self, strategy: str, items: Sequence[Item], on_batch: Callable[[int], None] | None = None
    ) -> list[BaseOutput]:
        """``strategy``'s output on each item, in order (raises if it cannot be built or leaks)."""
        spec = registry.get(strategy)
        path = self._path(strategy, items)
        if path is not None and path.is_file():
            try:
                return [BaseOutput.from_dict(row) for row in json.loads(path.read_text(encoding="utf-8"))]
            except (ValueError, KeyError, TypeError):
                pass  # a damaged cache is recomputed
        pricer = spec.build(self.estimator.resources)
        pricer.max_chars = self.estimator.settings.max_description_chars
        check_leaks(pricer, items)
        outputs: list[BaseOutput] = []
        for start in range(0, len(items), BATCH):
            batch = list(items[start : start + BATCH])
            outputs += [BaseOutput.of(e) for e in pricer.estimate_many(batch)]
            if on_batch:
                on_batch(len(batch))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps([o.to_dict() for o in outputs]), encoding="utf-8")
        return outputs

    def _path(self, strategy: str, items: Sequence[Item]) -> Path | None:
        if self.cache_dir is None:
            return None
        key = run_key(registry.get(strategy), self.estimator.settings, {}, items)
        return self.cache_dir / f"{strategy}-{key}.json"
