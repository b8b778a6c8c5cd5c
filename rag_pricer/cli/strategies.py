"""``rag-pricer strategies``: list the registered strategies and which of them are ready."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from rag_pricer.cli.common import LlmOpt, StoreOpt, console, print_indented, settings_with
from rag_pricer.evaluation.scores import dev_scores, recommended
from rag_pricer.pricing.ranges import calibration_path
from rag_pricer.pricing.readiness import Readiness
from rag_pricer.pricing.registry import NEEDS, Strategy, registry

STYLE = {"ready": "green"}


def strategies(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Ask each LLM one short question (and a Chroma server if set).")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Seconds the --check question may take.")] = 20.0,
    llm: LlmOpt = None,
    store: StoreOpt = None,
) -> None:
    """List the pricing strategies: whether each is ready here, and if not what to run; what each
    needs, the pip extra it needs beyond the core install, and its options (type, default).
    Without --check, LLMs are looked at (model file, runtime installed, key set) but not asked
    anything."""
    settings = settings_with(llm=llm, store_path=store)
    readiness = Readiness(settings, check=check, llm_timeout_s=timeout)
    scores = dev_scores(settings.models_dir, registry.names())
    rows = [
        {
            "name": s.name,
            "summary": s.summary,
            "needs": list(s.needs),
            "extra": s.extra,
            "options": [asdict(option) for option in s.option_info()],
            **_state(readiness, s),
            "dev_mae": scores[s.name].mae if s.name in scores else None,
            "dev_hit_rate": scores[s.name].hit_rate if s.name in scores else None,
            "dev_score": scores[s.name].to_dict() if s.name in scores else None,
            "calibrated": calibration_path(settings.models_dir, s.name).is_file(),
        }
        for s in registry.all()
    ]
    best = recommended(scores, settings.strategy, {row["name"] for row in rows if row["ready"]})
    for row in rows:
        row["recommended"] = row["name"] == best
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=repr))
        return
    # One block per strategy rather than a five-column table: at 80 columns a table breaks words
    # ("Similarity-we ighted"); blocks wrap between words at any width.
    for row in rows:
        style = STYLE.get(row["status"], "yellow")
        head = Text.assemble((row["name"], "bold"), "  ", (row["status"], style))
        if row["dev_mae"] is not None:
            head.append(f"  ${row['dev_mae']:,.2f} on dev")
        if row["recommended"]:
            head.append("  recommended", "bold green")
        if row["llm"]:
            head.append(f"  llm: {row['llm']}" + (" (answered)" if row["llm_checked"] else ""))
        console.print(head)
        needs = ", ".join(row["needs"]) or "nothing"
        extra = f" (the [{row['extra']}] extra)" if row["extra"] else ""
        options = "; ".join(f"{o['name']}: {o['type']} = {o['default']!r}" for o in row["options"]) or "none"
        lines = [row["summary"], f"needs: {needs}{extra}", f"options: {options}"]
        if row["dev_score"]:
            lines.append(_score_line(row["dev_score"]))
        if row["ready"] and not row["calibrated"]:
            lines.append(f"range: none; run `rag-pricer calibrate --strategy {row['name']} --split dev`")
        for line in lines:
            print_indented(line)
    for names, detail, hint in _unready(rows):
        advice = f"; run `{hint}`" if hint else ""
        console.print(f"[yellow]{', '.join(names)}[/]: {escape(detail + advice)}", soft_wrap=True)
    console.print("needs: " + "; ".join(f"{k} = {v}" for k, v in NEEDS.items()))
    console.print("options: `-o NAME=VALUE` (estimate, evaluate, compare); unknown names and bad values are refused")


def _score_line(score: dict[str, Any]) -> str:
    low, high = score["mae_ci"]
    llm = f", llm {score['llm']}" if score.get("llm") else ""
    return (
        f"dev: MAE ${score['mae']:,.2f} (95% CI ${low:,.2f}-${high:,.2f}), hit rate {score['hit_rate']:.1%}, "
        f"{score['n']} items, {score['how']}{llm}, {score['date'][:10]}"
    )


def _unready(rows: list[dict[str, Any]]) -> list[tuple[list[str], str, str | None]]:
    """One line per remedy: the baselines that one `train-baselines` run would train share it,
    rather than ten near-identical lines."""
    groups: dict[tuple[str, str | None], list[str]] = {}
    for row in rows:
        if row["ready"]:
            continue
        hint = row["hint"]
        if hint and " --only " in hint:
            hint = hint.split(" --only ")[0]
            detail = "no trained model (`--only NAME` trains one)"
        else:
            detail = str(row["detail"])
        groups.setdefault((detail, hint), []).append(row["name"])
    return [(names, detail, hint) for (detail, hint), names in groups.items()]


def _state(readiness: Readiness, strategy: Strategy) -> dict[str, Any]:
    state = readiness.of(strategy).to_dict()
    del state["name"]
    return state
