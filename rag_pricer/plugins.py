"""Loading the modules that register strategies or LLM backends (built-in and third-party)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from importlib.metadata import entry_points


def import_plugins(builtin_modules: Iterable[str], group: str) -> None:
    """Import ``builtin_modules`` and every module named by an entry point of ``group``;
    importing a module runs its ``@register`` decorators."""
    for module in builtin_modules:
        importlib.import_module(module)
    for entry in entry_points(group=group):
        importlib.import_module(entry.value)
