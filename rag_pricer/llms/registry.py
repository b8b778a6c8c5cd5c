"""LLM backends register here by name, like the plugins of the ``llm`` CLI.

A backend is a factory ``(argument, settings) -> PricingLLM`` for the specs ``name`` and
``name:argument``. Built-in backends live in ``BUILTIN_MODULES``; other packages add theirs
through the ``rag_pricer.llms`` entry-point group (each entry point names a module).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag_pricer.plugins import import_plugins

if TYPE_CHECKING:
    from rag_pricer.llms.client import PricingLLM
    from rag_pricer.settings import Settings

BUILTIN_MODULES = ("rag_pricer.llms.backends",)

BackendFactory = Callable[[str, "Settings"], "PricingLLM"]


class InvalidLLMSpec(ValueError):
    """An LLM spec that names no backend, or that its backend cannot build."""


@dataclass(frozen=True)
class BackendInfo:
    name: str
    summary: str
    example: str
    factory: BackendFactory


class BackendRegistry:
    def __init__(self) -> None:
        self._backends: dict[str, BackendInfo] = {}
        self._loaded = False

    def register(self, name: str, summary: str, example: str) -> Callable[[BackendFactory], BackendFactory]:
        def decorator(factory: BackendFactory) -> BackendFactory:
            self._backends[name] = BackendInfo(name, summary, example, factory)
            return factory

        return decorator

    def _load(self) -> None:
        if self._loaded:
            return
        import_plugins(BUILTIN_MODULES, "rag_pricer.llms")
        self._loaded = True  # only now: a failed import is retried, not remembered as a half-filled registry

    def all(self) -> list[BackendInfo]:
        self._load()
        return sorted(self._backends.values(), key=lambda b: b.name)

    def build(self, spec: str, settings: Settings) -> PricingLLM:
        """The ``PricingLLM`` for ``spec`` (``name`` or ``name:argument``)."""
        self._load()
        spec = (spec or "").strip()
        name, _, argument = spec.partition(":")
        if name not in self._backends:
            known = ", ".join(b.name for b in self.all())
            raise InvalidLLMSpec(f"unknown LLM backend {name!r} in spec {spec!r}; known: {known}")
        return self._backends[name].factory(argument.strip(), settings)


backend_registry = BackendRegistry()
register_backend = backend_registry.register
