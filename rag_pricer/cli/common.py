"""Options and helpers shared by the commands."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

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
CategoryOpt = Annotated[str | None, typer.Option("--category", help="Retrieve only products of this category.")]
MmrOpt = Annotated[bool, typer.Option("--mmr", help="Diversify comparables (maximal marginal relevance).")]
StrategyOptionsOpt = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", help="Strategy option NAME=VALUE, repeatable (options: `rag-pricer strategies`)."),
]
ChromaHostOpt = Annotated[str | None, typer.Option("--chroma-host", help="Use a Chroma server at this host.")]
ChromaPortOpt = Annotated[int | None, typer.Option("--chroma-port", help="Port of the Chroma server.")]


def print_indented(text: str, indent: int = 2) -> None:
    """``text`` wrapped between words to the terminal's width, indented: never a word cut in two
    (rich's tables fold long words at 80 columns), no trailing spaces in a log."""
    width = max(console.width, 40)
    wrapped = textwrap.fill(
        text,
        width,
        initial_indent=" " * indent,
        subsequent_indent=" " * indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    console.print(Text(wrapped), soft_wrap=True)


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


#: what to do about an items file that is not there, when it is the settings' items_path
ITEMS_HINT = "set RAG_PRICER_ITEMS_PATH or pass --items"


def require_items(path: Path, hint: str = ITEMS_HINT) -> Path:
    """``path`` when it is a file; else the command ends with one line saying what to set."""
    if not Path(path).is_file():
        fail(f"items file not found: {path} ({hint})")
    return path


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
