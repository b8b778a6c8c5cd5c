"""``python -m rag_pricer.llms.llama_server --model FILE.gguf [...]``: llama.cpp's
OpenAI-compatible server (``python -m llama_cpp.server``, same arguments) with its models loaded
without llama.cpp's extra buffer types, like the in-process runtime: on CPUs with AMX the plain
server segfaults at its first completion (see ``ChatLlamaCpp.extra_buffer_types``)."""

from __future__ import annotations

from llama_cpp.server.__main__ import main

from rag_pricer.llms.llama_cpp_chat import extra_buffer_types

if __name__ == "__main__":
    with extra_buffer_types(False):
        main()
