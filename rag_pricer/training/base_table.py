"""``BaseTable``: the base strategies' outputs on a list of items, computed once and cached.

Fitting and cross-fitting an ensemble (or calibrating a strategy) reads each base's price on
hundreds of items; pricing them takes minutes for ``knn`` or ``boosting``, so the outputs are
cached as JSON under ``cache_dir``: one file per strategy and settings that change its answers
(``evaluation.cache.run_key`` of its pricer, without items), holding the output of each item by id and price;
only items missing there are priced. Each base is checked for leakage first: a base that knows
an item (trained on it, can retrieve it) is refused, never silently used. Items named
``leave_one_out`` (unscored fitting items that the knowledge base may hold) are refused only
when the base trained on them: retrieval never returns the item priced, so a stored one is
priced from the other products, as a new one is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from rag_pricer.api import Estimator
from rag_pricer.atomic_files import write_text_atomic
from rag_pricer.evaluation.cache import run_key
from rag_pricer.evaluation.runner import LeakageError, check_leaks
from rag_pricer.items import Item
from rag_pricer.pricing.pricer import Pricer
from rag_pricer.pricing.registry import registry
from rag_pricer.strategies.ensemble.signals import BaseOutput

BATCH = 64


class BaseTable:
    """Outputs of base strategies (built by ``estimator`` with their default options) on items."""

    def __init__(self, estimator: Estimator, cache_dir: str | Path | None = None) -> None:
        self.estimator = estimator
        self.cache_dir = Path(cache_dir) if cache_dir else None

    def outputs(
        self,
        strategy: str,
        items: Sequence[Item],
        on_batch: Callable[[int], None] | None = None,
        leave_one_out: Collection[str] = frozenset(),
    ) -> list[BaseOutput]:
        """``strategy``'s output on each item, in order (raises if it cannot be built or leaks;
        for the items whose ids are in ``leave_one_out``, only if it trained on them)."""
        spec = registry.get(strategy)
        pricer = spec.build(self.estimator.resources)
        pricer.max_chars = self.estimator.settings.max_description_chars
        check_leaks(pricer, [item for item in items if item.id not in leave_one_out])
        trained = pricer.trained_ids([item.id for item in items if item.id in leave_one_out])
        if trained:
            raise LeakageError(pricer.name, trained, len(items))
        path = self._path(pricer)
        cached = self._read(path)
        todo = [item for item in items if _key(item) not in cached]
        if on_batch and len(todo) < len(items):
            on_batch(len(items) - len(todo))
        for start in range(0, len(todo), BATCH):
            batch = todo[start : start + BATCH]
            cached.update((_key(item), BaseOutput.of(e)) for item, e in zip(batch, pricer.estimate_many(batch)))
            if on_batch:
                on_batch(len(batch))
        if path is not None and todo:
            write_text_atomic(path, json.dumps({k: o.to_dict() for k, o in cached.items()}))
        return [cached[_key(item)] for item in items]

    def _path(self, pricer: Pricer) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{pricer.name}-{run_key(pricer, [])}.json"

    @staticmethod
    def _read(path: Path | None) -> dict[str, BaseOutput]:
        if path is None or not path.is_file():
            return {}
        try:
            return {k: BaseOutput.from_dict(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            return {}  # a damaged cache is recomputed


def _key(item: Item) -> str:
    # the id and the true price: an item whose data changed is priced again
    return f"{item.id}:{item.price!r}"
