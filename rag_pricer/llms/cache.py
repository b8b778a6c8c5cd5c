"""On-disk cache of LLM replies, so that re-running an evaluation costs neither money nor time.

One JSON file per reply, named by the SHA-256 of everything that decides the answer (model,
endpoint, generation parameters, the full messages). Only the hash and the reply are written:
never the prompt's key material, never a secret. Files are written atomically (temporary file
then rename), so concurrent writers and a killed process leave no half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: bump when the key material or the entry format changes, to ignore old entries
FORMAT = 1


@dataclass(frozen=True)
class CachedReply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class ResponseCache:
    """A directory of cached replies. Safe to share between threads and processes."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.directory)!r})"

    @staticmethod
    def key(material: Mapping[str, Any]) -> str:
        """The entry name of ``material`` (a JSON-able mapping; order of keys does not matter)."""
        blob = json.dumps({"format": FORMAT, **material}, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        # Two-level fan-out keeps directories small after hundreds of thousands of calls.
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> CachedReply | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return CachedReply(
                text=str(data["text"]),
                prompt_tokens=int(data["prompt_tokens"]),
                completion_tokens=int(data["completion_tokens"]),
                cost_usd=float(data["cost_usd"]),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # A damaged entry is a miss: the call is made again and the entry rewritten.
            log.warning("ignoring unreadable LLM cache entry %s (%s)", path, type(exc).__name__)
            return None

    def put(self, key: str, reply: CachedReply) -> None:
        path = self._path(key)
        tmp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(asdict(reply), handle, ensure_ascii=False)
            os.replace(tmp, path)
            tmp = None
        except OSError as exc:
            # A cache that cannot be written must not lose the answer we already paid for.
            log.warning("could not write LLM cache entry %s (%s)", path, exc)
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("*/*.json")) if self.directory.exists() else 0
