"""``EnsembleJob``: one ``rag-pricer train-ensemble`` — each base priced on the fitting items
(those that cannot be built or that leak are skipped, with the reason), the ensemble
cross-fitted and fitted, the model and its calibrated range saved where the strategy loads them."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from rag_pricer.api import Estimator
from rag_pricer.evaluation import LeakageError
from rag_pricer.items import Item
from rag_pricer.strategies.ensemble.model import KINDS
from rag_pricer.strategies.ensemble.signals import BaseOutput
from rag_pricer.strategies.ensemble.strategy import ENSEMBLE_DIR
from rag_pricer.training.base_table import BaseTable
from rag_pricer.training.ensemble_trainer import EnsembleOutcome, EnsembleTrainer

__all__ = ["DEFAULT_BASES", "KINDS", "EnsembleJob"]

DEFAULT_BASES = "knn,boosting,boosting-nn,tfidf-ridge,features,bow,word2vec-lr,word2vec-rf,finetuned,rag-finetuned"

#: ``watch(base, total)``: a context whose value is called with each batch's size (a progress bar)
Watch = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]


def _no_watch(name: str, total: int) -> AbstractContextManager[Callable[[int], None]]:
    return nullcontext(lambda done: None)


@dataclass
class EnsembleJob:
    """Prices the bases with ``estimator``'s resources, caching their outputs under ``cache``."""

    estimator: Estimator
    cache: Path

    @staticmethod
    def compared_kinds(kind: str, kinds: str) -> list[str]:
        """The kinds to cross-fit (``kinds``, comma-separated, plus ``kind``); raises ``ValueError``."""
        compared = [k.strip() for k in kinds.split(",") if k.strip()]
        if kind != "auto" and kind not in KINDS or not compared or set(compared) - set(KINDS):
            raise ValueError(
                f"--kind must be auto or one of {', '.join(KINDS)}; --kinds a comma-separated list of them"
            )
        if kind != "auto" and kind not in compared:
            compared.append(kind)
        return compared

    def outputs(
        self,
        bases: Sequence[str],
        items: Sequence[Item],
        watch: Watch = _no_watch,
        on_skip: Callable[[str, str], None] = lambda name, why: None,
        unscored: Collection[str] = frozenset(),
    ) -> dict[str, list[BaseOutput]]:
        """Each base's outputs on ``items``; a base that cannot be built, or knows a fitting item,
        is skipped and ``on_skip(name, why)`` told (rich markup in ``why``). The ``unscored``
        items (ids) may be in the knowledge base: the bases price them leave-one-out, and only
        a base trained on one of them is skipped."""
        table = BaseTable(self.estimator, self.cache)
        outputs: dict[str, list[BaseOutput]] = {}
        for name in dict.fromkeys(b.strip() for b in bases if b.strip()):
            if name == "ensemble":
                raise ValueError("the ensemble cannot be its own base")
            try:
                with watch(name, len(items)) as advance:
                    outputs[name] = table.outputs(name, items, on_batch=advance, leave_one_out=unscored)
            except LeakageError as error:  # e.g. a model trained on the extra items: unusable for fitting on them
                on_skip(
                    name,
                    f"it knows {len(error.leaked)} of the fitting items (e.g. {error.leaked[0]}); fit without them "
                    "(--extra) or retrain it on train only",
                )
            except Exception as error:  # not trained, no store, unknown: skip it and say why
                on_skip(name, f"{type(error).__name__}: {str(error)[:200]}")
        if not outputs:
            raise ValueError("no base strategy could be built: train some first (`rag-pricer train-baselines`)")
        return outputs

    @staticmethod
    def fit(
        trainer: EnsembleTrainer, outputs: dict[str, list[BaseOutput]], scored: list[Item], added: list[Item]
    ) -> EnsembleOutcome:
        every = [*scored, *added]
        return trainer.train(
            outputs, [i.price for i in every], [i.id for i in every], [True] * len(scored) + [False] * len(added)
        )

    @staticmethod
    def save(outcome: EnsembleOutcome, models_dir: str | Path) -> tuple[Path, Path]:
        """The model to ``models_dir/ensemble``, its range (and the confidence levels, when its
        signal base gave evidence) to ``models_dir/calibration``."""
        if outcome.confidence is not None:
            outcome.confidence.save(models_dir)
        return outcome.model.save(Path(models_dir) / ENSEMBLE_DIR), outcome.calibration.save(models_dir)
