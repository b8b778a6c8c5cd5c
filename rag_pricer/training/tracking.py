"""Experiment tracking: ``compare`` and ``finetune`` runs logged to MLflow (the ``track`` extra).

``Tracker(uri)`` logs through ``MlflowClient`` (no process-wide MLflow state is set). ``uri`` is
a folder (default ``var/mlruns``: MLflow's local file store) or any MLflow tracking URI
(``http://host:5000``; ``sqlite:///mlflow.db`` with the full ``mlflow`` package).

- ``compare``: one parent run (items, split, options; ``comparison.md`` and ``comparison.png``
  as artifacts) with a child run per strategy: its options as params, every metric with its
  bootstrap interval (``mae``, ``mae_ci95_low``, ``mae_ci95_high``, ...), ``n``, ``failed``,
  ``fallbacks``, ``seconds``, and its JSON and chart as artifacts.
- ``finetune``: one run: the configuration, base model and data as params, the final losses,
  the training curve (``metrics.csv``) step by step, and ``run.json``, ``metrics.csv`` and
  ``training.png`` as artifacts.

Why the file store needs a switch: MLflow 3 keeps its file store in maintenance mode and
refuses it unless ``MLFLOW_ALLOW_FILE_STORE=true``; its replacement, the SQLite store, needs
SQLAlchemy and alembic, which ``mlflow-skinny`` (the light package of the extra) does not ship.
So for a folder the switch is set for this process (``os.environ.setdefault``: a user's own
value wins). Runs are read back with ``MlflowClient(tracking_uri).search_runs(...)``, or shown
by ``mlflow ui --backend-store-uri var/mlruns`` (the full ``mlflow`` package).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag_pricer.evaluation.compare import ComparisonResult
    from rag_pricer.evaluation.results import EvaluationResult

INSTALL_HINT = "experiment tracking needs MLflow: pip install 'rag-pricer[track]' (or drop --track)"
#: MLflow refuses longer param values
MAX_PARAM_CHARS = 6000


class TrackingUnavailable(RuntimeError):
    """MLflow is not installed, or the tracking URI cannot be used."""


class Tracker:
    """Logs runs to the MLflow tracking store at ``uri`` under ``experiment``."""

    def __init__(self, uri: str | Path = "var/mlruns", experiment: str = "rag-pricer") -> None:
        self.uri = str(uri)
        self.experiment = experiment

    @classmethod
    def from_settings(cls, settings: Any) -> Tracker:
        return cls(settings.tracking_uri, settings.tracking_experiment)

    @property
    def is_folder(self) -> bool:
        return "://" not in self.uri and not self.uri.startswith("file:")

    @property
    def tracking_uri(self) -> str:
        """``uri`` as MLflow wants it: a folder becomes an absolute ``file://`` URI."""
        return Path(self.uri).resolve().as_uri() if self.is_folder else self.uri

    @cached_property
    def client(self) -> Any:
        """The ``MlflowClient``; ``TrackingUnavailable`` without MLflow. Call it before the work
        to be tracked, so that a missing extra fails at once, not after an hour of training."""
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise TrackingUnavailable(INSTALL_HINT) from None
        if self.is_folder or self.uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # see the module docstring
        return MlflowClient(tracking_uri=self.tracking_uri)

    def experiment_id(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        return found.experiment_id if found else self.client.create_experiment(self.experiment)

    def log_comparison(self, outcome: ComparisonResult, out_dir: Path, params: Mapping[str, Any]) -> str:
        """A parent run for the comparison and a child run per strategy; returns the parent's id."""
        parent = self._start("compare", params, tags={"rag_pricer.command": "compare"})
        if outcome.skipped:
            self.client.set_tag(parent, "skipped", "; ".join(f"{k}: {v}" for k, v in outcome.skipped.items())[:5000])
        for result in outcome.results:
            child_params = {**params, "strategy": result.strategy, **_prefixed("option", result.options)}
            child_tags = {"mlflow.parentRunId": parent, "rag_pricer.command": "compare"}
            child = self._start(result.strategy, child_params, tags=child_tags)
            self._metrics(child, result_metrics(result))
            for name in (f"{result.strategy}.json", f"{result.strategy}.png"):
                self._artifact(child, out_dir / name)
            self.client.set_terminated(child)
        for name in ("comparison.md", "comparison.png"):
            self._artifact(parent, out_dir / name)
        self.client.set_terminated(parent)
        return parent

    def log_finetune(self, record: Mapping[str, Any], folder: Path) -> str:
        """One run for a fine-tuning run folder (its ``run.json`` record); returns its id."""
        from rag_pricer.training.finetune.training_log import read_log

        params = {
            **_prefixed("config", record.get("config", {})),
            **_prefixed("data", record.get("data", {})),
            "base": (record.get("base") or {}).get("spec"),
            "folder": str(folder),
        }
        run = self._start(folder.name, params, tags={"rag_pricer.command": "finetune"})
        self._metrics(run, {f"final_{k}": v for k, v in (record.get("final") or {}).items()})
        for row in read_log(folder / "metrics.csv"):
            step, kind = int(row.get("step") or 0), row.get("kind") or "train"
            values = {"loss": row.get("loss"), "perplexity": row.get("perplexity")}
            if kind == "train":
                values |= {"learning_rate": row.get("learning_rate"), "tokens_per_s": row.get("tokens_per_s")}
            self._metrics(run, {f"{kind}_{k}": v for k, v in values.items()}, step=step)
        for name in ("run.json", "metrics.csv", "training.png"):
            self._artifact(run, folder / name)
        self.client.set_terminated(run)
        return run

    # ---------------------------------------------------------------------------------------

    def _start(self, name: str, params: Mapping[str, Any], tags: Mapping[str, str]) -> str:
        from mlflow.entities import Param

        run = self.client.create_run(self.experiment_id(), run_name=name, tags=dict(tags))
        kept = [Param(str(k), _param(v)) for k, v in params.items() if v is not None]
        if kept:
            self.client.log_batch(run.info.run_id, params=kept)
        return run.info.run_id

    def _metrics(self, run: str, values: Mapping[str, Any], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in values.items() if _number(v)]
        if metrics:
            self.client.log_batch(run, metrics=metrics)

    def _artifact(self, run: str, path: Path) -> None:
        if path.is_file():
            self.client.log_artifact(run, str(path))


def result_metrics(result: EvaluationResult) -> dict[str, float]:
    """An evaluation's metrics with their interval bounds, and its counts."""
    values: dict[str, float] = {
        "n": result.n,
        "failed": result.failed,
        "fallbacks": result.fallbacks,
        "seconds": result.seconds,
    }
    label = result.bootstrap.label
    for name, interval in result.metrics.items():
        values |= {name: interval.value, f"{name}_{label}_low": interval.low, f"{name}_{label}_high": interval.high}
    return values


def _prefixed(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{prefix}.{k}": v for k, v in values.items()}


def _param(value: Any) -> str:
    return str(value)[:MAX_PARAM_CHARS]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
