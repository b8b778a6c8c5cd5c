"""``Readiness``: whether each strategy can price on this machine now, and if not, what to run.

One place answers it for ``rag-pricer strategies``, ``GET /v1/strategies`` (and so the web
page), the service's refusal of a strategy that is not ready, and ``rag-pricer doctor``. The
checks are cheap (files, imports found, an LLM built but not loaded) so that a listing costs
nothing; ``check=True`` also asks each LLM one short question under a timeout (and a Chroma
server whether it answers).

A strategy is checked in the order a user would fix it: a missing extra, a GPU, the store, its
trained models (the strategy's own ``models`` check), then its LLM.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from rag_pricer.pricing.registry import (
    STATUSES,
    Missing,
    Registry,
    Status,
    Strategy,
    StrategyOptions,
    missing_extra,
)
from rag_pricer.pricing.registry import registry as default_registry
from rag_pricer.settings import Settings

if TYPE_CHECKING:
    from rag_pricer.llms.client import PricingLLM
    from rag_pricer.llms.reply import LLMReply

__all__ = ["STATUSES", "Missing", "Readiness", "Status", "StrategyNotReady", "StrategyReadiness", "gpu_available"]

#: the package each LLM backend runs on, and the extra that installs it (found, not imported:
#: importing llama.cpp loads its native library)
RUNTIMES = {
    "local": ("llama_cpp", "llama"),
    "transformers": ("transformers", "llm"),
    "openai": ("langchain_openai", "llm"),
    "openai-compatible": ("langchain_openai", "llm"),
}
#: the product of the ``check`` question, answered in a few tokens by any chat model
PROBE_ITEM = "Stainless steel chef's knife, 8 inch"


@dataclass(frozen=True)
class StrategyReadiness:
    """A strategy's state: ``status`` is ``ready`` or what it needs first; ``llm`` the LLM spec it
    would use (LLM strategies only) and ``llm_checked`` whether that LLM answered a real question (``check``)."""

    name: str
    status: Status
    detail: str | None = None
    hint: str | None = None
    llm: str | None = None
    llm_checked: bool = False

    @property
    def ready(self) -> bool:
        return self.status == "ready"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ready": self.ready}

    def anonymised(self, settings: Settings) -> StrategyReadiness:
        """This state with the paths of ``settings`` named instead (ITEMS, STORE, MODELS_DIR):
        what the HTTP service shows callers, who must not learn the server's folders."""
        paths = (settings.items_path, settings.store_path, settings.models_dir)
        names = dict(zip(map(str, paths), ("ITEMS", "STORE", "MODELS_DIR")))

        def hide(text: str | None) -> str | None:
            for path, name in sorted(names.items(), key=lambda pair: -len(pair[0])):  # the longest first
                text = text.replace(path, name) if text else text
            return text

        return replace(self, detail=hide(self.detail), hint=hide(self.hint))


class StrategyNotReady(RuntimeError):
    """A strategy asked for that cannot price here: ``readiness`` says why and what to run."""

    def __init__(self, readiness: StrategyReadiness) -> None:
        self.readiness = readiness
        hint = f"; to fix: {readiness.hint}" if readiness.hint else ""
        super().__init__(f"strategy {readiness.name!r} is not ready ({readiness.status}): {readiness.detail}{hint}")


def gpu_available() -> bool:
    """Whether torch sees a CUDA device (imported only when asked: torch takes seconds)."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def ask_probe(llm: PricingLLM, description: str = PROBE_ITEM) -> LLMReply:
    """One short real question to ``llm``: the price of ``description``, prefilled where the model allows it."""
    from langchain_core.messages import AIMessage, HumanMessage

    question = f"How much does this cost to the nearest dollar?\n\n{description}\n\nPrice is $"
    return llm.ask([HumanMessage(question), AIMessage("Price is $")])


class Readiness:
    """Checks strategies against ``settings``. ``llm_factory`` builds the LLM of a spec (default:
    a fresh one from the settings; the service passes its shared ``Resources.llm``);
    ``check`` asks each LLM one question, bounded by ``llm_timeout_s`` and never retried, and a
    Chroma server (never opened otherwise) whether it answers.
    Results of the shared parts (store, each LLM) are kept for the object's life."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry = default_registry,
        *,
        check: bool = False,
        llm_timeout_s: float = 20.0,
        llm_factory: Callable[[str], PricingLLM] | None = None,
        gpu: Callable[[], bool] = gpu_available,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.check = check
        self.llm_timeout_s = llm_timeout_s
        self.llm_factory = llm_factory
        self.gpu = gpu
        self._memo: dict[str, Missing | None] = {}

    def all(self) -> list[StrategyReadiness]:
        return [self.of(strategy) for strategy in self.registry.all()]

    def of(
        self,
        strategy: Strategy | str,
        llm: str | None = None,
        options: StrategyOptions | Mapping[str, Any] | None = None,
    ) -> StrategyReadiness:
        """``strategy``'s readiness; ``llm`` is the spec a request asks for (default: settings
        ``llm``), ``options`` its strategy options (e.g. ``run``: another fine-tuned run)."""
        strategy = self.registry.get(strategy) if isinstance(strategy, str) else strategy
        if isinstance(options, StrategyOptions):
            options = options.model_dump()
        spec = (llm or self.settings.llm) if "llm" in strategy.needs else None
        checks: list[Callable[[], Missing | None]] = [
            lambda: self._extra(strategy),
            lambda: self._remembered("gpu", self._gpu) if "gpu" in strategy.needs else None,
            lambda: self._remembered("store", self._store) if "store" in strategy.needs else None,
            lambda: strategy.models(self.settings, options or {}) if strategy.models is not None else None,
            lambda: self._remembered(f"llm:{spec}", lambda: self._llm(spec)) if spec else None,
        ]
        for check in checks:
            missing = check()
            if missing is not None:
                return StrategyReadiness(strategy.name, missing.status, missing.detail, missing.hint, spec)
        return StrategyReadiness(strategy.name, "ready", llm=spec, llm_checked=bool(spec) and self.check)

    def require(
        self,
        strategy: Strategy | str,
        llm: str | None = None,
        options: StrategyOptions | Mapping[str, Any] | None = None,
    ) -> StrategyReadiness:
        """``of(strategy)``, raising ``StrategyNotReady`` unless it is ready."""
        readiness = self.of(strategy, llm, options)
        if not readiness.ready:
            raise StrategyNotReady(readiness)
        return readiness

    # -- the parts ---------------------------------------------------------------------------

    def _remembered(self, key: str, check: Callable[[], Missing | None]) -> Missing | None:
        if key not in self._memo:
            self._memo[key] = check()
        return self._memo[key]

    def _extra(self, strategy: Strategy) -> Missing | None:
        extra = missing_extra(strategy)
        if not extra:
            return None
        return Missing("needs-extra", f"the {extra!r} extra is not installed", f"pip install 'rag-pricer[{extra}]'")

    def _gpu(self) -> Missing | None:
        return (
            None
            if self.gpu()
            else Missing("needs-gpu", "no CUDA GPU on this machine", "run it on a machine with a GPU")
        )

    def _store(self) -> Missing | None:
        from rag_pricer.knowledge.store import ProductStore

        settings = self.settings
        hint = f"rag-pricer-ingest index {settings.items_path} --split train --store {settings.store_path}"
        if settings.chroma_host:
            if not self.check:  # a server is only asked when checks were asked for
                return None
            try:
                ProductStore.from_settings(settings).check()
            except Exception as error:  # unreachable server, missing collection
                return Missing(
                    "needs-store",
                    f"the Chroma server does not answer: {type(error).__name__}: {error}",
                    "start the Chroma server, or unset RAG_PRICER_CHROMA_HOST",
                )
            return None
        if not (settings.store_path / "chroma.sqlite3").is_file():  # looked at, never created
            return Missing("needs-store", f"no store at {settings.store_path}", hint)
        return None

    def _llm(self, spec: str) -> Missing | None:
        backend = spec.split(":")[0].strip()
        runtime, extra = RUNTIMES.get(backend, (None, None))
        if runtime and importlib.util.find_spec(runtime) is None:
            return Missing(
                "needs-extra",
                f"the {backend} LLM needs {runtime}, which is not installed",
                f"pip install 'rag-pricer[{extra}]'",
            )
        try:
            llm = self.llm_factory(spec) if self.llm_factory else self._build_llm(spec)
        except ImportError as error:
            return Missing("needs-extra", f"the LLM {spec!r} cannot load: {error}", "pip install 'rag-pricer[llm]'")
        except ValueError as error:  # InvalidLLMSpec: no model file, no key, bad URL, unknown backend
            return Missing(
                "needs-llm", f"LLM {spec!r}: {error}", "set RAG_PRICER_LLM (see `rag-pricer llms`), or pass --llm"
            )
        if self.check:
            try:
                reply = ask_probe(llm)
            except Exception as error:  # LLMError, a crashed runtime: the finding, not the end of the listing
                return Missing(
                    "needs-llm",
                    f"LLM {spec!r} did not answer: {type(error).__name__}: {error}",
                    "check the endpoint, key and model (`rag-pricer doctor`), or choose another with --llm",
                )
            if not reply.text.strip():
                return Missing("needs-llm", f"LLM {spec!r} answered nothing", "choose another LLM with --llm")
        return None

    def _build_llm(self, spec: str) -> PricingLLM:
        from rag_pricer.llms import build_llm

        # A probe is one quick question: no retries, no cache, the readiness timeout.
        bounded = self.settings.model_copy(
            update={"llm_timeout_s": self.llm_timeout_s, "llm_max_retries": 0, "llm_cache_dir": None}
        )
        return build_llm(spec, bounded)
