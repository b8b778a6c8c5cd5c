"""Locks of the store: shared use against reopening in one process, and one writer at a time
across processes."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SharedLock:
    """Many holders of ``shared()`` at once, or one of ``exclusive()``: queries share the store's
    client while a reopen (which closes it) waits for them to finish and makes them wait."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive: int | None = None  # the thread holding it
        self._mine = threading.local()  # this thread's shared depth: nested use never waits

    @contextmanager
    def shared(self) -> Iterator[None]:
        depth = getattr(self._mine, "depth", 0)
        me = threading.get_ident()
        if depth == 0 and self._exclusive != me:
            with self._cond:
                self._cond.wait_for(lambda: self._exclusive is None)
                self._shared += 1
        self._mine.depth = depth + 1
        try:
            yield
        finally:
            self._mine.depth = depth
            if depth == 0 and self._exclusive != me:
                with self._cond:
                    self._shared -= 1
                    self._cond.notify_all()

    def holding(self) -> bool:
        """Whether this thread holds the lock (shared or exclusive)."""
        return getattr(self._mine, "depth", 0) > 0 or self._exclusive == threading.get_ident()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Held alone; a thread that holds ``shared`` must not ask (it would wait for itself)."""
        with self._cond:
            self._cond.wait_for(lambda: self._exclusive is None)
            self._exclusive = threading.get_ident()  # new shared holders wait from now on
            self._cond.wait_for(lambda: self._shared == 0)
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = None
                self._cond.notify_all()


class WriteLock:
    """One writer at a time on a store folder, across processes and threads: an exclusive
    ``flock`` on ``<folder>/rag-pricer-write.lock``, released by the kernel when its holder
    dies (a writer killed mid-write never leaves the store locked)."""

    NAME = "rag-pricer-write.lock"

    def __init__(self, folder: Path) -> None:
        self.file = folder / self.NAME
        self._threads = threading.Lock()  # flock is per open file: threads of one process queue here

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._threads:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            with open(self.file, "a+b") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
