"""``rag-pricer doctor``: each part checked on its own, failures reported, not raised."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag_pricer.cli.app import app
from rag_pricer.diagnostics import Doctor, cpu_flags
from rag_pricer.llms.reply import LLMError
from rag_pricer.settings import Settings

pytestmark = pytest.mark.slow  # loads the embedding model and the local LLM


def by_part(findings: list) -> dict:
    return {f.part: f for f in findings}


def test_a_working_setup_is_all_ok_and_an_unset_endpoint_is_skipped(settings: Settings) -> None:
    findings = by_part(Doctor(settings.model_copy(update={"llm": "local"})).run())
    assert {p: f.status for p, f in findings.items()} == {
        "cpu": "ok",
        "store": "ok",
        "embedder": "ok",
        "knn": "ok",
        "local LLM": "ok",
        "configured LLM": "skipped",
        "strategies": "ok",
    }
    strategies = findings["strategies"].detail
    assert strategies.startswith("ready: ") and "knn" in strategies.split(";")[0]
    assert "needs-training: " in strategies and "bow" in strategies and "`rag-pricer strategies`" in strategies
    assert "400 products" in findings["store"].detail and "384 dimensions" in findings["embedder"].detail
    assert findings["cpu"].detail.startswith("AMX:") == any(flag.startswith("amx") for flag in cpu_flags())


def test_a_missing_store_fails_its_part_and_skips_what_needs_it(settings: Settings, tmp_path: Path) -> None:
    missing = tmp_path / "no-store"
    findings = by_part(Doctor(settings.model_copy(update={"store_path": missing, "llm": "fake:42"})).run())
    assert findings["store"].status == "failed" and "rag-pricer-ingest index" in findings["store"].detail
    assert findings["knn"].status == "skipped" and findings["embedder"].status == "ok"
    assert not missing.exists()  # checking never creates a store


def test_a_crashing_local_model_is_a_finding(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    doctor = Doctor(settings)

    def crashed(spec: str | None = None) -> object:
        raise LLMError("crashed", "the local model runtime died while complete() (signal SIGSEGV)")

    monkeypatch.setattr(doctor.estimator.resources, "llm", crashed)
    local = by_part(doctor.run())["local LLM"]
    assert local.status == "failed" and "SIGSEGV" in local.detail


def test_cli_exit_code_and_json(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_PRICER_COLLECTION", "products")
    monkeypatch.setenv("RAG_PRICER_LLM_CACHE_DIR", "")
    ok = CliRunner().invoke(app, ["doctor", "--store", str(settings.store_path), "--llm", "fake:42", "--json"])
    assert ok.exit_code == 0, ok.output
    assert {f["part"]: f["status"] for f in json.loads(ok.stdout)}["configured LLM"] == "skipped"
    bad = CliRunner().invoke(app, ["doctor", "--store", str(tmp_path / "absent"), "--llm", "fake:42", "--json"])
    assert bad.exit_code == 1 and {f["part"]: f["status"] for f in json.loads(bad.stdout)}["store"] == "failed"
