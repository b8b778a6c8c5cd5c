"""Local-model runtimes that misbehave on purpose, for the crash-containment tests.

A module of its own (not a test file) because the runtime's child process imports it by name.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from rag_pricer.llms.local_chat import LocalChatModel


class MisbehavingChat(LocalChatModel):
    """Answers "42", unless the last user message says ``segfault`` (the process kills itself
    with SIGSEGV, as llama.cpp's AMX kernel does), ``abort`` (SIGABRT, as a failed ggml assert
    does) or ``hang`` (sleeps far past any deadline). ``pid`` answers its process id."""

    @property
    def _llm_type(self) -> str:
        return "misbehaving"

    def _load(self) -> Any:
        return object()

    def _complete(
        self, runtime: Any, messages: list[dict[str, str]], stop: list[str], max_tokens: int
    ) -> tuple[str, int, int]:
        said = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        if "segfault" in said:
            os.kill(os.getpid(), signal.SIGSEGV)
        if "abort" in said:
            os.abort()
        if "hang" in said:
            time.sleep(3600)
        if said == "pid":
            return str(os.getpid()), 1, 1
        return "42", 10, 1
