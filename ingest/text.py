"""Builds an item's text from a raw record's ``description``, ``features`` and ``details``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ingest.scrub import Scrubber


@dataclass(frozen=True)
class TextBuilder:
    """Joins the scrubbed description paragraphs, feature bullets and details, one per line.

    The order follows the course: prose first (what the product is), then bullets, then the
    key/value details, so truncation to a token budget cuts the least useful part first.
    """

    scrubber: Scrubber = field(default_factory=Scrubber)

    def __call__(self, record: Mapping[str, Any]) -> str:
        lines = [*_strings(record.get("description")), *_strings(record.get("features"))]
        cleaned = [self.scrubber.clean(line) for line in lines]
        details = _details_mapping(record.get("details"))
        if details:
            cleaned.append(self.scrubber.details(details))
        return "\n".join(line for line in cleaned if line)


def _strings(value: Any) -> list[str]:
    """A list of strings from a list (the raw format), a lone string, or nothing."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [part for part in value if isinstance(part, str)]
    return []


def _details_mapping(value: Any) -> dict[str, Any]:
    """``details`` is an object in the raw files and a JSON string in some exports."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    return dict(value) if isinstance(value, Mapping) else {}
