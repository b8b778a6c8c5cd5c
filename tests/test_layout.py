"""The layout is a picture of the architecture: the map of docs/architecture.md lists every module, and imports
follow the pipeline (ingest -> knowledge / llms -> pricing -> strategies -> evaluation / training -> service,
cli)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ingest", "rag_pricer")

#: lower layers never import higher ones (function-level imports included)
LAYERS = [
    ("rag_pricer.settings", 0),
    ("rag_pricer.items", 0),
    ("rag_pricer.query", 0),
    ("rag_pricer.atomic_files", 0),
    ("rag_pricer.plugins", 0),
    ("rag_pricer.help_format", 0),
    ("rag_pricer.redaction", 0),
    ("rag_pricer.llms.usage", 0),
    ("rag_pricer.knowledge", 1),
    ("rag_pricer.llms", 1),
    ("ingest", 1),
    ("rag_pricer.pricing", 2),
    ("rag_pricer.strategies", 3),
    ("rag_pricer.evaluation", 4),
    ("rag_pricer.training", 4),
    ("rag_pricer.api", 4),
    ("rag_pricer.feedback", 4),
    ("rag_pricer.diagnostics", 5),
    ("rag_pricer.service", 5),
    ("rag_pricer.cli", 5),
]


def layer(module: str) -> int | None:
    matches = [(len(prefix), rank) for prefix, rank in LAYERS if module == prefix or module.startswith(prefix + ".")]
    return max(matches)[1] if matches else None


def modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def imported(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return [name for name in names if name.split(".")[0] in PACKAGES]


def test_imports_follow_the_pipeline() -> None:
    backwards = []
    for path in modules():
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        mine = layer(module)
        for target in imported(path):
            theirs = layer(target)
            if mine is not None and theirs is not None and theirs > mine:
                backwards.append(f"{module} -> {target}")
    assert not backwards, backwards


def test_ingest_never_imports_the_runtime_above_the_knowledge_base() -> None:
    for path in (ROOT / "ingest").rglob("*.py"):
        assert not [t for t in imported(path) if (layer(t) or 0) > 1], path


def module_map() -> str:
    """The module map: the first code block of docs/architecture.md (README links to it)."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    return text.split("```", 2)[1]


def listed_paths() -> set[str]:
    """``package/path.py`` for every name of the map, with the folder of the line's first path
    carried to the names that follow it on that line (``llms/reply.py, errors.py``)."""
    paths, package = set(), None
    for line in module_map().splitlines():
        if re.match(r"^(\w+)/", line):
            package = line.split("/")[0]
            continue
        names = re.findall(r"(?<![\w/.`])([\w/]+\.py)\b", line.split("  ", 2)[1] if line.startswith("  ") else line)
        folder = ""
        for name in names:
            if "/" in name:
                folder = name.rsplit("/", 1)[0] + "/"
                paths.add(f"{package}/{name}")
            else:
                paths.add(f"{package}/{folder}{name}")
    return paths


def test_the_module_map_lists_every_module_and_nothing_else() -> None:
    on_disk = {str(p.relative_to(ROOT)) for p in modules() if p.name != "__init__.py"}
    listed = listed_paths()
    assert sorted(on_disk - listed) == [], "modules missing from the map of docs/architecture.md"
    assert sorted(listed - on_disk) == [], "the map of docs/architecture.md names modules that do not exist"


def imports_of(folder: str, prefix: str) -> list[str]:
    """``module -> target`` for every import of a ``prefix`` module under ``rag_pricer/folder``."""
    found = []
    for path in sorted((ROOT / "rag_pricer" / folder).rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found += [f"{module} -> {t}" for t in imported(path) if t == prefix or t.startswith(prefix + ".")]
    return found


def test_the_evaluation_harness_sees_strategies_only_through_the_registry_and_the_pricer() -> None:
    """Scoring, caching and comparing know no strategy's internals: what a run depends on is the
    pricer's own ``fingerprint``, never a strategy module the harness imports."""
    assert not imports_of("evaluation", "rag_pricer.strategies")


def test_the_cli_and_the_service_see_strategies_only_through_the_registry() -> None:
    """Commands are thin: what a command needs of a strategy's internals (training it) lives in
    ``training/``, and pricing goes through the registry and the ``Pricer`` contract."""
    assert not imports_of("cli", "rag_pricer.strategies") + imports_of("service", "rag_pricer.strategies")


def test_strategies_and_evaluation_never_import_the_training_room() -> None:
    """A strategy loads what training saved, and scoring needs none of the training code."""
    assert not imports_of("strategies", "rag_pricer.training") + imports_of("evaluation", "rag_pricer.training")


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def import_graph() -> dict[str, set[str]]:
    """Each module and the modules it imports, type-checking and function-level imports included
    (``from a.b import c`` names the module ``a.b.c`` when it is one, else ``a.b``)."""
    known = {module_name(path): path for path in modules()}

    def owner(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets |= {owner(f"{node.module}.{alias.name}") for alias in node.names}
            elif isinstance(node, ast.Import):
                targets |= {owner(alias.name) for alias in node.names}
        graph[name] = {t for t in targets if t and t != name}
    return graph


def test_no_two_modules_import_each_other_even_indirectly() -> None:
    """A cycle (``readiness`` -> ``registry`` -> ``readiness``) means two modules are one room
    with two doors: a type belongs to the module that owns it, and the other imports it."""
    graph = import_graph()

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            current = todo.pop()
            if current == goal:
                return True
            if current not in seen:
                seen.add(current)
                todo += graph.get(current, set())
        return False

    cycles = sorted(f"{a} <-> {b}" for a in graph for b in graph[a] if a < b and reaches(b, a))
    assert not cycles, cycles
