"""Experiment tracking: `compare --track` and `finetune --track` log to MLflow's local file store."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag_pricer.cli.app import app
from rag_pricer.settings import Settings
from rag_pricer.training.tracking import Tracker

runner = CliRunner()
mlflow = pytest.importorskip("mlflow", reason="the track extra (mlflow-skinny) is not installed")


@pytest.fixture()
def mlruns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh tracking folder, and MLflow's file-store switch unset: the Tracker must set it."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "false")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")  # restored to "absent" after the test
    folder = tmp_path / "mlruns"
    monkeypatch.setenv("RAG_PRICER_TRACKING_URI", str(folder))
    return folder


def runs_of(folder: Path, experiment: str = "rag-pricer") -> list[object]:
    client = mlflow.tracking.MlflowClient(folder.resolve().as_uri())
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r} in {folder}"
    return client.search_runs([found.experiment_id])


def artifacts(folder: Path, run_id: str) -> set[str]:
    return {a.path for a in mlflow.tracking.MlflowClient(folder.resolve().as_uri()).list_artifacts(run_id)}


def test_compare_track_logs_params_metrics_and_charts(
    settings: Settings, items_path: Path, mlruns: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_PRICER_STORE_PATH", str(settings.store_path))
    out = tmp_path / "compare"
    args = [
        "compare",
        "--strategies",
        "knn",
        "--items",
        str(items_path),
        "--split",
        "dev",
        "--limit",
        "20",
        "--out",
        str(out),
        "--resamples",
        "100",
        "--no-progress",
        "--track",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "tracked: MLflow run" in result.output

    runs = {r.info.run_name: r for r in runs_of(mlruns)}
    assert set(runs) == {"compare", "knn"}
    parent, knn = runs["compare"], runs["knn"]
    assert knn.data.tags["mlflow.parentRunId"] == parent.info.run_id
    written = json.loads((out / "knn.json").read_text())
    assert knn.data.metrics["mae"] == pytest.approx(written["mae"])
    assert [knn.data.metrics["mae_ci95_low"], knn.data.metrics["mae_ci95_high"]] == pytest.approx(written["mae_ci95"])
    assert knn.data.metrics["hit_rate"] == pytest.approx(written["hit_rate"]) and knn.data.metrics["n"] == 20
    assert (
        knn.data.params["strategy"] == "knn"
        and knn.data.params["split"] == "dev"
        and knn.data.params["n_items"] == "20"
    )
    assert {"knn.json", "knn.png"} <= artifacts(mlruns, knn.info.run_id)
    assert {"comparison.md", "comparison.png"} <= artifacts(mlruns, parent.info.run_id)


def test_track_without_mlflow_is_one_line_and_exit_2(
    mlruns: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "mlflow" or m.startswith("mlflow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` now fails as if not installed
    out = tmp_path / "compare"
    for args in (
        ["compare", "--strategies", "knn", "--out", str(out), "--track"],
        ["finetune", "--out", str(tmp_path / "ft"), "--track"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "rag-pricer[track]" in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "ft").exists() and not mlruns.exists()  # refused before any work


def test_track_setting_turns_it_on_and_no_track_off(mlruns: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rag_pricer.cli.common import tracker_for

    monkeypatch.setenv("RAG_PRICER_TRACK", "true")
    assert Settings(_env_file=None).track is True
    assert isinstance(tracker_for(Settings(_env_file=None)), Tracker)
    assert tracker_for(Settings(_env_file=None).model_copy(update={"track": False})) is None


def test_finetune_run_folder_is_logged_with_its_curve(mlruns: Path, tmp_path: Path) -> None:
    from rag_pricer.training.finetune.training_log import FIELDS

    folder = tmp_path / "finetuned"
    folder.mkdir()
    record = {
        "config": {"r": 8, "learning_rate": 2e-4, "k": 0},
        "base": {"spec": "smollm2"},
        "data": {"split": "train", "n_train": 64},
        "final": {"train_loss": 1.25, "eval_loss": 1.5, "steps": 4},
    }
    (folder / "run.json").write_text(json.dumps(record))
    (folder / "training.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with open(folder / "metrics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        writer.writerow({"step": 0, "kind": "eval", "loss": 2.0, "perplexity": 7.389})
        writer.writerow(
            {"step": 2, "kind": "train", "loss": 1.6, "perplexity": 4.953, "learning_rate": 2e-4, "tokens_per_s": 900}
        )
        writer.writerow(
            {"step": 4, "kind": "train", "loss": 1.25, "perplexity": 3.49, "learning_rate": 1e-4, "tokens_per_s": 950}
        )
        writer.writerow({"step": 4, "kind": "eval", "loss": 1.5, "perplexity": 4.48})

    run_id = Tracker(mlruns).log_finetune(record, folder)
    client = mlflow.tracking.MlflowClient(mlruns.resolve().as_uri())
    run = client.get_run(run_id)
    assert (
        run.data.params["config.r"] == "8"
        and run.data.params["base"] == "smollm2"
        and run.data.params["data.n_train"] == "64"
    )
    assert run.data.metrics["final_eval_loss"] == pytest.approx(1.5) and run.data.metrics["final_steps"] == 4
    curve = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "train_loss"))
    assert curve == [(2, pytest.approx(1.6)), (4, pytest.approx(1.25))]
    assert [m.step for m in client.get_metric_history(run_id, "eval_loss")] == [0, 4]
    assert artifacts(mlruns, run_id) == {"run.json", "metrics.csv", "training.png"}
