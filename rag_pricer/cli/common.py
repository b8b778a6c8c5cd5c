"""Options and helpers shared by the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from rag_pricer.api import Estimator
from rag_pricer.knowledge.store import StoreError
from rag_pricer.pricing.readiness import StrategyNotReady
from rag_pricer.pricing.registry import MissingExtra, UnknownStrategy
from rag_pricer.settings import InvalidSettings, Settings

#: errors that mean "the request or the set-up is wrong", shown as one line, not a traceback:
#: bad descriptions (InvalidQuery), bad strategy options (InvalidOptions), bad LLM specs, untrained
#: models (FileNotFoundError, StrategyNotReady), a strategy whose pip extra is missing (MissingExtra), ...
USER_ERRORS = (ValueError, OSError, UnknownStrategy, StoreError, StrategyNotReady, MissingExtra)

console = Console()
errors = Console(stderr=True)

StoreOpt = Annotated[
    Path | None, typer.Option("--store", help="Persistent Chroma directory (default: settings store_path).")
]
LlmOpt = Annotated[
    str | None, typer.Option("--llm", help="LLM spec: local, fake, openai:MODEL, ... (see `rag-pricer llms`).")
]
StrategyOpt = Annotated[
    str | None, typer.Option("--strategy", "-s", help="Strategy name (see `rag-pricer strategies`).")
]
KOpt = Annotated[int | None, typer.Option("--k", min=1, max=100, help="Comparable products to retrieve.")]
StrategyOptionsOpt = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", help="Strategy option NAME=VALUE, repeatable (options: `rag-pricer strategies`)."),
]
ChromaHostOpt = Annotated[str | None, typer.Option("--chroma-host", help="Use a Chroma server at this host.")]
ChromaPortOpt = Annotated[int | None, typer.Option("--chroma-port", help="Port of the Chroma server.")]


def parse_options(pairs: list[str] | None) -> dict[str, str]:
    """``["context_chars=300", "mmr=true"]`` -> ``{"context_chars": "300", "mmr": "true"}``: text,
    which the strategy's options model checks and converts (``300``, ``True``) when it is built."""
    options: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            fail(f"--option needs NAME=VALUE, got {pair!r}")
        options[name.strip()] = raw
    return options


def settings_with(**overrides: Any) -> Settings:
    """Settings from the environment with the non-None command-line overrides applied; an
    invalid setting ends the command with one line (exit 2)."""
    try:
        return Settings.load(**overrides)
    except InvalidSettings as error:
        fail(str(error))
        raise  # unreachable: fail() exits


def estimator_with(**overrides: Any) -> Estimator:
    return Estimator.from_settings(settings_with(**overrides))


def fail(message: str, code: int = 2) -> None:
    """Print a clear error and exit non-zero (no traceback for user errors)."""
    # one line, however narrow the terminal; the message is text, not markup: `rag-pricer[track]` stays whole
    errors.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


TrackOpt = Annotated[
    bool | None,
    typer.Option(
        "--track/--no-track",
        help="Log the run to MLflow (settings tracking_uri, default var/mlruns; needs the track extra).",
    ),
]


def tracker_for(settings: Settings) -> Any:
    """The ``Tracker`` when ``settings.track`` is on, else ``None``; without MLflow the command
    ends here with one line (exit 2), before any work is done."""
    if not settings.track:
        return None
    from rag_pricer.training.tracking import Tracker, TrackingUnavailable

    tracker = Tracker.from_settings(settings)
    try:
        tracker.client  # noqa: B018 - imports MLflow now, not after the work
    except TrackingUnavailable as error:
        fail(str(error))
    return tracker


def track(log: Any, where: str) -> None:
    """Run ``log()`` (a tracker's logging call) and say where the run went; a tracking store that
    fails loses nothing already written, and says so in one line (exit 1)."""
    try:
        run_id = log()
    except Exception as error:  # noqa: BLE001 - MLflow raises its own, OS and HTTP errors: all end the same way
        fail(
            f"tracking failed ({type(error).__name__}: {' '.join(str(error).split())[:300]}); the results are in "
            f"{where}",
            code=1,
        )
        return
    errors.print(f"tracked: MLflow run {run_id}", soft_wrap=True)  # stderr: stdout may be JSON
