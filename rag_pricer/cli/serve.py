"""``rag-pricer serve``: the HTTP service and its web page, with uvicorn."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Annotated

import typer

from rag_pricer.cli.common import ChromaHostOpt, ChromaPortOpt, LlmOpt, StoreOpt, errors, fail, settings_with
from rag_pricer.knowledge.store import BUILD_HINT
from rag_pricer.pricing.registry import UnknownStrategy, registry


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class LogLevel(StrEnum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on; keep 127.0.0.1 unless a token is set.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    strategy: Annotated[
        str | None, typer.Option("--strategy", "-s", help="Default strategy of requests that name none.")
    ] = None,
    store: StoreOpt = None,
    llm: LlmOpt = None,
    chroma_host: ChromaHostOpt = None,
    chroma_port: ChromaPortOpt = None,
    deadline: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            help=(
                "Seconds a strategy may take per request before knn answers instead (default: settings llm_timeout_s)."
            ),
        ),
    ] = None,
    torch_threads: Annotated[
        int,
        typer.Option(
            min=1,
            help="torch and onnxruntime threads per request; requests already run in parallel, "
            "so 1 avoids oversubscribing the cores.",
        ),
    ] = 1,
    log_level: Annotated[LogLevel, typer.Option(help="Log level of uvicorn and the service.")] = LogLevel.info,
    access_log: Annotated[bool, typer.Option(help="Log every request (method, path, status).")] = True,
    log_format: Annotated[
        LogFormat,
        typer.Option(
            help="text: lines with the request id in brackets; json: one JSON object per line "
            "(request_id, and per request route, status, latency_ms, strategy, fallback)."
        ),
    ] = LogFormat.text,
) -> None:
    """Serve the pricing API (/v1/*, docs at /docs) and the web page (/) until Ctrl-C.

    The token (RAG_PRICER_API_TOKEN), CORS origins and batch limit come from the settings.
    """
    import uvicorn

    from rag_pricer.redaction import Redactor
    from rag_pricer.service import create_app
    from rag_pricer.service.logging_setup import log_config as service_log_config
    from rag_pricer.service.transport import uvicorn_options

    settings = settings_with(
        store_path=store,
        llm=llm,
        strategy=strategy,
        chroma_host=chroma_host,
        chroma_port=chroma_port,
        embedding_threads=torch_threads,
    )
    try:
        registry.get(settings.strategy)
    except UnknownStrategy as error:
        fail(str(error))
    if settings.chroma_host is None and not settings.store_path.is_dir():
        # Serving would not create it (read-only), only fail every request: say so now.
        fail(f"no store at {settings.store_path}: {BUILD_HINT}")
    if not _is_loopback(host) and settings.api_token is None:
        errors.print(
            f"[yellow]warning:[/] listening on {host} without an API token: anyone who can reach it can use it"
        )
    _set_torch_threads(torch_threads)
    # uvicorn's logging set-up, extended to the service's own loggers, with the request id
    log_config = service_log_config(log_level.value, log_format.value)
    # Every line either handler writes goes through the redaction of credentials (issue 24).
    log_config.setdefault("filters", {})["redact"] = {
        "()": "rag_pricer.redaction.RedactingFilter",
        "redactor": Redactor.from_settings(settings),
    }
    for handler in log_config["handlers"].values():
        handler.setdefault("filters", []).append("redact")
    app = create_app(settings=settings, deadline_s=deadline)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level.value,
        access_log=access_log,
        log_config=log_config,
        # h11 with a bound on header bytes, a read deadline per request, JSON framing errors
        **uvicorn_options(),
    )


def _set_torch_threads(threads: int) -> None:
    """Intra-op threads of torch (the embedding model) in this process.

    The service prices several requests at once in worker threads. With torch's default (one
    thread per core) each of them also fans out over every core, and on a busy machine a single
    embedding then waits for all of its threads to be scheduled: measured here under load,
    one-text encodes took ~600-1,800 ms with 2 threads and ~110-130 ms with 1.
    """
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_num_threads(threads)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
