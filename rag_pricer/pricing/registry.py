"""Strategies register here by name; the CLI, the HTTP service and the evaluation harness all
build their pricers through this one registry.

A strategy is a factory ``(resources, **options) -> Pricer`` decorated with ``@register``.
Built-in strategies live in the modules of ``BUILTIN_MODULES``; other packages can add theirs
through the ``rag_pricer.strategies`` entry-point group (each entry point names a module).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag_pricer.plugins import PluginRegistry

if TYPE_CHECKING:
    from rag_pricer.pricing.pricer import Pricer
    from rag_pricer.pricing.resources import Resources

BUILTIN_MODULES = (
    "rag_pricer.strategies.knn",
    "rag_pricer.strategies.zero_shot",
    "rag_pricer.strategies.rag",
    "rag_pricer.strategies.finetuned",
    "rag_pricer.strategies.baselines.strategies",
    "rag_pricer.strategies.ensemble.strategy",
)

#: what a strategy may need; the harness uses it to pick what can run on a machine
NEEDS = {"store": "the knowledge base", "llm": "a chat model", "trained": "models from train-baselines",
         "adapter": "a LoRA adapter from `rag-pricer finetune`", "gpu": "a GPU",
         "dev-fitted": "a model fitted on dev (`rag-pricer train-ensemble`): its dev figures are cross-fitted, "
                       "it cannot score dev itself"}  # fmt: skip

Factory = Callable[..., "Pricer"]


class UnknownStrategy(KeyError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.message = f"unknown strategy {name!r}; known: {', '.join(known)}"

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Strategy:
    name: str
    summary: str
    factory: Factory
    needs: tuple[str, ...] = ()

    def options(self) -> list[str]:
        """The keyword options this strategy accepts (from its factory's signature)."""
        params = list(inspect.signature(self.factory).parameters.values())[1:]
        return [p.name for p in params if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD]

    def build(self, resources: Resources, **options: Any) -> Pricer:
        accepted = set(self.options())
        pricer = self.factory(resources, **{k: v for k, v in options.items() if k in accepted and v is not None})
        pricer.name = self.name
        return pricer


class Registry(PluginRegistry[Strategy]):
    def __init__(self) -> None:
        super().__init__(BUILTIN_MODULES, "rag_pricer.strategies")

    def register(self, name: str, summary: str, needs: tuple[str, ...] = ()) -> Callable[[Factory], Factory]:
        unknown = set(needs) - set(NEEDS)
        if unknown:
            raise ValueError(f"unknown needs {sorted(unknown)}; choose from {sorted(NEEDS)}")

        def decorator(factory: Factory) -> Factory:
            self.add(Strategy(name, summary, factory, tuple(needs)))
            return factory

        return decorator

    def get(self, name: str) -> Strategy:
        strategy = self.find(name)
        if strategy is None:
            raise UnknownStrategy(name, self.names())
        return strategy


registry = Registry()
register = registry.register
