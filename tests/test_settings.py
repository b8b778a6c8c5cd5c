"""Settings come from the environment and .env; secrets never show."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_pricer.settings import Settings


def test_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("RAG_PRICER_COLLECTION=from_dotenv\nRAG_PRICER_K=7\nRAG_PRICER_LLM_CACHE_DIR=\n")
    monkeypatch.setenv("RAG_PRICER_STRATEGY", "rag")
    settings = Settings()
    assert settings.collection == "from_dotenv" and settings.k == 7 and settings.strategy == "rag"
    assert settings.llm_cache_dir is None  # empty means off, not "."


def test_secrets_are_never_shown(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    monkeypatch.setenv("RAG_PRICER_API_TOKEN", "tok-secret")
    settings = Settings()
    assert settings.openai_api_key is not None and settings.openai_api_key.get_secret_value() == "sk-very-secret"
    shown = repr(settings) + str(settings) + str(settings.public())
    assert "sk-very-secret" not in shown and "tok-secret" not in shown
    assert settings.public()["openai_api_key"] == "<set>"


def test_invalid_values_are_rejected(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAG_PRICER_K", "0")
    with pytest.raises(ValueError, match="k"):
        Settings()
