"""``service_settings``: the settings the service tests start a server with (a module of its own,
not a fixture, because each test file picks its own values), and ``wait_ready`` for its start."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from rag_pricer.settings import Settings


def service_settings(store: Path, tmp: Path, **values: Any) -> Settings:
    """A server on ``store`` with the fake LLM, no LLM cache, models under ``tmp`` and knn as its
    default strategy (the small store has no ensemble); ``values`` set or replace any field."""
    defaults: dict[str, Any] = {
        "_env_file": None,  # a developer's .env must not change what the tests see
        "store_path": store,
        "collection": "products",
        "llm": "fake",
        "llm_cache_dir": None,
        "models_dir": tmp / "models",
        "strategy": "knn",
    }
    return Settings(**(defaults | values))


def wait_ready(client: TestClient, timeout_s: float = 120) -> None:
    """Until the server's ``/readyz`` answers 200 (it loads the store in the background)."""
    deadline = time.monotonic() + timeout_s
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").text
        time.sleep(0.05)
