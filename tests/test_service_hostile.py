"""The HTTP service against what issue 24's hostile test found: the operator's settings shown to
clients and logs, ``check=true`` multiplying runtimes, large batches starving small requests,
error bodies 30x the request, the trailing-slash redirect, invisible descriptions, ids and
prices the API must refuse, and a schema that said more (or less) than the server does."""

from __future__ import annotations

import base64
import io
import json
import logging
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from service_settings import service_settings

import rag_pricer.llms as llms
import rag_pricer.pricing.readiness as readiness_module
from rag_pricer.api import Estimator
from rag_pricer.knowledge.store import ProductStore
from rag_pricer.pricing.pricer import Pricer
from rag_pricer.pricing.registry import Strategy, registry
from rag_pricer.pricing.values import Estimate
from rag_pricer.query import Query
from rag_pricer.redaction import Redactor, install_log_redaction
from rag_pricer.service import create_app
from rag_pricer.settings import Settings

USERINFO = "opuser:Hx93-pass-never-shown"
ENDPOINT_LLM = f"openai-compatible:m@http://{USERINFO}@127.0.0.1:9/v1"
BASIC = base64.b64encode(USERINFO.encode()).decode()
MODEL_PATH = "/home/op/private-models/secret-model.gguf"
READ_TOKEN = "read-Qw7e-never-shown"
WRITE_TOKEN = "write-Zx4c-never-shown"
DEADLINE_S = 3.0


def _settings(store: Path, tmp: Path, **values: object) -> Settings:
    given: dict[str, object] = {"max_batch_items": 64, "llm_max_retries": 0, "llm_timeout_s": 2.0}
    return service_settings(store, tmp, **(given | values))


def _ready(client: TestClient) -> TestClient:
    for _ in range(2400):
        if client.get("/readyz").status_code == 200:
            return client
        threading.Event().wait(0.05)
    raise AssertionError(client.get("/readyz").json())


@pytest.fixture(scope="module")
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


class BlockingPricer(Pricer):
    """A local (non-LLM) strategy whose estimates wait for ``release``: a batch that holds a worker."""

    def __init__(self, release: threading.Event, started: threading.Semaphore) -> None:
        self.release = release
        self.started = started

    def _estimate_many(self, queries: list[Query]) -> list[Estimate]:
        self.started.release()
        self.release.wait(30)
        return [Estimate(price=10.0, strategy=self.name) for _ in queries]


STARTED = threading.Semaphore(0)


@pytest.fixture(scope="module", autouse=True)
def blocking_strategy(release: threading.Event) -> Iterator[None]:
    registry.all()
    with pytest.MonkeyPatch.context() as patch:
        factory = lambda resources: BlockingPricer(release, STARTED)  # noqa: E731
        patch.setitem(registry._entries, "test-block", Strategy("test-block", "test: blocks", factory, ("store",)))
        yield


@pytest.fixture(scope="module")
def store_copy(small_store: ProductStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("hostile") / "store"
    shutil.copytree(small_store.path, target)  # type: ignore[arg-type]
    return target


@pytest.fixture(scope="module")
def client(store_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """No read token; the LLM an endpoint whose URL holds a password."""
    settings = _settings(store_copy, tmp_path_factory.mktemp("open"), llm=ENDPOINT_LLM)
    with TestClient(create_app(Estimator.from_settings(settings), settings, deadline_s=DEADLINE_S)) as client:
        yield _ready(client)


@pytest.fixture(scope="module")
def token_client(store_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """Read and write tokens; the LLM a local model file that is not there."""
    settings = _settings(
        store_copy,
        tmp_path_factory.mktemp("tokens"),
        llm=f"local:{MODEL_PATH}",
        api_token=SecretStr(READ_TOKEN),
        write_token=SecretStr(WRITE_TOKEN),
    )
    with TestClient(create_app(Estimator.from_settings(settings), settings, deadline_s=DEADLINE_S)) as client:
        yield _ready(client)


READ = {"Authorization": f"Bearer {READ_TOKEN}"}
WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}


def _shows_nothing_private(text: str) -> None:
    for private in (USERINFO, "Hx93-pass-never-shown", BASIC, BASIC.rstrip("="), MODEL_PATH, "/home/op"):
        assert private not in text


# 2. what clients and logs see of the operator's settings ----------------------------------------


def test_strategies_show_llm_names_only(client: TestClient, token_client: TestClient) -> None:
    for response in (client.get("/v1/strategies"), token_client.get("/v1/strategies", headers=READ)):
        assert response.status_code == 200
        _shows_nothing_private(response.text)
        llm_strategies = [s for s in response.json()["strategies"] if s["llm"] is not None]
        assert llm_strategies and {s["llm"] for s in llm_strategies} <= {"openai-compatible", "local"}


def test_a_409_names_the_model_file_by_its_name_only(token_client: TestClient) -> None:
    response = token_client.post("/v1/estimate", json={"description": "a lamp", "strategy": "rag"}, headers=READ)
    assert response.status_code == 409, response.text
    _shows_nothing_private(response.text)
    assert "secret-model.gguf" in response.json()["message"]


def test_log_lines_never_hold_a_credential_in_clear_or_base64(client: TestClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        install_log_redaction(client.app.state.pricing.redactor)  # type: ignore[attr-defined]
        log = logging.getLogger("rag_pricer.service")
        log.warning("upstream %s refused Authorization: Basic %s", ENDPOINT_LLM, BASIC)
        log.warning("retrying with %s", f"Basic {base64.b64encode(b'someone:else').decode()} and {BASIC}")
    finally:
        root.removeHandler(handler)
    written = stream.getvalue()
    assert written.count("***") >= 3 and "127.0.0.1:9" in written
    _shows_nothing_private(written)
    assert base64.b64encode(b"someone:else").decode() not in written


def test_the_redactor_hides_urls_tokens_and_paths() -> None:
    redactor = Redactor(["sk-abcdef123456"])
    assert redactor.credentials("key sk-abcdef123456, b64 " + base64.b64encode(b"sk-abcdef123456").decode()) == (
        "key ***, b64 ***"
    )
    assert redactor.credentials("GET http://u:p@h/x with Bearer abc.def-ghi") == "GET http://***@h/x with Bearer ***"
    assert redactor.public("no GGUF model file at /srv/x/m.gguf (see http://h:1/v1/models)") == (
        "no GGUF model file at m.gguf (see http://h:1/v1/models)"
    )


# 3. check=true: one shared runtime, cached -----------------------------------------------------


def test_concurrent_checks_ask_one_shared_llm_once(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[str] = []
    probes: list[object] = []
    build, probe = llms.build_llm, readiness_module.ask_probe
    monkeypatch.setattr(llms, "build_llm", lambda spec, settings: builds.append(spec) or build(spec, settings))
    monkeypatch.setattr(readiness_module, "ask_probe", lambda llm: probes.append(llm) or probe(llm))
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: client.get("/v1/strategies", params={"check": "true"}), range(8)))
    assert all(r.status_code == 200 for r in responses)
    assert len(builds) <= 1  # the server's own LLM, built at most once (not one runtime per call)
    assert len(probes) == 1  # asked once for all eight callers, then cached
    assert client.app.state.checks.runs == 1  # type: ignore[attr-defined]
    rag = next(s for s in responses[0].json()["strategies"] if s["name"] == "rag")
    assert rag["llm"] == "openai-compatible" and rag["status"] == "needs-llm"  # the endpoint does not answer
    _shows_nothing_private(responses[0].text)


# 4. large batches do not starve small requests -------------------------------------------------


def test_a_single_estimate_is_answered_while_batches_hold_their_workers(
    client: TestClient, release: threading.Event
) -> None:
    batch = {"items": [{"description": f"lamp {i} " + "x" * 19_000, "strategy": "test-block"} for i in range(4)]}
    with ThreadPoolExecutor(4) as pool:
        batches = [pool.submit(client.post, "/v1/estimate/batch", json=batch) for _ in range(4)]
        assert STARTED.acquire(timeout=30)  # a batch is being priced (and holds its worker)
        # give the other batches time to take workers too, as they did when batches shared the pool
        running = 1 + sum(STARTED.acquire(timeout=1.0) for _ in range(3))
        single = client.post("/v1/estimate", json={"description": "Cordless drill 18V with two batteries"})
        release.set()
        finished = [future.result(timeout=60) for future in batches]
    assert single.status_code == 200, single.text
    assert single.json()["fallback"] is False
    assert running == 1  # batches run one at a time, in their own pool
    assert all(r.status_code == 200 for r in finished)
    assert all("truncated" in " ".join(item["notes"]) for item in finished[0].json()["items"])


# 5. validation errors are capped and summarised ------------------------------------------------


def test_a_huge_invalid_batch_gets_a_small_422(client: TestClient) -> None:
    body = json.dumps({"items": [{}] * 100_000})
    response = client.post("/v1/estimate/batch", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert len(response.content) < 5_000
    assert len(response.json()["details"]) <= 20


def test_repeated_errors_are_one_detail_with_a_count(client: TestClient) -> None:
    body = {"items": [{"k": 0}] * 40}
    response = client.post("/v1/estimate/batch", json=body)
    assert response.status_code == 422
    details = response.json()["details"]
    assert len(details) == 2  # description missing, k too small: each once
    assert {d["count"] for d in details} == {40}
    assert "80 errors in all" in response.json()["message"]


# 7. no redirect on a trailing slash ------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/estimate/"), ("GET", "/v1/strategies/")])
def test_a_trailing_slash_is_404_never_a_redirect(client: TestClient, method: str, path: str) -> None:
    response = client.request(
        method, path, json={"description": "a lamp"}, headers={"Host": "evil.example"}, follow_redirects=False
    )
    assert response.status_code == 404 and "location" not in response.headers
    assert response.json()["error"] == "not_found"


# 8. invisible descriptions -------------------------------------------------------------------


@pytest.mark.parametrize("description", ["\u0000\u0000", "\u200b", "\u200b \u200d\ufeff"])
def test_an_invisible_description_is_a_422(client: TestClient, description: str) -> None:
    response = client.post("/v1/estimate", json={"description": description})
    assert response.status_code == 422, response.text
    assert "no visible text" in response.json()["message"]
    batch = client.post("/v1/estimate/batch", json={"items": [{"description": "a lamp"}, {"description": description}]})
    assert batch.status_code == 422


# 9. ids and prices -----------------------------------------------------------------------------


@pytest.mark.parametrize("product_id", ["x" * 10_000, "a..b", ".hidden", "a b", "x" * 129])
def test_an_id_outside_the_format_is_a_422_on_every_product_route(token_client: TestClient, product_id: str) -> None:
    assert token_client.get(f"/v1/products/{product_id}", headers=READ).status_code == 422
    product = {"title": "Brass hinge", "price": 12.5}
    assert token_client.put(f"/v1/products/{product_id}", json=product, headers=WRITE).status_code == 422
    assert token_client.delete(f"/v1/products/{product_id}", headers=WRITE).status_code == 422
    batch = {"upsert": [product | {"id": product_id}], "delete": [product_id]}
    assert token_client.post("/v1/products/batch", json=batch, headers=WRITE).status_code == 422


def test_a_price_given_as_text_is_refused(token_client: TestClient) -> None:
    response = token_client.put("/v1/products/h-1", json={"title": "Brass hinge", "price": "12.50"}, headers=WRITE)
    assert response.status_code == 422 and response.json()["details"][0]["reason"] == "bad_price"
    assert token_client.get("/v1/products/h-1", headers=READ).status_code == 404  # nothing stored


# 10. the schema says what the server does ------------------------------------------------------


def test_the_schema_declares_auth_only_when_a_token_is_set(client: TestClient, token_client: TestClient) -> None:
    open_spec = client.get("/openapi.json").json()
    assert "securitySchemes" not in open_spec.get("components", {})
    for item in open_spec["paths"].values():
        for operation in item.values():
            assert "security" not in operation and "401" not in operation["responses"]
    guarded = token_client.get("/openapi.json").json()
    assert guarded["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert guarded["paths"]["/v1/estimate"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in guarded["paths"]["/healthz"]["get"]


def test_the_schema_gives_min_length_the_llm_names_and_the_400(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    request = spec["components"]["schemas"]["EstimateRequest"]["properties"]
    assert request["description"]["minLength"] == 1
    assert {"type": "string", "enum": ["openai-compatible"]} in request["llm"]["anyOf"]
    for path in ("/v1/estimate", "/v1/estimate/batch"):
        assert "400" in spec["paths"][path]["post"]["responses"]


def test_a_body_that_is_not_utf8_is_a_documented_400(client: TestClient) -> None:
    body = b'{"description": "caf\xe9 \xff\xfe"}'
    response = client.post("/v1/estimate", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "bad_request"
    invalid = client.post("/v1/estimate", content=b"{not json", headers={"content-type": "application/json"})
    assert invalid.status_code == 422
