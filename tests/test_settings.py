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


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A project with a .env, and a subfolder to run commands from."""
    root = tmp_path / "project"
    (root / "notebooks" / "deeper").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (root / ".env").write_text("RAG_PRICER_COLLECTION=from_project\nRAG_PRICER_STORE_PATH=data/store\n")
    return root


def test_the_projects_env_is_found_from_a_subfolder_and_paths_resolve_against_it(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "notebooks" / "deeper")
    settings = Settings()
    assert settings.env_file == project.resolve() / ".env"
    assert settings.collection == "from_project"
    assert settings.store_path == project.resolve() / "data" / "store"  # from .env, relative to it
    assert settings.models_dir == project.resolve() / "var" / "models"  # a default, relative to it too
    assert settings.llm_cache_dir == project.resolve() / "var" / "llm-cache"
    assert settings.tracking_uri == str(project.resolve() / "var" / "mlruns")  # MLflow's file store, a folder too
    assert settings.items_path == project.resolve().parent / "shared" / "data" / "items.jsonl.gz"


def test_the_search_stops_at_the_projects_root(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / ".env").unlink()
    (project.parent / ".env").write_text("RAG_PRICER_COLLECTION=someone_elses\n")  # above the project: not ours
    monkeypatch.chdir(project / "notebooks")
    settings = Settings()
    assert settings.env_file is None and settings.collection == "products"
    assert settings.base_dir == project.resolve() and settings.store_path == project.resolve() / "var" / "store"


def test_paths_given_by_the_caller_are_kept_and_the_env_file_can_be_disabled(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "notebooks")
    settings = Settings(store_path=Path("here/store"), _env_file=None)
    assert settings.store_path == Path("here/store") and settings.env_file is None
    assert settings.collection == "products"  # the .env was not read
    copied = Settings().model_copy(update={"k": 3})
    assert copied.env_file == project.resolve() / ".env" and copied.base_dir == project.resolve()


def test_config_shows_the_env_file_used_and_read_only_commands_create_nothing(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    from rag_pricer.cli.app import app

    monkeypatch.chdir(project / "notebooks")
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    shown = CliRunner().invoke(app, ["config", "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["env_file"] == str(project.resolve() / ".env") and data["collection"] == "from_project"
    assert data["store_path"] == str(project.resolve() / "data" / "store")
    table = CliRunner().invoke(app, ["config"], terminal_width=200)
    assert str(project.resolve() / ".env") in table.stdout.replace("\n", "")
    listed = CliRunner().invoke(app, ["strategies", "--json"])
    assert listed.exit_code == 0, listed.output
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before  # no stray store or folder


@pytest.fixture()
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder outside any project, the current one for the test."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_outside_a_project_paths_resolve_in_the_checkout_not_the_current_folder(elsewhere: Path) -> None:
    import rag_pricer

    checkout = Path(rag_pricer.__file__).resolve().parents[1]
    settings = Settings()
    assert settings.base_dir == checkout != elsewhere
    assert (
        settings.models_dir == checkout / "var" / "models" and settings.llm_cache_dir == checkout / "var" / "llm-cache"
    )
    assert settings.env_file is None  # the checkout's .env is read inside it only


def test_installed_outside_a_project_the_files_go_to_the_users_data_folder(
    elsewhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag_pricer.settings as settings_module

    monkeypatch.setattr(settings_module, "package_checkout", lambda: None)  # a wheel install
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    settings = Settings()
    home = (tmp_path / "data" / "rag-pricer").resolve()
    assert settings.base_dir == home and settings.store_path == home / "var" / "store"
    assert settings.llm_cache_dir == home / "var" / "llm-cache"


def test_a_command_run_from_elsewhere_names_the_setting_and_writes_nothing_there(
    elsewhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    import rag_pricer.settings as settings_module
    from rag_pricer.cli.app import app

    monkeypatch.setattr(settings_module, "package_checkout", lambda: None)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for command in (["evaluate", "--strategy", "constant"], ["demo"], ["train-baselines", "--only", "constant"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "RAG_PRICER_ITEMS_PATH" in lines[0], (command, result.output)
    assert list(elsewhere.iterdir()) == []
