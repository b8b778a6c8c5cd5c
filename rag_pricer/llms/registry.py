"""LLM backends register here by name, like the plugins of the ``llm`` CLI.

A backend is a factory ``(argument, settings) -> PricingLLM`` for the specs ``name`` and
``name:argument``. Built-in backends live in ``BUILTIN_MODULES``; other packages add theirs
through the ``rag_pricer.llms`` entry-point group (each entry point names a module).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag_pricer.plugins import PluginRegistry

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


class BackendRegistry(PluginRegistry[BackendInfo]):
    def __init__(self) -> None:
        super().__init__(BUILTIN_MODULES, "rag_pricer.llms")

    def register(self, name: str, summary: str, example: str) -> Callable[[BackendFactory], BackendFactory]:
        def decorator(factory: BackendFactory) -> BackendFactory:
            self.add(BackendInfo(name, summary, example, factory))
            return factory

        return decorator

    def build(self, spec: str, settings: Settings) -> PricingLLM:
        """The ``PricingLLM`` for ``spec`` (``name`` or ``name:argument``)."""
        spec = (spec or "").strip()
        name, _, argument = spec.partition(":")
        backend = self.find(name)
        if backend is None:
            raise InvalidLLMSpec(f"unknown LLM backend {name!r} in spec {spec!r}; known: {', '.join(self.names())}")
        return backend.factory(argument.strip(), settings)


backend_registry = BackendRegistry()
register_backend = backend_registry.register
