"""PricingLLM with the fake backend (retries, cache, concurrency, accounting, prefill, secrets),
the spec registry, and the real local model (llama.cpp and transformers runtimes)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatResult

from rag_pricer.llms import (
    InvalidLLMSpec,
    LLMError,
    PricingLLM,
    ResponseCache,
    RetryPolicy,
    available_backends,
    build_llm,
)
from rag_pricer.llms.chat_template import ChatTemplate
from rag_pricer.llms.errors import classify
from rag_pricer.llms.fake import DEFAULT_PRICE, FakePricingChatModel, openai_error
from rag_pricer.llms.llama_cpp_chat import ChatLlamaCpp
from rag_pricer.llms.local_chat import default_gguf_path
from rag_pricer.llms.messages import to_chat_dicts
from rag_pricer.llms.token_costs import OPENAI_PRICES, ModelPrice, price_of
from rag_pricer.llms.usage import Usage
from rag_pricer.settings import Settings

SECRET = "sk-test-DO-NOT-LEAK-1234567890"


@pytest.fixture()
def llm_settings(tmp_path: Path) -> Settings:
    """Settings that ignore the environment's key and .env, with a per-test cache."""
    return Settings(
        _env_file=None,
        openai_api_key=None,
        llm_base_url=None,
        llm_cache_dir=tmp_path / "llm-cache",
        local_model_path=None,
    )


def prompt(text: str, prefill: bool = True) -> list[BaseMessage]:
    messages: list[BaseMessage] = [SystemMessage("You estimate prices of products."), HumanMessage(text)]
    return [*messages, AIMessage("Price is $")] if prefill else messages


class Sleeps(list):
    """Records backoff sleeps instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make(model: FakePricingChatModel, cache: ResponseCache | None = None, **options: Any) -> PricingLLM:
    options.setdefault("retry", RetryPolicy(max_retries=3, base_delay_s=0.5, max_delay_s=4.0, seed=0))
    options.setdefault("sleep", Sleeps())
    return PricingLLM(model, spec="fake", model_id="fake", supports_prefill=True, cache=cache, **options)


class PickyFake(FakePricingChatModel):
    """Fails for prompts that say FAIL (not retryable) and echoes prompts that say LEAK in its error."""

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        text = str(messages[1].content)
        if "FAIL" in text:
            raise openai_error("bad_request")
        if "LEAK" in text:
            raise RuntimeError(f"server said: {text}")
        return super()._generate(messages, stop, run_manager, **kwargs)


# -- specs and the registry -------------------------------------------------------------------


def test_backends_are_listed_with_examples() -> None:
    infos = {b.name: b for b in available_backends()}
    assert {"local", "transformers", "openai", "openai-compatible", "fake"} <= set(infos)
    for info in infos.values():
        assert info.summary and info.example.startswith(info.name)


def test_unknown_backend_names_the_known_ones(llm_settings: Settings) -> None:
    with pytest.raises(InvalidLLMSpec, match="known: .*fake"):
        build_llm("gpt-9000", llm_settings)


def test_fake_specs(llm_settings: Settings) -> None:
    llm_settings = llm_settings.model_copy(update={"llm_cache_dir": None})
    assert build_llm("fake:42", llm_settings).ask(prompt("a lamp")).text == "42"
    cycling = build_llm("fake:41.5|Price is $43", llm_settings)
    assert [cycling.ask(prompt("a lamp")).text for _ in range(3)] == ["41.5", "43", "41.5"]
    echo = build_llm("fake", llm_settings)
    # The default fake echoes the median price quoted in the prompt (a RAG prompt lists some).
    assert echo.ask(prompt("Similar: $10.00, $20.00 and $1,000.00. The lamp?")).text == "20.00"
    assert echo.ask(prompt("a lamp")).text == f"{DEFAULT_PRICE:.2f}"
    assert echo.ask(prompt("a lamp", prefill=False)).text == f"Price is ${DEFAULT_PRICE:.2f}"


@pytest.mark.parametrize(
    ("spec", "update", "message"),
    [
        ("openai:gpt-4o-mini", {}, "needs an API key"),
        ("openai-compatible:llama3", {}, "needs a server"),
        ("openai-compatible:llama3@ftp://host/v1", {}, "not an http"),
        ("openai-compatible:@http://127.0.0.1:9/v1", {}, "names no model"),
        ("local:/nonexistent/model.gguf", {}, "no GGUF model file"),
    ],
)
def test_bad_specs_are_clear_errors(llm_settings: Settings, spec: str, update: dict, message: str) -> None:
    with pytest.raises(InvalidLLMSpec, match=message):
        build_llm(spec, llm_settings.model_copy(update=update))


def test_openai_specs_choose_endpoint_prefill_and_price(llm_settings: Settings) -> None:
    keyed = llm_settings.model_copy(
        update={"openai_api_key": Settings(_env_file=None, openai_api_key=SECRET).openai_api_key}
    )
    real = build_llm("openai:gpt-4o-mini", keyed)
    assert (real.model_id, real.supports_prefill, real.price) == ("gpt-4o-mini", False, OPENAI_PRICES["gpt-4o-mini"])
    # The openai client does the retrying, PricingLLM does not retry on top of it.
    assert (real.chat_model.max_retries, real.retry.max_retries) == (keyed.llm_max_retries, 0)
    compatible = build_llm("openai-compatible:qwen2.5:0.5b@http://127.0.0.1:11434/v1", llm_settings)
    assert (compatible.model_id, compatible.endpoint, compatible.price) == (
        "qwen2.5:0.5b",
        "http://127.0.0.1:11434/v1",
        None,
    )
    via_setting = build_llm(
        "openai:llama3", llm_settings.model_copy(update={"llm_base_url": "http://127.0.0.1:8080/v1"})
    )
    assert (via_setting.endpoint, via_setting.price) == ("http://127.0.0.1:8080/v1", None)
    # "@" may appear in the model name and in the URL's user info; the password is never shown.
    tricky = build_llm(f"openai-compatible:org/model@v2@http://me:{SECRET}@127.0.0.1:9/v1", llm_settings)
    assert tricky.model_id == "org/model@v2" and tricky.endpoint == "http://me:***@127.0.0.1:9/v1"
    assert SECRET not in repr(tricky) and SECRET not in tricky.spec


def test_model_prices() -> None:
    assert price_of("gpt-4o-mini-2024-07-18") == OPENAI_PRICES["gpt-4o-mini"]
    assert price_of("gpt-4o-2024-08-06") == OPENAI_PRICES["gpt-4o"]
    assert price_of("llama3") is None
    assert ModelPrice(0.15, 0.60).cost(1_000_000, 500_000) == pytest.approx(0.45)


# -- prefill ----------------------------------------------------------------------------------


def test_prefill_is_continued_when_supported() -> None:
    llm = make(FakePricingChatModel(answers=["Price is $42.50"]))
    assert llm.ask(prompt("a lamp")).text == "42.50"  # the continuation only


def test_prefill_is_dropped_when_not_supported() -> None:
    model = FakePricingChatModel(answers=["Price is $42.50"])
    llm = PricingLLM(model, spec="fake", model_id="fake", supports_prefill=False)
    # The fake sees no prefill, so it answers a whole new turn.
    assert llm.ask(prompt("a lamp")).text == "Price is $42.50"
    with pytest.raises(ValueError, match="before the assistant prefill"):
        llm.ask([AIMessage("Price is $")])


def test_chat_template_opens_the_assistant_turn_for_a_prefill() -> None:
    source = (
        "{% for message in messages %}"
        "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )
    template = ChatTemplate(source)
    with_prefill = template.render(to_chat_dicts([HumanMessage("lamp?"), AIMessage("Price is $")]))
    assert with_prefill == "<|im_start|>user\nlamp?<|im_end|>\n<|im_start|>assistant\nPrice is $"
    new_turn = template.render(to_chat_dicts([HumanMessage("lamp?")]))
    assert new_turn == "<|im_start|>user\nlamp?<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize("bad", [[], "a string", [HumanMessage("x"), "not a message"]])
def test_malformed_conversations_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError):
        make(FakePricingChatModel()).ask(bad)


# -- cache ------------------------------------------------------------------------------------


def test_cache_hit_skips_the_model(tmp_path: Path) -> None:
    model = FakePricingChatModel(answers=["42", "99"])
    llm = make(model, ResponseCache(tmp_path))
    first = llm.ask(prompt("a lamp"))
    second = llm.ask(prompt("a lamp"))
    assert (first.text, first.usage.cached) == ("42", False)
    assert (second.text, second.usage.cached) == ("42", True)
    assert model.calls == 1 and llm.cache_hits == 1
    assert second.usage.prompt_tokens == first.usage.prompt_tokens and second.usage.cost_usd == 0.0
    # A new PricingLLM of the same model on the same directory (a later run) hits it too.
    fresh = FakePricingChatModel(answers=["42", "99"])
    again = make(fresh, ResponseCache(tmp_path)).ask(prompt("a lamp"))
    assert (again.text, again.usage.cached, fresh.calls) == ("42", True, 0)


def test_cache_opt_out_calls_every_time() -> None:
    model = FakePricingChatModel(answers=["42", "99"])
    llm = make(model, cache=None)
    assert [llm.ask(prompt("a lamp")).text for _ in range(2)] == ["42", "99"]
    assert model.calls == 2 and llm.cache_hits == 0


def test_cache_dir_setting_none_disables_cache(llm_settings: Settings) -> None:
    assert build_llm("fake", llm_settings).cache is not None
    assert build_llm("fake", llm_settings.model_copy(update={"llm_cache_dir": None})).cache is None


def test_cache_key_depends_on_model_prompt_and_params(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    llm = make(FakePricingChatModel(answers=["1"]), cache)
    base = llm._cache_key(prompt("a lamp"))
    assert base == llm._cache_key(prompt("a lamp"))
    assert base != llm._cache_key(prompt("a desk"))
    assert base != llm._cache_key(prompt("a lamp", prefill=False))
    other_model = PricingLLM(
        FakePricingChatModel(answers=["1"]), spec="fake", model_id="other", supports_prefill=True, cache=cache
    )
    assert base != other_model._cache_key(prompt("a lamp"))
    other_params = make(FakePricingChatModel(answers=["2"]), cache)
    assert base != other_params._cache_key(prompt("a lamp"))


def test_damaged_cache_entry_is_a_miss_and_is_rewritten(tmp_path: Path) -> None:
    model = FakePricingChatModel(answers=["42"])
    llm = make(model, ResponseCache(tmp_path))
    llm.ask(prompt("a lamp"))
    entry = next(tmp_path.glob("*/*.json"))
    entry.write_text("{not json", encoding="utf-8")
    assert llm.ask(prompt("a lamp")).usage.cached is False
    assert model.calls == 2
    assert llm.ask(prompt("a lamp")).usage.cached is True
    assert len(ResponseCache(tmp_path)) == 1


def test_cache_files_hold_no_prompt_or_secret(tmp_path: Path) -> None:
    llm = PricingLLM(
        FakePricingChatModel(answers=["42"]),
        spec="fake",
        model_id="fake",
        supports_prefill=True,
        cache=ResponseCache(tmp_path),
        secrets=(SECRET,),
    )
    llm.ask(prompt(f"a lamp {SECRET}"))
    stored = "".join(p.read_text(encoding="utf-8") for p in tmp_path.glob("*/*.json"))
    assert "42" in stored and "lamp" not in stored and SECRET not in stored


# -- retries and errors -----------------------------------------------------------------------


def test_rate_limit_is_retried_with_backoff_then_succeeds() -> None:
    model = FakePricingChatModel(answers=["42"], fail_times=2, failure="rate_limit")
    sleeps = Sleeps()
    llm = make(model, sleep=sleeps, retry=RetryPolicy(max_retries=3, base_delay_s=0.5, max_delay_s=4.0, seed=1))
    assert llm.ask(prompt("a lamp")).text == "42"
    assert model.calls == 3 and len(sleeps) == 2
    # Full jitter: attempt n waits within [0, base * 2**n].
    assert 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0
    assert llm.calls == 1  # accounting counts the successful call only


def test_retry_after_header_is_honoured() -> None:
    model = FakePricingChatModel(answers=["42"], fail_times=1, failure="rate_limit", retry_after_s=3.0)
    sleeps = Sleeps()
    make(model, sleep=sleeps).ask(prompt("a lamp"))
    assert sleeps == [3.0]


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=5.0, seed=3)
    ceilings = [1, 2, 4, 5, 5, 5]
    delays = [policy.delay(n) for n in range(6) for _ in range(50)]
    for n, ceiling in enumerate(ceilings):
        batch = delays[n * 50 : (n + 1) * 50]
        assert max(batch) <= ceiling and max(batch) > ceiling / 2  # jittered up to the ceiling
    assert policy.delay(0, retry_after_s=60.0) == 5.0  # Retry-After, capped too


def test_retries_exhausted_raise_rate_limit() -> None:
    model = FakePricingChatModel(answers=["42"], fail_times=100, failure="rate_limit")
    sleeps = Sleeps()
    llm = make(model, sleep=sleeps, retry=RetryPolicy(max_retries=2, seed=0))
    with pytest.raises(LLMError) as caught:
        llm.ask(prompt("a lamp"))
    assert (caught.value.reason, caught.value.attempts, caught.value.retryable) == ("rate_limit", 3, True)
    assert model.calls == 3 and len(sleeps) == 2


@pytest.mark.parametrize(
    ("failure", "attempts"),
    [
        ("timeout", 2),
        ("server_error", 2),
        ("connection", 2),
        ("bad_request", 1),
        ("auth", 1),
        ("not_found", 1),
        ("error", 1),
    ],
)
def test_failures_map_to_reasons_and_only_transient_ones_are_retried(failure: str, attempts: int) -> None:
    model = FakePricingChatModel(answers=["42"], fail_times=100, failure=failure)
    with pytest.raises(LLMError) as caught:
        make(model, retry=RetryPolicy(max_retries=1, seed=0)).ask(prompt("a lamp"))
    assert caught.value.reason == failure and caught.value.attempts == attempts == model.calls


def test_local_runtime_errors_are_classified() -> None:
    from rag_pricer.llms.errors import ContextWindowExceeded, RuntimeCrashed

    assert classify(TimeoutError("slow")).reason == "timeout"
    assert classify(ContextWindowExceeded("long")).reason == "bad_request"
    assert classify(RuntimeCrashed("SIGSEGV")).reason == "crashed"
    assert classify(KeyError("bug")).reason == "error"


def test_the_openai_clients_transport_errors_are_classified() -> None:
    # openai>=3 sends through httpx2, not httpx: its raw transport errors are its own classes
    import httpx2

    request = httpx2.Request("POST", "http://fake.invalid/v1/chat/completions")
    assert classify(httpx2.ReadTimeout("slow", request=request)).reason == "timeout"
    assert classify(httpx2.ConnectError("refused", request=request)).reason == "connection"


def test_fake_errors_carry_the_openai_clients_own_http_objects() -> None:
    import httpx2

    error = openai_error("rate_limit", retry_after_s=2.0)
    assert isinstance(error, openai.RateLimitError) and isinstance(error.response, httpx2.Response)
    assert classify(error).retry_after_s == 2.0
    timeout = openai_error("timeout")
    assert isinstance(timeout, openai.APITimeoutError) and isinstance(timeout.request, httpx2.Request)


def test_unknown_failure_name_is_refused_early() -> None:
    with pytest.raises(ValueError, match="unknown failure"):
        FakePricingChatModel(failure="meteor")


# -- batches and concurrency ------------------------------------------------------------------


def test_ask_many_keeps_order_and_isolates_failures() -> None:
    llm = make(PickyFake(delay_s=0.01), concurrency=3)
    texts = [f"Similar product: ${n}.00" for n in range(1, 9)]
    texts[4] = "FAIL this one"
    results = llm.ask_many([prompt(t) for t in texts])
    assert isinstance(results[4], LLMError) and results[4].reason == "bad_request"
    assert [r.text for i, r in enumerate(results) if i != 4] == [f"{n}.00" for n in (1, 2, 3, 4, 6, 7, 8)]
    assert llm.ask_many([]) == []


def test_ask_many_refuses_bad_input_before_calling() -> None:
    model = FakePricingChatModel()
    with pytest.raises(ValueError):
        make(model).ask_many([prompt("a lamp"), []])
    assert model.calls == 0


@pytest.mark.parametrize("concurrency", [1, 3])
def test_concurrency_limit_is_respected(concurrency: int) -> None:
    model = FakePricingChatModel(answers=["42"], delay_s=0.03)
    llm = make(model, concurrency=concurrency)
    llm.ask_many([prompt(f"item {i}") for i in range(9)])
    # Direct ask() calls from other threads share the same limit.
    threads = [threading.Thread(target=llm.ask, args=(prompt(f"thread {i}"),)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert model.calls == 15
    assert model.max_in_flight == concurrency


# -- accounting -------------------------------------------------------------------------------


def test_token_and_cost_totals(tmp_path: Path) -> None:
    model = FakePricingChatModel(answers=["42 dollars"])
    llm = PricingLLM(
        model,
        spec="fake",
        model_id="fake",
        supports_prefill=True,
        cache=ResponseCache(tmp_path),
        price=ModelPrice(input_per_million=2.0, output_per_million=8.0),
    )
    a = llm.ask(prompt("one two three"))  # 5 + 3 + 3 words in the three messages
    b = llm.ask(prompt("four five"))
    cached = llm.ask(prompt("one two three"))
    assert (a.usage.prompt_tokens, a.usage.completion_tokens) == (11, 2)
    assert a.usage.cost_usd == pytest.approx((11 * 2.0 + 2 * 8.0) / 1e6)
    assert cached.usage.cached and cached.usage.cost_usd == 0.0
    # Totals count what was spent: the two model calls, not the cache hit.
    assert llm.totals == Usage(
        a.usage.prompt_tokens + b.usage.prompt_tokens, 4, pytest.approx(a.usage.cost_usd + b.usage.cost_usd), False
    )
    assert (llm.calls, llm.cache_hits) == (2, 1)


# -- secrets ----------------------------------------------------------------------------------


def test_secrets_never_in_repr_errors_or_logs(llm_settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    keyed = Settings(_env_file=None, openai_api_key=SECRET, llm_cache_dir=None)
    real = build_llm("openai:gpt-4o-mini", keyed)
    assert SECRET not in repr(real) and SECRET not in str(real) and SECRET not in repr(real.chat_model)
    assert SECRET not in repr(keyed) and SECRET not in str(keyed.public())
    leaky = PricingLLM(PickyFake(), spec="fake", model_id="fake", supports_prefill=True, secrets=(SECRET,))
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(LLMError) as caught:
            leaky.ask(prompt(f"LEAK {SECRET}"))
    assert SECRET not in str(caught.value) and "***" in str(caught.value)
    assert caught.value.__cause__ is None  # the raw exception (with the secret) is not chained
    assert caplog.records and SECRET not in caplog.text


# -- the real local model ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_llm(tmp_path_factory: pytest.TempPathFactory) -> PricingLLM:
    settings = Settings(
        _env_file=None, local_model_path=None, llm_cache_dir=tmp_path_factory.mktemp("cache"), llm_max_retries=0
    )
    return build_llm("local", settings)


@pytest.mark.slow
def test_local_model_continues_the_prefill(local_llm: PricingLLM) -> None:
    assert local_llm.supports_prefill and local_llm.model_id == "SmolLM2-135M-Instruct.Q4_1"
    messages = prompt("How much does this cost to the nearest dollar?\n\nDelphi FG0166 Fuel Pump Module")
    reply = local_llm.ask(messages)
    assert reply.text.strip() and not reply.text.startswith("Price is")
    assert 0 < reply.usage.completion_tokens <= 12 and reply.usage.prompt_tokens > 20
    again = local_llm.ask(messages)
    assert again.usage.cached and again.text == reply.text
    # Greedy decoding is deterministic: the model gives the same answer without the cache.
    local_llm.cache, cache = None, local_llm.cache
    try:
        assert local_llm.ask(messages).text == reply.text
        new_turn = local_llm.ask(prompt("A USB-C cable, 2 m", prefill=False))
        assert new_turn.text.strip()
    finally:
        local_llm.cache = cache


@pytest.mark.slow
def test_local_model_runs_in_its_own_process_without_extra_buffer_types(local_llm: PricingLLM) -> None:
    # The default backend's runtime is a child process: a native crash cannot end this one.
    assert local_llm.chat_model.isolated
    local_llm.chat_model.load()
    assert local_llm.chat_model._process.pid not in (None, os.getpid())
    # llama.cpp's extra buffer types (the AMX one segfaults at the first decode) are off.
    in_process = ChatLlamaCpp(model_path=default_gguf_path(), isolated=False)
    in_process.load()
    assert in_process._runtime[0].model_params.use_extra_bufts is False


@pytest.mark.slow
def test_local_model_limits_become_llm_errors() -> None:
    tight = ChatLlamaCpp(model_path=default_gguf_path(), timeout_s=1e-6, max_tokens=12)
    with pytest.raises(LLMError) as caught:
        PricingLLM(tight, spec="local", model_id="x", supports_prefill=True, retry=RetryPolicy(max_retries=0)).ask(
            prompt("a lamp")
        )
    assert caught.value.reason == "timeout"
    small = ChatLlamaCpp(model_path=default_gguf_path(), n_ctx=256)
    with pytest.raises(LLMError) as caught:
        PricingLLM(small, spec="local", model_id="x", supports_prefill=True).ask(prompt("lamp " * 300))
    assert caught.value.reason == "bad_request" and caught.value.attempts == 1
    tight.close()
    small.close()


@pytest.mark.slow
def test_transformers_runtime_renders_the_same_prompt_and_answers(local_llm: PricingLLM) -> None:
    llm = build_llm(
        "transformers", Settings(_env_file=None, local_model_path=None, llm_cache_dir=None, llm_max_retries=0)
    )
    llm.chat_model.max_tokens = 4  # a few tokens show it generates; more only cost time on CPU
    llm.chat_model.isolated = False  # in this process, to read its tokenizer below
    messages = prompt("How much does this cost?\n\nA USB-C cable, 2 m")
    reply = llm.ask(messages)
    assert reply.text.strip() and not reply.text.startswith("Price is") and 0 < reply.usage.completion_tokens <= 4
    # The prompt llama.cpp runs (our Jinja rendering of the GGUF's template) is the one
    # transformers builds with continue_final_message / add_generation_prompt.
    tokenizer, _model = llm.chat_model._runtime
    _llama, template = ChatLlamaCpp(model_path=default_gguf_path(), isolated=False)._load()
    dicts = to_chat_dicts(messages)
    assert template.render(dicts) == tokenizer.apply_chat_template(dicts, continue_final_message=True, tokenize=False)
    assert template.render(dicts[:-1]) == tokenizer.apply_chat_template(
        dicts[:-1], add_generation_prompt=True, tokenize=False
    )
    no_system = dicts[1:]  # the template then adds its own default system prompt
    assert template.render(no_system) == tokenizer.apply_chat_template(
        no_system, continue_final_message=True, tokenize=False
    )
