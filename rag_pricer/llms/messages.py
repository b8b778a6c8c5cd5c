"""LangChain messages to the ``{"role", "content"}`` dicts that chat templates read, and the
assistant-prefill convention: a conversation ending with an ``AIMessage`` asks the model to
continue that message (e.g. ``"Price is $"``) rather than to start a new one."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

ROLES: dict[type[BaseMessage], str] = {SystemMessage: "system", HumanMessage: "user", AIMessage: "assistant"}


def has_prefill(messages: Sequence[BaseMessage]) -> bool:
    return bool(messages) and isinstance(messages[-1], AIMessage)


def text_of(message: BaseMessage) -> str:
    """The text of a message; content blocks (multimodal lists) keep their text parts only."""
    if isinstance(message.content, str):
        return message.content
    return "".join(block if isinstance(block, str) else str(block.get("text", "")) for block in message.content)


def to_chat_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """Role/content dicts for a chat template. Raises ``ValueError`` on a message type that a
    plain chat template cannot render (tool calls, function messages)."""
    out = []
    for message in messages:
        role = next((r for cls, r in ROLES.items() if isinstance(message, cls)), None)
        if role is None:
            raise ValueError(f"cannot render a {type(message).__name__} for a local chat model")
        out.append({"role": role, "content": text_of(message)})
    return out
