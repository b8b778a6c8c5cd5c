"""``Preparation``: everything the default strategy needs, made once (``rag-pricer prepare``).

Four steps, each a method: ``index`` the train split and the extra items (unscored items of the
dev distribution, when given) into the knowledge base, ``train`` the baselines the default
ensemble combines, ``fit`` the ensemble on dev (plus the extra items) with its calibrated range,
and price a few ``demo`` items. A step whose output exists and is current is skipped, so a
second run does only what is missing:

- the store is current when it holds as many products as the train split and the extra items
  have storable items;
- a baseline is current when its training items' digest is the one it was trained on, and, for
  one that reads the knowledge base (``boosting-nn``), the knowledge's digest too;
- the ensemble is current when it was fitted on the same items over the same base models.

The extra items are knowledge and fitting items at once: the bases price a stored one from the
other products (retrieval never returns the item priced, see ``Pricer.trained_ids``), as they
price a new one, so the ensemble's fitting outputs stay out-of-sample; ``dev`` is never stored.

Each step writes a small manifest next to what it made (``<store>/prepared.json``,
``<models_dir>/<name>.prepared.json``) with what it used and the seconds it took. A
``limit`` makes a quick run: that many train items, and a fifth as many dev items (at least
``MIN_FIT_ITEMS``, so that the ensemble's cross-fitting and its range still have enough).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from rich.console import Console

from ingest.index import Indexer
from rag_pricer.api import Estimator
from rag_pricer.atomic_files import write_text_atomic
from rag_pricer.evaluation.scores import ScoreRecord, score_path
from rag_pricer.items import Item, read_items
from rag_pricer.knowledge.store import StoreError
from rag_pricer.pricing.pricer import files_digest
from rag_pricer.pricing.ranges import DEFAULT_METHOD, calibration_path
from rag_pricer.settings import Settings
from rag_pricer.strategies.baselines.catalog import spec_of
from rag_pricer.strategies.ensemble.strategy import ENSEMBLE_DIR
from rag_pricer.training.baselines import BASELINES, BaselineTrainer
from rag_pricer.training.ensemble_job import EnsembleJob
from rag_pricer.training.ensemble_trainer import EnsembleOutcome, EnsembleTrainer

__all__ = ["DEMO_ITEMS", "MIN_FIT_ITEMS", "PREPARED_BASES", "Preparation", "PreparationReport", "StepResult"]

#: the bases of the default ensemble: what `prepare` trains, and nothing else
PREPARED_BASES = ("knn", "boosting", "boosting-nn", "tfidf-ridge", "features")
#: fewest dev items an ensemble is fitted on (5 folds, each with a conformal range)
MIN_FIT_ITEMS = 50
#: real products priced at the end: none of them is in the items file
DEMO_ITEMS = (
    "Delphi FG0166 fuel pump module for Chevrolet Silverado 1500",
    "Boss DS-1 Distortion guitar effects pedal",
    "Yamaha P-45 88-key weighted action digital piano",
    "Cordless drill 18V with two batteries and a charger",
    "Stainless steel chef's knife, 8 inch",
)
MANIFEST_SUFFIX = ".prepared.json"
TRAIN_SPLIT, FIT_SPLIT = "train", "dev"


class Reporter(Protocol):
    """Where a preparation says what it does: ``line`` a plain line (stderr), ``watch(label,
    total)`` a progress context whose value is called with each batch's size."""

    #: whether the indexer may draw its own progress (a bar in a terminal, lines in a log), and where
    progress: bool
    console: Console | None

    def line(self, text: str) -> None: ...

    def watch(self, label: str, total: int) -> AbstractContextManager[Callable[[int], None]]: ...


class Silent:
    """A reporter that says nothing."""

    progress: bool = False
    console: Console | None = None

    def line(self, text: str) -> None:
        pass

    def watch(self, label: str, total: int) -> AbstractContextManager[Callable[[int], None]]:
        return nullcontext(lambda done: None)


@dataclass
class StepResult:
    """One step: ``done`` or ``skipped`` (its output was current), the seconds it took, and what it did."""

    name: str
    status: Literal["done", "skipped"]
    seconds: float
    detail: str


@dataclass
class DemoRow:
    description: str
    price: float
    low: float | None
    high: float | None
    coverage: float | None
    notes: list[str] = field(default_factory=list)


@dataclass
class PreparationReport:
    strategy: str
    steps: list[StepResult] = field(default_factory=list)
    demo: list[DemoRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": round(self.seconds, 2)}


def record_scores(outcome: EnsembleOutcome, models_dir: Path, items: Path, split: str, command: str) -> Path:
    """The ensemble's cross-fitted figures and each base's on the same scored items, as score
    records under ``models_dir`` (``command``: what measures them again); returns their folder."""
    about = {"items": str(items), "split": split, "command": command}
    n = outcome.n_scored
    ScoreRecord.of("ensemble", outcome.kinds[outcome.chosen], n, how="cross-fitted", **about).save(models_dir)
    for name, metrics in outcome.bases.items():
        ScoreRecord.of(name, metrics, n, how="evaluated on the ensemble's fitting items", **about).save(models_dir)
    return score_path(models_dir, "ensemble").parent


def items_digest(items: Sequence[Item]) -> str:
    """A hash of the items' ids, prices and texts, in order: what a model learns from."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(f"{item.id}\x00{item.price!r}\x00{item.description}\x01".encode())
    return digest.hexdigest()[:20]


def storable(items: Sequence[Item]) -> int:
    """How many of ``items`` an index stores: those without a problem, each id once."""
    return len({item.id for item in items if item.problem() is None})


class Preparation:
    """Makes the default strategy ready from ``settings`` (items file, store, models folder):
    ``run()`` does every step that is not current and returns what each did. ``extra``: unscored
    fitting items of the dev distribution (``None``: fit on dev only); ``limit``: a quick run."""

    def __init__(
        self,
        settings: Settings,
        extra: Path | None = None,
        limit: int | None = None,
        reporter: Reporter | None = None,
        bases: Sequence[str] = PREPARED_BASES,
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        self.settings = settings
        self.extra = extra
        self.limit = limit
        self.reporter: Reporter = reporter or Silent()
        self.bases = list(bases)
        self.estimator = Estimator.from_settings(settings)
        self._train: list[Item] | None = None
        self._fit: tuple[list[Item], list[Item]] | None = None

    @property
    def models_dir(self) -> Path:
        return Path(self.settings.models_dir)

    def run(self) -> PreparationReport:
        report = PreparationReport(self.settings.strategy)
        if self.extra is None:
            report.notes.append("no extra items: the ensemble is fitted on dev only")
        for name, step in (("index", self.index), ("train", self.train), ("fit", self.fit)):
            report.steps.append(self._timed(name, step))
        started = time.perf_counter()
        self.reporter.line(f"prepare: demo: pricing {len(DEMO_ITEMS)} items with {self.settings.strategy}")
        report.demo = self.demo()
        seconds = time.perf_counter() - started
        report.steps.append(StepResult("demo", "done", seconds, f"{len(report.demo)} items priced"))
        self.reporter.line(f"prepare: demo: done in {seconds:.1f} s")
        return report

    # -- the steps: each returns (done?, what it did) -----------------------------------------

    def index(self) -> tuple[bool, str]:
        """The train split and the extra items into the store, unless it holds them already."""
        items = self.knowledge_items()
        expected = storable(items)
        store = self.estimator.resources.store
        try:
            held = store.count()
        except StoreError:
            held = 0  # no store yet
        n_extra = len(self.fit_items()[1])
        what = f"the {expected - n_extra:,} train" + (f" and {n_extra:,} extra items" if n_extra else " items")
        if held == expected:
            return False, f"the store holds {what}"
        indexer = Indexer(
            store,
            self.estimator.resources.embedder,
            progress=self.reporter.progress,
            log_every_s=30,
            console=self.reporter.console,
        )
        indexed = indexer.run(items)
        self._write_manifest(
            self._store_manifest(),
            {"items": str(self.settings.items_path), "split": TRAIN_SPLIT, "limit": self.limit, "n": expected}
            | {"n_train": expected - n_extra, "extra": str(self.extra) if n_extra else None, "n_extra": n_extra}
            | {"items_digest": items_digest(items), "report": indexed.as_dict()},
        )
        return True, f"{indexed.embedded:,} items embedded, {indexed.total_in_store:,} in the store ({what})"

    def train(self) -> tuple[bool, str]:
        """The baselines among the bases whose saved model was not trained on these train items."""
        names = [name for name in self.bases if name in BASELINES]
        items = self.train_items()
        digest = items_digest(items)
        todo = [name for name in names if not self._trained_on(name, digest, items)]
        if not todo:
            return False, f"{', '.join(names) or 'no baselines'} trained on these {len(items):,} items"
        trainer = BaselineTrainer.for_settings(self.settings, todo)
        steps = trainer.steps()
        with self.reporter.watch("train", len(steps)) as advance:
            started: list[str] = []

            def on_step(step: str) -> None:
                if started:
                    advance(1)
                started.append(step)
                self.reporter.line(f"prepare: train: {step}")

            trained = trainer.train(items, self.models_dir, on_step=on_step)
            advance(1)
        for step in trained:
            if step.path is not None:
                self._write_manifest(
                    self._baseline_manifest(step.name),
                    {"items": str(self.settings.items_path), "split": TRAIN_SPLIT, "limit": self.limit}
                    | {"n_train": step.n_train, "items_digest": digest, "model_digest": files_digest(step.path)}
                    | {"knowledge_digest": self._knowledge_digest(step.name), "seconds": round(step.seconds, 2)},
                )
        return True, ", ".join(f"{s.name} {s.seconds:.0f} s" for s in trained) + f" on {len(items):,} items"

    def fit(self) -> tuple[bool, str]:
        """The ensemble of the bases on dev (+ extra), with its range, unless it is current."""
        started = time.perf_counter()
        scored, added = self.fit_items()
        state = {
            "bases": {name: self._base_digest(name) for name in self.bases},
            "scored_digest": items_digest(scored),
            "extra_digest": items_digest(added),
            # a range calibrated by an older method is refitted: the new one is narrower (issue 19)
            "range_method": DEFAULT_METHOD,
        }
        manifest = self._read_manifest(self._ensemble_manifest())
        saved = (self.models_dir / ENSEMBLE_DIR / "ensemble.json").is_file()
        if saved and calibration_path(self.models_dir, "ensemble").is_file() and manifest.get("state") == state:
            return False, f"the ensemble of {', '.join(manifest.get('used', []))} is fitted on these items"
        # The bases price the same fitting items one after the other: a query cache that holds
        # them all embeds each text once instead of once per base.
        cache_size = max(self.settings.embedding_cache_size, len(scored) + len(added))
        estimator = Estimator.from_settings(self.settings.updated(embedding_cache_size=cache_size))
        job = EnsembleJob(estimator, self.models_dir / "ensemble-cache")
        outputs = job.outputs(
            self.bases,
            [*scored, *added],
            watch=lambda name, total: self.reporter.watch(f"fit: base {name}", total),
            on_skip=lambda name, why: self.reporter.line(f"prepare: fit: skipped base {name}: {why}"),
            unscored={item.id for item in added},
        )
        outcome = job.fit(EnsembleTrainer(list(outputs)), outputs, scored, added)
        job.save(outcome, self.models_dir)
        if self.limit is None:  # the whole dev split: the figures are worth showing where strategies are picked
            extra = f" --extra {self.extra}" if self.extra else ""
            command = f"rag-pricer train-ensemble --items {self.settings.items_path} --split {FIT_SPLIT}{extra}"
            record_scores(outcome, self.models_dir, self.settings.items_path, FIT_SPLIT, command)
        chosen = outcome.kinds[outcome.chosen]["mae"]
        self._write_manifest(
            self._ensemble_manifest(),
            {"state": state, "used": list(outputs), "kind": outcome.chosen, "n_scored": len(scored)}
            | {"n_extra": len(added), "cross_fitted_mae": round(chosen.value, 2)}
            | {"seconds": round(time.perf_counter() - started, 2)},
        )
        return True, (
            f"{outcome.chosen} of {', '.join(outputs)} on {len(scored)} {FIT_SPLIT} (+{len(added)} extra) items; "
            f"cross-fitted MAE ${chosen.value:,.2f} (${chosen.low:,.2f} - ${chosen.high:,.2f})"
        )

    def demo(self) -> list[DemoRow]:
        """The demo items priced with the default strategy, with their ranges."""
        estimates = self.estimator.estimate_many(list(DEMO_ITEMS), self.settings.strategy)
        return [DemoRow(d, e.price, e.low, e.high, e.coverage, list(e.notes)) for d, e in zip(DEMO_ITEMS, estimates)]

    # -- the items ------------------------------------------------------------------------------

    def train_items(self) -> list[Item]:
        if self._train is None:
            self._train = read_items(self.settings.items_path, split=TRAIN_SPLIT, limit=self.limit)
            if not self._train:
                raise ValueError(f"no {TRAIN_SPLIT} items in {self.settings.items_path}")
        return self._train

    def knowledge_items(self) -> list[Item]:
        """What the knowledge base holds: the train items, then the extra ones."""
        return [*self.train_items(), *self.fit_items()[1]]

    def fit_items(self) -> tuple[list[Item], list[Item]]:
        """The scored dev items and the unscored extra ones (as many as the dev ones on a quick run)."""
        if self._fit is None:
            self._fit = self._read_fit_items()
        return self._fit

    def _read_fit_items(self) -> tuple[list[Item], list[Item]]:
        n = None if self.limit is None else max(MIN_FIT_ITEMS, self.limit // 5)
        scored = read_items(self.settings.items_path, split=FIT_SPLIT, limit=n)
        if len(scored) < MIN_FIT_ITEMS:
            raise ValueError(
                f"{len(scored)} {FIT_SPLIT} items in {self.settings.items_path}: the ensemble needs at least "
                f"{MIN_FIT_ITEMS}"
            )
        if self.extra is None:
            return scored, []
        taken = {item.id for item in scored}
        added = [item for item in read_items(self.extra, limit=n) if item.id not in taken]
        return scored, added

    # -- what is current ------------------------------------------------------------------------

    def _trained_on(self, name: str, digest: str, items: Sequence[Item]) -> bool:
        folder = self.models_dir / name
        if not (folder / "baseline.json").is_file():
            return False
        manifest = self._read_manifest(self._baseline_manifest(name))
        if manifest:
            return (
                manifest.get("items_digest") == digest
                and manifest.get("model_digest") == files_digest(folder)
                and manifest.get("knowledge_digest") == self._knowledge_digest(name)
            )
        if spec_of(name).uses_store:  # its features depend on the knowledge base, which only a manifest records
            return False
        # Trained by `train-baselines`: current when it learnt exactly these items' ids.
        try:
            trained = json.loads((folder / "baseline.json").read_text(encoding="utf-8")).get("trained_ids")
        except (OSError, ValueError):
            return False
        return trained == sorted({item.id for item in items})

    def _base_digest(self, name: str) -> str:
        if name in BASELINES:
            return files_digest(self.models_dir / name)
        if name == "knn":  # the store: what was indexed into it
            return items_digest(self.knowledge_items())
        return name

    def _knowledge_digest(self, name: str) -> str | None:
        """What a baseline that reads the knowledge base was trained beside (``None`` for the others)."""
        return items_digest(self.knowledge_items()) if spec_of(name).uses_store else None

    def _store_manifest(self) -> Path | None:
        if self.settings.chroma_host:
            return None
        return Path(self.settings.store_path) / "prepared.json"

    def _baseline_manifest(self, name: str) -> Path:
        return self.models_dir / f"{name}{MANIFEST_SUFFIX}"

    def _ensemble_manifest(self) -> Path:
        return self.models_dir / f"{ENSEMBLE_DIR}{MANIFEST_SUFFIX}"

    @staticmethod
    def _read_manifest(path: Path) -> dict[str, Any]:
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    def _write_manifest(self, path: Path | None, data: dict[str, Any]) -> None:
        if path is None:
            return
        stamped = data | {"finished": datetime.now(UTC).isoformat(timespec="seconds")}
        write_text_atomic(path, json.dumps(stamped, indent=1) + "\n")

    def _timed(self, name: str, step: Callable[[], tuple[bool, str]]) -> StepResult:
        self.reporter.line(f"prepare: {name}: started")
        started = time.perf_counter()
        done, detail = step()
        seconds = time.perf_counter() - started
        self.reporter.line(f"prepare: {name}: {'done' if done else 'skipped'} in {seconds:.1f} s ({detail})")
        return StepResult(name, "done" if done else "skipped", seconds, detail)
