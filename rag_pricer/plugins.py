"""Registries filled by plugins: strategies and LLM backends register by name, like the plugins
of the ``llm`` CLI. Built-in entries live in modules imported on first use; other packages add
theirs through an entry-point group (each entry point names a module to import)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Generic, Protocol, TypeVar


class Named(Protocol):
    @property
    def name(self) -> str: ...


E = TypeVar("E", bound=Named)


def import_plugins(builtin_modules: Iterable[str], group: str) -> None:
    """Import ``builtin_modules`` and every module named by an entry point of ``group``;
    importing a module runs its ``@register`` decorators."""
    for module in builtin_modules:
        importlib.import_module(module)
    for entry in entry_points(group=group):
        importlib.import_module(entry.value)


class PluginRegistry(Generic[E]):
    """Entries by name, loaded from ``builtin_modules`` and the entry-point ``group`` on first
    read, so that listing them costs nothing until asked."""

    def __init__(self, builtin_modules: tuple[str, ...], group: str) -> None:
        self.builtin_modules = builtin_modules
        self.group = group
        self._entries: dict[str, E] = {}
        self._loaded = False

    def add(self, entry: E) -> None:
        self._entries[entry.name] = entry

    def _load(self) -> None:
        if self._loaded:
            return
        import_plugins(self.builtin_modules, self.group)
        self._loaded = True  # only now: a failed import is retried, not remembered as a half-filled registry

    def all(self) -> list[E]:
        self._load()
        return sorted(self._entries.values(), key=lambda entry: entry.name)

    def names(self) -> list[str]:
        return [entry.name for entry in self.all()]

    def find(self, name: str) -> E | None:
        self._load()
        return self._entries.get(name)
