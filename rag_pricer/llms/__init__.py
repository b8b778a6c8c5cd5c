"""Chat models for pricing, behind one wrapper (``PricingLLM``) and one spec string.

>>> from rag_pricer.llms import build_llm
>>> llm = build_llm("fake:42", Settings(llm_cache_dir=None))           # doctest: +SKIP
>>> llm.ask([HumanMessage("..."), AIMessage("Price is $")]).text        # doctest: +SKIP
'42'

Specs: ``local`` (SmolLM2-135M-Instruct in process), ``local:/path/model.gguf``,
``transformers[:/path/model.gguf]``, ``openai:gpt-4o-mini``,
``openai-compatible:MODEL@http://host:port/v1``, ``fake``, ``fake:42``, ``fake:a|b``.
``rag-pricer llms`` lists them (``available_backends()``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag_pricer.llms.cache import ResponseCache
    from rag_pricer.llms.client import PricingLLM
    from rag_pricer.llms.registry import BackendInfo, InvalidLLMSpec, backend_registry, register_backend
    from rag_pricer.llms.reply import LLMError, LLMReply
    from rag_pricer.llms.retry import RetryPolicy
    from rag_pricer.settings import Settings

# Imported on first use: the chat-model modules need LangChain (the ``llm`` extra), while
# ``rag_pricer.llms.usage`` is read by the pricing contract of every install.
_LAZY = {
    "ResponseCache": "rag_pricer.llms.cache",
    "PricingLLM": "rag_pricer.llms.client",
    "BackendInfo": "rag_pricer.llms.registry",
    "InvalidLLMSpec": "rag_pricer.llms.registry",
    "backend_registry": "rag_pricer.llms.registry",
    "register_backend": "rag_pricer.llms.registry",
    "LLMError": "rag_pricer.llms.reply",
    "LLMReply": "rag_pricer.llms.reply",
    "RetryPolicy": "rag_pricer.llms.retry",
}

__all__ = [
    "BackendInfo",
    "InvalidLLMSpec",
    "LLMError",
    "LLMReply",
    "PricingLLM",
    "ResponseCache",
    "RetryPolicy",
    "available_backends",
    "build_llm",
    "register_backend",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_llm(spec: str, settings: Settings) -> PricingLLM:
    """The ``PricingLLM`` named by ``spec``; raises ``InvalidLLMSpec`` on an unknown backend or
    a spec its backend cannot build (missing key, missing model file, bad URL)."""
    from rag_pricer.llms.registry import backend_registry

    return backend_registry.build(spec, settings)


def available_backends() -> list[BackendInfo]:
    """Every registered backend (name, summary, example spec), sorted by name."""
    from rag_pricer.llms.registry import backend_registry

    return backend_registry.all()
