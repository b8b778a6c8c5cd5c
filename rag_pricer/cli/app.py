"""The ``rag-pricer`` command: each subcommand lives in its own module of this package."""

from __future__ import annotations

from typing import Annotated

import typer

import rag_pricer.help_format  # noqa: F401 - flags show no value type in --help
from rag_pricer.cli import (
    calibrate,
    compare,
    config,
    demo,
    doctor,
    estimate,
    evaluate,
    finetune,
    llms,
    monitor,
    prepare,
    price_file,
    serve,
    strategies,
    train_baselines,
    train_ensemble,
)

app = typer.Typer(
    help="Estimate product prices from descriptions, with the evidence behind them.",
    no_args_is_help=True,
    add_completion=False,
)
app.command()(prepare.prepare)
app.command()(strategies.strategies)
app.command()(estimate.estimate)
app.command("price-file")(price_file.price_file)
app.command()(llms.llms)
app.command("train-baselines")(train_baselines.train_baselines)
app.command("train-ensemble")(train_ensemble.train_ensemble)
app.command()(calibrate.calibrate)
app.command()(finetune.finetune)
app.command()(evaluate.evaluate)
app.command()(compare.compare)
app.command()(demo.demo)
app.command()(serve.serve)
app.command("monitor")(monitor.monitor_command)
app.command()(doctor.doctor)
app.command()(config.config)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"rag-pricer {version('rag-pricer')}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Estimate product prices from descriptions, with the evidence behind them."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
