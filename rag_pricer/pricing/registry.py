"""Strategies register here by name; the CLI, the HTTP service and the evaluation harness all
build their pricers through this one registry.

A strategy is a factory ``(resources, options) -> Pricer`` decorated with
``@register(name, summary, needs=..., options=MyOptions, extra=...)``. ``MyOptions`` is a
``StrategyOptions`` model (typed fields with defaults and descriptions, unknown names
forbidden): ``Strategy.build`` validates what it is given against it, so a typo or a bad value
is an ``InvalidOptions`` error, never silently dropped, and the pricer keeps the validated
options (defaults filled in) in ``Pricer.options``. A factory registered without ``options``
(plugins, tests) gets a model made from its keyword parameters and is called with keywords.
``extra`` names the pip extra the strategy needs beyond the core install: its modules import
that extra's packages only when building, so the registry lists every strategy on any install
and ``missing_extra`` says which ones cannot be built there.

A strategy that loads trained models also registers ``models``: ``(settings, options) ->
Missing | None``, a cheap look at its files that says what is missing and the command that makes
it (``readiness.Readiness`` uses it to list the strategies that are ready). ``Status`` is the one
vocabulary of a strategy's state, here with the registry that owns it.

Built-in strategies live in the modules of ``BUILTIN_MODULES``; other packages can add theirs
through the ``rag_pricer.strategies`` entry-point group (each entry point names a module).
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from rag_pricer.plugins import PluginRegistry

if TYPE_CHECKING:
    from rag_pricer.pricing.pricer import Pricer
    from rag_pricer.pricing.resources import Resources
    from rag_pricer.settings import Settings

BUILTIN_MODULES = (
    "rag_pricer.strategies.knn",
    "rag_pricer.strategies.zero_shot",
    "rag_pricer.strategies.rag",
    "rag_pricer.strategies.finetuned",
    "rag_pricer.strategies.baselines.strategies",
    "rag_pricer.strategies.ensemble.strategy",
)

#: what a strategy may need; the harness uses it to pick what can run on a machine
NEEDS = {
    "store": "the knowledge base",
    "llm": "a chat model",
    "trained": "models from train-baselines",
    "adapter": "a LoRA adapter from `rag-pricer finetune`",
    "gpu": "a GPU",
    "dev-fitted": "a model fitted on dev (`rag-pricer train-ensemble`): its dev figures are cross-fitted, "
    "it cannot score dev itself",
}

#: the pip extras a strategy may need beyond the core install, and the modules that tell
#: whether one is installed (the core install runs ingest, knn, evaluate, compare, estimate)
EXTRAS: dict[str, tuple[str, ...]] = {
    "llm": ("langchain_core", "langchain_openai", "openai"),
    "ml": ("lightgbm", "gensim", "skops"),  # not sklearn: sentence-transformers brings it to every install
    "finetune": ("peft", "gguf"),
}

#: a strategy's state: ready, or what it needs first (``readiness.Readiness`` decides which)
Status = Literal["ready", "needs-training", "needs-llm", "needs-store", "needs-extra", "needs-gpu"]
STATUSES: tuple[Status, ...] = get_args(Status)


@dataclass(frozen=True)
class Missing:
    """What a strategy lacks (``detail``) and the one line to run or set that provides it (``hint``)."""

    status: Status
    detail: str
    hint: str | None = None


Factory = Callable[..., "Pricer"]
#: what a strategy's trained models lack, looked at without loading them (``None``: nothing)
ModelsCheck = Callable[["Settings", Mapping[str, Any]], Missing | None]


class UnknownStrategy(KeyError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.message = f"unknown strategy {name!r}; known: {', '.join(known)}"

    def __str__(self) -> str:
        return self.message


class InvalidOptions(ValueError):
    """Options a strategy does not have, or values of the wrong type; the message lists the valid ones."""


class MissingExtra(ImportError):
    """The strategy needs a pip extra that is not installed; the message says how to install it."""


class StrategyOptions(BaseModel):
    """The options of one strategy: subclass it with typed fields, each with a default and a
    one-line ``description``. Unknown names are refused; text (``-o k=7``) is coerced."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def missing_extra(strategy: Strategy) -> str | None:
    """The pip extra that ``strategy`` needs and this install lacks (``"llm"``, ``"ml"``, ...),
    or ``None`` when it can be built here as far as packages go."""
    if strategy.extra is None:
        return None
    modules = EXTRAS.get(strategy.extra, ())
    return strategy.extra if any(_absent(module) for module in modules) else None


def _absent(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a parent package missing, or a module blocked in sys.modules
        return True


def _options_from_signature(name: str, factory: Factory) -> type[StrategyOptions]:
    """A model of ``factory``'s keyword parameters, for strategies registered without one."""
    fields: dict[str, Any] = {}
    try:
        hints = inspect.get_annotations(factory, eval_str=True)
    except Exception:  # names only imported for type checking: such options are taken as they come
        hints = {}
    for param in list(inspect.signature(factory).parameters.values())[1:]:
        if param.kind in (param.KEYWORD_ONLY, param.POSITIONAL_OR_KEYWORD):
            default = None if param.default is param.empty else param.default
            # unannotated: typed by a plain default, so that "5" from the command line is 5
            guessed = type(default) if isinstance(default, (bool, int, float, str)) else Any
            fields[param.name] = (hints.get(param.name, guessed), default)
    model_name = "".join(part.title() for part in name.replace("_", "-").split("-")) + "Options"
    return create_model(model_name, __base__=StrategyOptions, **fields)


def type_name(annotation: Any) -> str:
    """``int``, ``str | None``, ``arithmetic | geometric``: an option's type as a user reads it."""
    if get_origin(annotation) is Literal:
        return " | ".join(str(value) for value in get_args(annotation))
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


@dataclass(frozen=True)
class OptionInfo:
    name: str
    type: str
    default: Any
    description: str


@dataclass(frozen=True)
class Strategy:
    name: str
    summary: str
    factory: Factory
    needs: tuple[str, ...] = ()
    #: the options model; ``None``: made from the factory's keyword parameters
    options_model: type[StrategyOptions] | None = None
    #: the pip extra the strategy needs beyond the core install
    extra: str | None = None

    @cached_property
    def schema(self) -> type[StrategyOptions]:
        return self.options_model or _options_from_signature(self.name, self.factory)

    #: a cheap look at the strategy's trained files (``None``: it trains nothing)
    models: ModelsCheck | None = None

    def options(self) -> list[str]:
        """The names of the options this strategy accepts."""
        return list(self.schema.model_fields)

    def option_info(self) -> list[OptionInfo]:
        """Each option with its type, default and description."""
        fields = self.schema.model_fields.items()
        return [
            OptionInfo(name, type_name(f.annotation), f.get_default(call_default_factory=True), f.description or "")
            for name, f in fields
        ]

    def accepts(self, name: str) -> bool:
        return name in self.schema.model_fields

    def validate(self, options: StrategyOptions | Mapping[str, Any] | None = None) -> StrategyOptions:
        """``options`` checked against the strategy's model, defaults filled in; ``None`` values
        mean "not given". Unknown names or bad values raise ``InvalidOptions``. Options already
        validated for this strategy (an instance of its model) are returned as they are."""
        schema = self.schema
        if isinstance(options, schema):
            return options
        if isinstance(options, StrategyOptions):
            raise InvalidOptions(f"{self.name}: these are {type(options).__name__}, not {schema.__name__}")
        given = {k: v for k, v in (options or {}).items() if v is not None}
        try:
            return schema.model_validate(given)
        except ValidationError as error:
            problems = [_problem(e) for e in error.errors()]
            valid = ", ".join(f"{o.name} ({o.type}, default {o.default!r})" for o in self.option_info()) or "none"
            raise InvalidOptions(f"{self.name}: {'; '.join(problems)}. Valid options: {valid}") from None

    def build(
        self, resources: Resources, options: StrategyOptions | Mapping[str, Any] | None = None, /, **given: Any
    ) -> Pricer:
        """The pricer with its options: a validated ``StrategyOptions`` (used as it is), or a
        mapping or keywords, validated here (``InvalidOptions``); ``MissingExtra`` when the
        install lacks the strategy's extra."""
        if options is not None and given:
            raise TypeError("pass the options as one object or as keywords, not both")
        validated = self.validate(options if options is not None else given)
        extra = missing_extra(self)
        if extra is not None:
            raise MissingExtra(f"the {self.name} strategy needs the {extra!r} extra: pip install 'rag-pricer[{extra}]'")
        if self.options_model is None:
            pricer = self.factory(resources, **validated.model_dump())
        else:
            pricer = self.factory(resources, validated)
        pricer.name = self.name
        pricer.options = validated.model_dump(mode="json", fallback=repr)
        return pricer


def _problem(error: Any) -> str:
    name = ".".join(str(part) for part in error.get("loc", ())) or "options"
    if error.get("type") == "extra_forbidden":
        return f"unknown option {name!r}"
    return f"option {name!r}: {error.get('msg', 'invalid')} (got {error.get('input')!r})"


class Registry(PluginRegistry[Strategy]):
    def __init__(self) -> None:
        super().__init__(BUILTIN_MODULES, "rag_pricer.strategies")

    def register(
        self,
        name: str,
        summary: str,
        needs: tuple[str, ...] = (),
        options: type[StrategyOptions] | None = None,
        extra: str | None = None,
        models: ModelsCheck | None = None,
    ) -> Callable[[Factory], Factory]:
        unknown = set(needs) - set(NEEDS)
        if unknown:
            raise ValueError(f"unknown needs {sorted(unknown)}; choose from {sorted(NEEDS)}")
        if extra is not None and extra not in EXTRAS:
            raise ValueError(f"unknown extra {extra!r}; choose from {sorted(EXTRAS)}")

        def decorator(factory: Factory) -> Factory:
            self.add(Strategy(name, summary, factory, tuple(needs), options, extra, models))
            return factory

        return decorator

    def get(self, name: str) -> Strategy:
        strategy = self.find(name)
        if strategy is None:
            raise UnknownStrategy(name, self.names())
        return strategy


registry = Registry()
register = registry.register
