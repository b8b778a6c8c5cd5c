"""The strategy and LLM-backend registries: a plugin import that fails is not remembered as done."""

from __future__ import annotations

import importlib

import pytest

# By module path: the package re-exports the name `registry` as the registry object.
plugins = importlib.import_module("rag_pricer.plugins")
registry_module = importlib.import_module("rag_pricer.pricing.registry")
llm_registry_module = importlib.import_module("rag_pricer.llms.registry")


def test_a_failed_plugin_import_is_retried_not_half_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    for registry in (registry_module.Registry(), llm_registry_module.BackendRegistry()):
        attempts = []

        def flaky(builtin: object, group: str, registry: object = registry, attempts: list = attempts) -> None:
            attempts.append(group)
            if len(attempts) == 1:
                raise ImportError("a plugin's dependency is missing")
            registry.register(
                "late", "registered by the second import", *(("late",) if group.endswith("llms") else ())
            )(lambda *a: None)

        monkeypatch.setattr(plugins, "import_plugins", flaky)
        with pytest.raises(ImportError):
            registry.all()
        assert [entry.name for entry in registry.all()] == ["late"] and len(attempts) == 2


def test_a_shared_object_may_be_built_from_another_shared_object() -> None:
    import threading

    from rag_pricer.pricing.resources import Resources
    from rag_pricer.settings import Settings

    resources = Resources(Settings(_env_file=None))
    built: list[object] = []

    def build() -> None:  # a build that asks for another shared object must not deadlock
        built.append(resources.shared("outer", lambda: ("outer", resources.shared("inner", lambda: "inner"))))

    worker = threading.Thread(target=build, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert built == [("outer", "inner")] and resources.shared("inner", lambda: "rebuilt") == "inner"
