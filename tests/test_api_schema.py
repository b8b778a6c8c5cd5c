"""Property-based tests of the HTTP API, generated from its own OpenAPI schema (schemathesis).

Every operation of the schema, on a server without a token and on one with read and write
tokens (requests sent with no token, the read token and the write token): no 5xx, only the
status codes the operation documents, and responses that match their documented schema and
content type. Bounded and derandomized: the same cases on every run, in well under a minute.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from service_settings import service_settings, wait_ready

from rag_pricer.api import Estimator
from rag_pricer.knowledge.store import ProductStore
from rag_pricer.service import create_app
from rag_pricer.settings import Settings

READ_TOKEN = "read-Ps9m-schema"
WRITE_TOKEN = "write-Lq2v-schema"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
#: examples per operation and server: enough to reach every branch of the bodies, quick on 2 cores
EXAMPLES = 8
BASE = "http://testserver"


def _client(store: Path, tmp: Path, **values: Any) -> TestClient:
    settings = service_settings(store, tmp, **({"max_batch_items": 4} | values))
    return TestClient(create_app(Estimator.from_settings(settings), settings, deadline_s=5.0))


@pytest.fixture(scope="module")
def store(small_store: ProductStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the small store: generated writes land here, not in the shared one."""
    target = tmp_path_factory.mktemp("schema") / "store"
    shutil.copytree(small_store.path, target)  # type: ignore[arg-type]
    return target


@pytest.fixture(scope="module", params=["no token", "tokens"])
def server(request: pytest.FixtureRequest, store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tokens = {}
    if request.param == "tokens":
        tokens = {"api_token": SecretStr(READ_TOKEN), "write_token": SecretStr(WRITE_TOKEN)}
    with _client(store, tmp_path_factory.mktemp("schema-models"), **tokens) as client:
        wait_ready(client)
        schema = schemathesis.openapi.from_dict(client.get("/openapi.json").json())
        headers = [{}] if not tokens else [{}, {"Authorization": f"Bearer {READ_TOKEN}"}]
        if tokens:
            headers.append({"Authorization": f"Bearer {WRITE_TOKEN}"})
        yield {"client": client, "schema": schema, "headers": headers}


def _operations() -> list[str]:
    """The operations of the schema (read from an app that needs no store to describe itself)."""
    settings = Settings(_env_file=None, store_path=Path("/nonexistent"), llm="fake", llm_cache_dir=None)
    spec = create_app(settings=settings).openapi()
    return [f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item]


@pytest.mark.parametrize("operation", _operations())
def test_every_operation_keeps_its_schema(server: dict, operation: str) -> None:
    client: TestClient = server["client"]
    method, path = operation.split(" ", 1)
    api_operation = server["schema"][path][method]

    @seed(24)
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=api_operation.as_strategy(), headers=st.sampled_from(server["headers"]))
    def check(case: schemathesis.Case, headers: dict[str, str]) -> None:
        kwargs = case.as_transport_kwargs(base_url=BASE, headers=headers)
        response = client.request(
            kwargs["method"],
            kwargs["url"],
            headers=kwargs.get("headers"),
            params=kwargs.get("params"),
            cookies=kwargs.get("cookies"),
            content=_content(kwargs),
        )
        case.validate_response(response, checks=CHECKS, headers=headers)

    check()


def _content(kwargs: dict[str, Any]) -> bytes | None:
    import json

    if kwargs.get("json") is not None or ("json" in kwargs and kwargs.get("data") is None):
        return json.dumps(kwargs.get("json")).encode() if "json" in kwargs else None
    data = kwargs.get("data")
    return data.encode() if isinstance(data, str) else data
