"""A request's validation errors as a client gets them: each kind once, at most ``MAX_DETAILS``.

A body of 100,000 empty items has 100,000 identical errors ("items.N.description: Field
required"); listed one by one they made a 13 MB answer to a 400 KB request. Errors are grouped
by kind (their location with list indices as ``*``, and their type): each group is one detail
with its first location and a ``count``, and the message names the first few groups and how
many errors there were in all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: groups of errors listed in ``details``; the message names the first ``MAX_IN_MESSAGE``
MAX_DETAILS = 20
MAX_IN_MESSAGE = 3
#: a message or a location part longer than this is cut (a field name is never that long)
MAX_TEXT_CHARS = 200


def summarise(errors: Iterable[Mapping[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The one-line message and the details of ``errors`` (pydantic's ``loc``/``msg``/``type``
    dicts): one detail per kind, with ``count`` when the kind occurred more than once."""
    groups: dict[tuple[tuple[str | int, ...], str], dict[str, Any]] = {}
    total = 0
    for error in errors:
        total += 1
        loc = location(error)
        kind = (tuple("*" if isinstance(part, int) else part for part in loc), str(error.get("type", "")))
        group = groups.get(kind)
        if group is not None:
            group["count"] += 1
        elif len(groups) < MAX_DETAILS:
            groups[kind] = {"loc": loc, "msg": message(error), "type": kind[1], "count": 1}
    details = [{k: v for k, v in group.items() if k != "count" or v > 1} for group in groups.values()]
    shown = "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in details[:MAX_IN_MESSAGE])
    if total > len(details[:MAX_IN_MESSAGE]):
        shown += f" ({total:,} errors in all)"
    return shown or "invalid request", details


def message(error: Mapping[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        return "the body is not valid JSON"
    # pydantic prefixes our own validators' messages with "Value error, ": drop it.
    return _cut(str(error.get("msg", "invalid")).removeprefix("Value error, "))


def location(error: Mapping[str, Any]) -> list[str | int]:
    # A JSON syntax error's location ends with a character offset, which reads like a field.
    loc = [part if isinstance(part, int) else _cut(str(part)) for part in error.get("loc", ())]
    return loc[:1] if error.get("type") == "json_invalid" else loc


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT_CHARS else text[:MAX_TEXT_CHARS] + "..."
