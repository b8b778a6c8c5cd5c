"""How the commands' ``--help`` shows options: a flag takes no value, so it shows no type.

typer 0.29 shows every flag as ``--version <bool>``, as if it took a value; both CLIs
(``rag-pricer``, ``rag-pricer-ingest``) import this module, which makes flags show none.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperOption

_type_of = TyperOption.display_type_rich


def _flags_take_no_value(self: TyperOption, ctx: Any) -> str | None:
    return None if self.is_flag else _type_of(self, ctx)


TyperOption.display_type_rich = _flags_take_no_value  # type: ignore[method-assign]
