"""The test suite itself: it runs the same on every developer's machine and set-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_a_missing_browser_fails_the_browser_tests_but_not_the_fast_suite(tmp_path: Path) -> None:
    env = dict(os.environ, RAG_PRICER_CHROMIUM=str(tmp_path / "no-chromium"))
    fast = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider", "tests/test_browser.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert fast.returncode == 5, fast.stdout[-2000:]  # 5: every test deselected, no collection error


def test_the_settings_fixture_ignores_a_developers_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    (tmp_path / ".env").write_text("RAG_PRICER_LLM_TIMEOUT_S=1234\nRAG_PRICER_LLM=openai:gpt-4o\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    settings = request.getfixturevalue("settings")
    assert settings.llm_timeout_s != 1234 and settings.llm == "fake"


def test_tests_that_build_the_store_or_export_onnx_are_slow() -> None:
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-m",
            "not slow",
            "-p",
            "no:cacheprovider",
            "tests/test_knn.py",
            "tests/test_embeddings.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    collected = [line for line in listed.stdout.splitlines() if "::" in line]
    assert not any(
        "test_knn.py::test_knn_prices" in line or "test_onnx_fp32_reproduces_torch" in line for line in collected
    ), collected
    assert any("test_weighted_price_arithmetic_and_geometric" in line for line in collected)  # the light ones stay
