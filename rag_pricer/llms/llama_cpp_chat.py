"""SmolLM2 (or any GGUF chat model) through llama-cpp-python, in process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import Field

from rag_pricer.llms.chat_template import ChatTemplate
from rag_pricer.llms.errors import ContextWindowExceeded
from rag_pricer.llms.local_chat import LocalChatModel


@contextmanager
def extra_buffer_types(enabled: bool) -> Iterator[None]:
    """Load models with ``use_extra_bufts = enabled``: ``Llama()`` has no argument for the flag
    (llama-cpp-python 0.3.36), so its default model parameters are amended while it loads."""
    import llama_cpp.llama_cpp as native

    defaults = native.llama_model_default_params

    def amended() -> Any:
        params = defaults()
        params.use_extra_bufts = enabled
        return params

    native.llama_model_default_params = amended
    try:
        yield
    finally:
        native.llama_model_default_params = defaults


class ChatLlamaCpp(LocalChatModel):
    """llama.cpp runtime: renders the GGUF's own chat template (prefill included) and runs a raw
    completion of it. ``timeout_s`` stops decoding at the deadline and raises ``TimeoutError``
    (the prompt's evaluation itself cannot be interrupted)."""

    n_ctx: int = Field(4096, ge=256)
    #: llama.cpp's extra CPU buffer types hold weights repacked for special kernels. On CPUs with
    #: AMX one of them is the AMX buffer, whose matrix multiply (``ggml_backend_amx_mul_mat``)
    #: segfaults at the first decode (llama.cpp issue 20824). Off on every CPU, not only on AMX
    #: ones: one code path that CI tests on any machine (cost: benchmarks/llm_runtime.py).
    extra_buffer_types: bool = False

    @property
    def _llm_type(self) -> str:
        return "llama-cpp"

    def _load(self) -> tuple[Any, ChatTemplate]:
        from llama_cpp import Llama  # imported here: building the object must not need it

        with extra_buffer_types(self.extra_buffer_types):
            llm = Llama(
                model_path=str(self.model_path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                seed=0,
                verbose=False,
            )
        source = llm.metadata.get("tokenizer.chat_template")
        if not source:
            raise ValueError(f"{self.model_path.name} has no chat template in its metadata")
        token = lambda i: llm.detokenize([i], special=True).decode("utf-8", "replace")  # noqa: E731
        return llm, ChatTemplate(source, bos_token=token(llm.token_bos()), eos_token=token(llm.token_eos()))

    def _complete(
        self, runtime: Any, messages: list[dict[str, str]], stop: list[str], max_tokens: int
    ) -> tuple[str, int, int]:
        from llama_cpp import StoppingCriteriaList

        llm, template = runtime
        prompt = template.render(messages)
        # special=True: the rendered template's <|im_start|> markers are control tokens, not text.
        tokens = llm.tokenize(
            prompt.encode("utf-8"), add_bos=llm.metadata.get("tokenizer.ggml.add_bos_token") == "true", special=True
        )
        if len(tokens) + max_tokens > self.n_ctx:
            raise ContextWindowExceeded(
                f"{len(tokens)} prompt tokens + {max_tokens} to generate exceed the context of {self.n_ctx}"
            )
        deadline = time.monotonic() + self.timeout_s if self.timeout_s else None
        timed_out = False

        def past_deadline(_ids: Any, _logits: Any) -> bool:
            nonlocal timed_out
            timed_out = deadline is not None and time.monotonic() > deadline
            return timed_out

        out = llm.create_completion(
            tokens,
            max_tokens=max_tokens,
            temperature=self.temperature,
            top_k=1 if self.temperature == 0 else 40,
            repeat_penalty=1.0,
            stop=stop,
            seed=0,
            stopping_criteria=StoppingCriteriaList([past_deadline]),
        )
        if timed_out:
            raise TimeoutError(f"local generation exceeded {self.timeout_s} s")
        usage = out["usage"]
        return out["choices"][0]["text"], usage["prompt_tokens"], usage["completion_tokens"]
