"""The README's code blocks that say they run, run.

``<!-- runs -->`` before a block means this test executes it: Python against a small store with
the fake LLM, shell blocks line by line through the CLIs (so only ``rag-pricer`` and
``rag-pricer-ingest`` lines, and cheap ones). ``<!-- runs: tests/test_x.py -->`` means that test
executes it (it needs fixtures of its own)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingest.cli import app as ingest_app
from rag_pricer.cli.app import app as rag_app
from rag_pricer.knowledge.store import ProductStore

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"<!-- runs(?::\s*(?P<where>\S+))?\s*-->\n```(?P<lang>\w+)\n(?P<code>.*?)```", re.DOTALL)
APPS = {"rag-pricer": rag_app, "rag-pricer-ingest": ingest_app}


def blocks(lang: str, here: bool = True) -> list[str]:
    found = BLOCK.finditer((ROOT / "README.md").read_text(encoding="utf-8"))
    return [m["code"] for m in found if m["lang"] == lang and (m["where"] is None) == here]


def commands(block: str) -> list[list[str]]:
    """Each command of a shell block: continuations joined, comments dropped."""
    lines = block.replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True) for line in lines if shlex.split(line, comments=True)]


@pytest.fixture()
def project(
    prepared: tuple[Path, list[str], dict], items_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A folder whose var/store is a small store that `rag-pricer prepare` made ready for the
    default strategy (its models too), the fake LLM, nothing of a developer's .env."""
    store, models = prepared[0] / "store", prepared[0] / "models"
    folder = tmp_path / "project"
    (folder / "var").mkdir(parents=True)
    (folder / "var" / "store").symlink_to(store)
    monkeypatch.chdir(folder)
    environment = {
        "STORE_PATH": str(store),
        "COLLECTION": ProductStore(store).collection_name,
        "ITEMS_PATH": str(items_path),
        "MODELS_DIR": str(models),
        "LLM": "fake",
        "LLM_CACHE_DIR": "",
    }
    for name, value in environment.items():
        monkeypatch.setenv(f"RAG_PRICER_{name}", value)
    return folder


def test_the_readme_has_runnable_blocks_of_each_kind() -> None:
    assert blocks("python") and blocks("bash")


def test_python_blocks_run(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for code in blocks("python"):
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the README's own code, the point of the test
    assert "$" in capsys.readouterr().out


def test_shell_blocks_run(project: Path) -> None:
    for block in blocks("bash"):
        for command in commands(block):
            assert command[0] in APPS, f"a runnable block runs rag-pricer commands only, not {command[0]!r}"
            result = CliRunner().invoke(APPS[command[0]], command[1:])
            assert result.exit_code == 0, (command, result.output)
    assert [p.name for p in project.iterdir()] == ["var"]  # nothing written where the commands ran
    assert [p.name for p in (project / "var").iterdir()] == ["store"]


def test_blocks_run_elsewhere_name_the_test_that_runs_them() -> None:
    found = BLOCK.finditer((ROOT / "README.md").read_text(encoding="utf-8"))
    for where in {m["where"] for m in found if m["where"]}:
        assert f"<!-- runs: {where}" in (ROOT / where).read_text(encoding="utf-8"), where
