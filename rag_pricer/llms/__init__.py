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

from typing import TYPE_CHECKING

from rag_pricer.llms.cache import ResponseCache
from rag_pricer.llms.client import PricingLLM
from rag_pricer.llms.registry import BackendInfo, InvalidLLMSpec, backend_registry, register_backend
from rag_pricer.llms.reply import LLMError, LLMReply
from rag_pricer.llms.retry import RetryPolicy

if TYPE_CHECKING:
    from rag_pricer.settings import Settings

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


def build_llm(spec: str, settings: Settings) -> PricingLLM:
    """The ``PricingLLM`` named by ``spec``; raises ``InvalidLLMSpec`` on an unknown backend or
    a spec its backend cannot build (missing key, missing model file, bad URL)."""
    return backend_registry.build(spec, settings)


def available_backends() -> list[BackendInfo]:
    """Every registered backend (name, summary, example spec), sorted by name."""
    return backend_registry.all()
