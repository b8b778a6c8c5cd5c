"""The version of an embedded Chroma store as the files on disk say it, read without Chroma."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

#: Chroma's own write counter: every add, upsert or delete by any process appends to the
#: ``embeddings_queue`` log with the next ``seq_id``, and ``max_seq_id`` keeps the last one each
#: segment applied (the log may be purged once applied): the larger of both never goes back
LAST_WRITE = (
    "SELECT max(seq) FROM ("
    "SELECT max(seq_id) AS seq FROM embeddings_queue UNION ALL SELECT max(seq_id) AS seq FROM max_seq_id)"
)


class StoreVersion:
    """Reads which version of the store folder ``path`` is on disk: ``"<inode>:<seq>"`` (the
    SQLite file's inode, so a store deleted and rebuilt differs even at the same count; and
    Chroma's last write sequence number), or ``None`` when there is no store there.

    A Chroma client of an embedded store keeps its HNSW index in memory and does not see what
    another process writes to the folder afterwards; comparing this version with the one a
    client was opened at tells when it must be reopened. One read is a ``stat`` and one indexed
    SQLite query on a connection kept open (read-only, never a write lock): ~0.1 ms.
    """

    def __init__(self, path: Path) -> None:
        self.file = path / "chroma.sqlite3"
        self._db: sqlite3.Connection | None = None
        self._inode: int | None = None
        self._lock = threading.Lock()

    def read(self) -> str | None:
        try:
            inode = os.stat(self.file).st_ino
        except FileNotFoundError:
            self.close()
            return None
        with self._lock:
            try:
                if self._db is None or inode != self._inode:
                    self._reconnect(inode)
                assert self._db is not None
                (seq,) = self._db.execute(LAST_WRITE).fetchone()
            except sqlite3.Error:
                # Not a Chroma store (yet), or one being created: no version to compare.
                self._forget()
                return None
        return f"{inode}:{seq}"

    def _reconnect(self, inode: int) -> None:
        self._forget()
        # mode=ro: this connection never takes a write lock; the busy timeout waits out a
        # writer's commit instead of failing the read.
        self._db = sqlite3.connect(f"file:{self.file}?mode=ro", uri=True, timeout=5.0, check_same_thread=False)
        self._inode = inode

    def _forget(self) -> None:
        db, self._db, self._inode = self._db, None, None
        if db is not None:
            db.close()

    def close(self) -> None:
        with self._lock:
            self._forget()
