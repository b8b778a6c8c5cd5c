"""Render a model's Jinja chat template to the raw prompt a completion runtime continues.

llama.cpp's own chat completion cannot continue a final assistant message (the prefill), so the
local backend renders the template itself, as ``transformers``' ``apply_chat_template`` does,
in a sandboxed Jinja environment.
"""

from __future__ import annotations

from collections.abc import Sequence

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Marks where the prefill ends: templates may trim or close the final message after its content.
_SENTINEL = "\x00<<prefill-ends-here>>\x00"


def _raise(message: str) -> None:
    raise TemplateError(message)


class ChatTemplate:
    """A compiled chat template (the GGUF ``tokenizer.chat_template`` metadata)."""

    def __init__(self, source: str, bos_token: str = "", eos_token: str = "") -> None:
        # The same environment as transformers' apply_chat_template, so both runtimes render alike.
        env = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
        )
        env.globals["raise_exception"] = _raise
        self.template = env.from_string(source)
        self.bos_token = bos_token
        self.eos_token = eos_token

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        """The prompt for ``messages``. When the last one is the assistant's, the prompt ends
        right after its content, open for the model to continue (``continue_final_message``);
        otherwise it ends with the template's generation prompt (a new assistant turn)."""
        if not messages:
            raise ValueError("no messages to render")
        prefill = messages[-1]["role"] == "assistant"
        if not prefill:
            return self._render(messages, add_generation_prompt=True)
        marked = [*messages[:-1], {"role": "assistant", "content": messages[-1]["content"] + _SENTINEL}]
        rendered = self._render(marked, add_generation_prompt=False)
        if _SENTINEL not in rendered:
            raise ValueError("the chat template dropped the final assistant message: it cannot be continued")
        return rendered[: rendered.index(_SENTINEL)]

    def _render(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool) -> str:
        return self.template.render(
            messages=list(messages),
            add_generation_prompt=add_generation_prompt,
            bos_token=self.bos_token,
            eos_token=self.eos_token,
        )
