"""Readiness: which strategies can price here, and the exact command for the others. Cheap:
files are looked at, nothing is loaded (a fake store is an empty ``chroma.sqlite3``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import rag_pricer.pricing.registry as registry_module
from rag_pricer.cli.app import app
from rag_pricer.items import Item
from rag_pricer.llms.reply import LLMError
from rag_pricer.pricing.readiness import STATUSES, Readiness, StrategyNotReady
from rag_pricer.pricing.registry import Strategy, registry
from rag_pricer.settings import Settings
from rag_pricer.strategies.baselines.catalog import BASELINES
from rag_pricer.strategies.baselines.constant import ConstantBaseline
from rag_pricer.strategies.ensemble.model import EnsembleModel


@pytest.fixture()
def fresh(tmp_path: Path) -> Settings:
    """A machine with a (fake) store, nothing trained, the scripted LLM."""
    store = tmp_path / "store"
    store.mkdir()
    (store / "chroma.sqlite3").write_bytes(b"")
    return Settings(
        _env_file=None,
        store_path=store,
        models_dir=tmp_path / "models",
        llm="fake",
        llm_cache_dir=None,
        items_path=tmp_path / "items.jsonl.gz",
    )


def train_constant(models_dir: Path) -> None:
    items = [
        Item(id=f"i{n}", title=f"thing {n}", text=f"a thing {n}", price=10.0 + n, category="Tools") for n in range(5)
    ]
    ConstantBaseline().fit(items).save(models_dir / "constant")


def test_a_fresh_models_dir_shows_baselines_as_needing_training_with_the_command(fresh: Settings) -> None:
    states = {s.name: s for s in Readiness(fresh).all()}
    assert set(states) == set(registry.names()) and all(s.status in STATUSES for s in states.values())
    for name in BASELINES:
        assert states[name].status == "needs-training" and not states[name].ready
        assert states[name].hint == f"rag-pricer train-baselines --items {fresh.items_path} --split train --only {name}"
        assert str(fresh.models_dir / name) in (states[name].detail or "")
    assert states["finetuned"].hint == f"rag-pricer finetune --items {fresh.items_path} --split train"
    assert states["rag-finetuned"].hint == f"rag-pricer finetune --items {fresh.items_path} --split train --k 5"
    assert states["ensemble"].hint == "rag-pricer prepare"  # the default: one command makes it ready
    assert states["knn"].ready and states["knn"].hint is None and states["knn"].llm is None
    assert states["rag"].ready and states["rag"].llm == "fake" and not states["rag"].llm_checked


def test_a_trained_baseline_is_ready(fresh: Settings) -> None:
    train_constant(fresh.models_dir)
    readiness = Readiness(fresh)
    assert readiness.of("constant").ready and readiness.of("constant").status == "ready"
    assert readiness.of("bow").status == "needs-training"


def test_a_missing_store_is_named_with_the_command_that_builds_it_and_never_created(
    fresh: Settings, tmp_path: Path
) -> None:
    settings = fresh.model_copy(update={"store_path": tmp_path / "no-store"})
    state = Readiness(settings).of("knn")
    assert state.status == "needs-store"
    assert state.hint == f"rag-pricer-ingest index {fresh.items_path} --split train --store {tmp_path / 'no-store'}"
    assert Readiness(settings).of("rag").status == "needs-store"  # the store comes before the LLM
    assert Readiness(settings).of("bow").status == "needs-training"  # baselines need no store
    assert not (tmp_path / "no-store").exists()


def test_an_llm_that_cannot_be_built_or_does_not_answer_is_needs_llm(fresh: Settings, tmp_path: Path) -> None:
    no_model = Readiness(fresh.model_copy(update={"llm": f"local:{tmp_path / 'none.gguf'}"})).of("rag")
    assert no_model.status == "needs-llm" and "none.gguf" in (no_model.detail or "") and no_model.hint
    no_key = Readiness(fresh.model_copy(update={"llm": "openai:gpt-4o-mini", "openai_api_key": None})).of("zero-shot")
    assert no_key.status == "needs-llm" and "OPENAI_API_KEY" in (no_key.detail or "")
    assert Readiness(fresh).of("rag", llm="nonsense-backend").status == "needs-llm"

    class Silent:
        spec = "silent"

        def ask(self, messages: Any) -> Any:
            raise LLMError("timeout", "no answer within 1 s")

    silent: Any = lambda spec: Silent()  # noqa: E731
    asked = Readiness(fresh, check=True, llm_factory=silent).of("rag")
    assert asked.status == "needs-llm" and "did not answer" in (asked.detail or "")
    assert Readiness(fresh, check=False, llm_factory=silent).of("rag").ready  # looked at, not asked
    checked = Readiness(fresh, check=True).of("rag")  # the fake LLM answers for real
    assert checked.ready and checked.llm_checked


def test_finetuned_runs_and_the_ensemble_are_ready_only_when_finished_with_their_bases(fresh: Settings) -> None:
    run = fresh.models_dir / "finetuned"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"status": "training"}))
    unfinished = Readiness(fresh).of("finetuned")
    assert (
        unfinished.status == "needs-training"
        and "has not finished" in (unfinished.detail or "")
        and "resumes" in (unfinished.hint or "")
    )
    (run / "run.json").write_text(json.dumps({"status": "finished"}))
    (run / "adapter").mkdir()
    assert Readiness(fresh).of("finetuned").ready
    elsewhere = Readiness(fresh).of("rag-finetuned", options={"run": str(run)})  # the option names the run to load
    assert elsewhere.ready and Readiness(fresh).of("rag-finetuned").status == "needs-training"

    model = EnsembleModel(["knn", "constant"], kind="blend").fit(
        np.log([[10.0, 12.0], [20.0, 18.0], [30.0, 33.0]]), np.array([11.0, 19.0, 31.0])
    )
    (fresh.models_dir / "ensemble").mkdir()
    model.save(fresh.models_dir / "ensemble")
    lacking = Readiness(fresh).of("ensemble")
    assert (
        lacking.status == "needs-training"
        and "'constant'" in (lacking.detail or "")
        and "--only constant" in (lacking.hint or "")
    )
    train_constant(fresh.models_dir)
    assert Readiness(fresh).of("ensemble").ready


def test_a_missing_extra_or_gpu_is_named(fresh: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_module, "_absent", lambda module: module == "lightgbm")  # an install without ml
    state = Readiness(fresh).of("bow")
    assert state.status == "needs-extra" and state.hint == "pip install 'rag-pricer[ml]'"
    gpu_only = Strategy("gpu-only", "test", lambda resources: None, ("gpu",))  # type: ignore[arg-type,return-value]
    assert Readiness(fresh, gpu=lambda: False).of(gpu_only).status == "needs-gpu"
    assert Readiness(fresh, gpu=lambda: True).of(gpu_only).ready


def test_require_raises_with_the_command(fresh: Settings) -> None:
    with pytest.raises(StrategyNotReady, match=r"'bow' is not ready \(needs-training\).*rag-pricer train-baselines"):
        Readiness(fresh).require("bow")
    assert Readiness(fresh).require("knn").ready


def test_cli_strategies_json_says_which_are_ready(
    fresh: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    train_constant(fresh.models_dir)
    monkeypatch.chdir(tmp_path)
    for name in ("store_path", "models_dir", "items_path", "llm"):
        monkeypatch.setenv(f"RAG_PRICER_{name.upper()}", str(getattr(fresh, name)))
    result = CliRunner().invoke(app, ["strategies", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert (
        rows["constant"]["ready"] is True and rows["constant"]["status"] == "ready" and rows["constant"]["hint"] is None
    )
    assert rows["bow"]["ready"] is False and rows["bow"]["status"] == "needs-training"
    assert rows["bow"]["hint"].startswith("rag-pricer train-baselines --items ")
    assert rows["rag"]["llm"] == "fake" and {"needs", "options", "summary"} <= set(rows["rag"])
    shown = CliRunner().invoke(app, ["strategies"], terminal_width=250)
    assert "needs-training" in shown.stdout
    # one line for the baselines one `train-baselines` run would train, not one line each
    advice = [line for line in shown.stdout.splitlines() if "rag-pricer train-baselines" in line]
    assert len(advice) == 1 and "bow, " in advice[0] and "constant" not in advice[0], advice


def test_one_vocabulary_of_strategy_states() -> None:
    """The registry owns the states; readiness, the CLI and the HTTP schema say the same words."""
    from typing import get_args

    from rag_pricer.pricing.registry import STATUSES as OWNED
    from rag_pricer.service.schemas import StrategyStatus

    assert STATUSES is OWNED and get_args(StrategyStatus) == OWNED
