"""The HTTP service: API contract, bad input, fallbacks under a slow or failing LLM, auth,
readiness, CORS, and no secret in any response or log. One estimator (embedding model and the
small store) is shared by every app built here, as the service shares it between requests."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from service_settings import wait_ready as service_ready
from typer.testing import CliRunner

import rag_pricer.strategies.knn as knn_strategy
from rag_pricer.api import Estimator
from rag_pricer.evaluation.bootstrap import Interval
from rag_pricer.evaluation.scores import ScoreRecord
from rag_pricer.items import Item
from rag_pricer.knowledge.store import ProductStore
from rag_pricer.pricing.pricer import Pricer
from rag_pricer.pricing.ranges import RangeCalibration
from rag_pricer.pricing.registry import Strategy, registry
from rag_pricer.pricing.values import Estimate
from rag_pricer.query import Query
from rag_pricer.service import create_app
from rag_pricer.service.schemas import MAX_DESCRIPTION_CHARS
from rag_pricer.settings import Settings

TOKEN = "tok-Zq81-never-shown"
API_KEY = "sk-test-Wm4n-never-shown"
DEADLINE_S = 3.0
RESPONSE_KEYS = {
    "id",
    "price",
    "strategy",
    "comparables",
    "fallback",
    "fallback_reason",
    "llm_answer",
    "latency_ms",
    "notes",
    "usage",
    "low",
    "high",
    "coverage",
    "confidence",
    "confidence_reason",
}


# fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service_settings(small_store: ProductStore, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tmp = tmp_path_factory.mktemp("service")
    return Settings(
        store_path=small_store.path,
        collection="products",
        llm="fake",
        llm_cache_dir=None,
        models_dir=tmp / "models",
        strategy="knn",
        max_batch_items=4,
        openai_api_key=SecretStr(API_KEY),
        _env_file=None,
    )


@pytest.fixture(scope="module")
def estimator(service_settings: Settings) -> Estimator:
    return Estimator.from_settings(service_settings)


@pytest.fixture(scope="module")
def release() -> Iterator[threading.Event]:
    """Set at the end of the module so that the threads of the slow strategy finish."""
    event = threading.Event()
    yield event
    event.set()


class ScriptedPricer(Pricer):
    """A stand-in for an LLM strategy that hangs, raises or answers nonsense."""

    def __init__(self, behaviour: str, release: threading.Event) -> None:
        self.behaviour = behaviour
        self.release = release

    def _estimate_many(self, queries: list[Query]) -> list[Estimate]:
        if self.behaviour == "slow":
            self.release.wait(30)
        if self.behaviour == "raise":
            raise RuntimeError(f"upstream refused key {API_KEY} and token {TOKEN}")
        price = {"nan": math.nan, "zero": 0.0}.get(self.behaviour, 10.0)
        return [Estimate(price=price, strategy=self.name, llm_answer="no idea") for _ in queries]


@pytest.fixture(scope="module", autouse=True)
def scripted_strategies(release: threading.Event) -> Iterator[None]:
    registry.all()  # load the built-in strategies first so that ours are added, not replaced
    with pytest.MonkeyPatch.context() as patch:
        for behaviour in ("slow", "raise", "nan", "zero"):
            name = f"test-{behaviour}"
            factory = lambda resources, _b=behaviour: ScriptedPricer(_b, release)  # noqa: E731
            patch.setitem(registry._entries, name, Strategy(name, f"test: {behaviour}", factory, ("llm", "store")))
        yield


wait_ready = partial(service_ready, timeout_s=60)  # this file's servers load in a minute at most


@pytest.fixture(scope="module")
def client(estimator: Estimator, service_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(estimator, service_settings, deadline_s=DEADLINE_S)) as client:
        wait_ready(client)
        yield client


@pytest.fixture(scope="module")
def description(train_items: list[Item]) -> str:
    return train_items[7].description


def estimate(client: TestClient, **body: object) -> dict:
    response = client.post("/v1/estimate", json=body)
    assert response.status_code == 200, response.text
    return response.json()


# contract -------------------------------------------------------------------------------------


def test_estimate_returns_the_documented_fields(client: TestClient, estimator: Estimator, description: str) -> None:
    body = estimate(client, description=description)
    assert set(body) == RESPONSE_KEYS
    assert body["strategy"] == "knn" and body["fallback"] is False and body["fallback_reason"] is None
    assert body["latency_ms"] > 0
    assert len(body["comparables"]) == knn_strategy.DEFAULT_K
    assert set(body["comparables"][0]) == {"id", "title", "price", "similarity", "category"}
    similarities = [c["similarity"] for c in body["comparables"]]
    assert similarities == sorted(similarities, reverse=True)
    # The same numbers as the Python API (the service adds no pricing logic of its own).
    direct = estimator.estimate(description, "knn")
    assert body["price"] == pytest.approx(direct.price, abs=0.01)
    assert [c["id"] for c in body["comparables"]] == [c.id for c in direct.comparables]


def test_an_uncalibrated_strategy_says_so_and_a_calibrated_one_gives_its_range(
    client: TestClient, service_settings: Settings, description: str, tmp_path: Path
) -> None:
    body = estimate(client, description=description)
    assert body["low"] is None and body["high"] is None and body["coverage"] is None
    # what the page shows a visitor: that there is no range, never the operator's command or a server path
    assert "no price range for this strategy (it is not calibrated)" in body["notes"]
    assert not any("rag-pricer" in note or str(service_settings.models_dir) in note for note in body["notes"])
    settings = service_settings.model_copy(update={"models_dir": tmp_path})
    RangeCalibration("knn", 0.8, -0.5, 0.75, 200).save(tmp_path)
    with TestClient(create_app(Estimator.from_settings(settings), settings)) as calibrated:
        wait_ready(calibrated)
        ranged = estimate(calibrated, description=description)
    assert ranged["coverage"] == 0.8 and ranged["price"] == pytest.approx(body["price"], abs=0.01)
    assert ranged["low"] == pytest.approx(ranged["price"] * math.exp(-0.5), abs=0.02)
    assert ranged["high"] == pytest.approx(ranged["price"] * math.exp(0.75), abs=0.02)


def test_an_estimate_says_how_far_to_trust_it(client: TestClient, train_items: list[Item]) -> None:
    unknown = estimate(client, description="hello world")
    assert unknown["confidence"] == "low" and "guess" in unknown["confidence_reason"]
    known = estimate(client, description=train_items[3].description)  # a car headlamp among car lights
    assert known["confidence"] in ("high", "medium") and known["confidence_reason"]
    schema = client.get("/openapi.json").json()["components"]["schemas"]["EstimateResponse"]["properties"]
    levels = schema["confidence"]["anyOf"][0]
    assert levels["enum"] == ["high", "medium", "low"] and "guess" in schema["confidence"]["description"]
    assert schema["confidence_reason"]["description"]


def test_k_and_category_are_applied(client: TestClient, description: str) -> None:
    body = estimate(client, description=description, k=3, category="Electronics")
    assert len(body["comparables"]) == 3
    assert {c["category"] for c in body["comparables"]} == {"Electronics"}


def test_long_description_is_truncated_with_a_note(client: TestClient, service_settings: Settings) -> None:
    body = estimate(client, description="cordless drill with two batteries " * 200)
    assert any("truncated" in note for note in body["notes"])
    assert service_settings.max_description_chars < 200 * 34 <= MAX_DESCRIPTION_CHARS


def test_strategies_lists_the_registry(client: TestClient) -> None:
    body = client.get("/v1/strategies").json()
    assert body["default"] == "knn" and body["fallback"] == "knn"
    by_name = {s["name"]: s for s in body["strategies"]}
    assert set(by_name) == set(registry.names())
    assert by_name["knn"]["needs"] == ["store"] and "k" in {o["name"] for o in by_name["knn"]["options"]}


def test_strategies_say_which_are_ready_and_what_to_run(client: TestClient, service_settings: Settings) -> None:
    by_name = {s["name"]: s for s in client.get("/v1/strategies").json()["strategies"]}
    assert by_name["knn"]["status"] == "ready" and by_name["knn"]["ready"] is True and by_name["knn"]["hint"] is None
    bow = by_name["bow"]
    assert bow["status"] == "needs-training" and bow["ready"] is False
    assert bow["hint"] == "rag-pricer train-baselines --items ITEMS --split train --only bow"  # paths named, not shown
    assert str(service_settings.models_dir) not in (bow["detail"] or "") and "MODELS_DIR/bow" in (bow["detail"] or "")
    rag = by_name["rag"]
    assert rag["ready"] is True and rag["llm"] == "fake" and rag["llm_checked"] is False
    checked = {s["name"]: s for s in client.get("/v1/strategies", params={"check": "true"}).json()["strategies"]}
    assert checked["rag"]["ready"] is True and checked["rag"]["llm_checked"] is True  # the fake LLM answered


def test_a_strategy_that_is_not_ready_is_refused_with_what_to_run(client: TestClient, description: str) -> None:
    response = client.post("/v1/estimate", json={"description": description, "strategy": "finetuned"})
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["error"] == "strategy_not_ready" and "rag-pricer finetune" in body["message"]
    hint = body["details"][0]["hint"]
    assert body["details"] == [{"strategy": "finetuned", "status": "needs-training", "hint": hint}]
    assert hint == "rag-pricer finetune --items ITEMS --split train" and "MODELS_DIR" in body["message"]
    items = [{"description": description}, {"description": description, "strategy": "bow"}]
    batch = client.post("/v1/estimate/batch", json={"items": items})
    assert batch.status_code == 409 and "train-baselines" in batch.json()["message"]


def test_health_ready_docs_and_page(client: TestClient, train_items: list[Item]) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["auth_required"] is False and health["version"]
    ready = client.get("/readyz").json()
    assert ready["ready"] is True and ready["status"] == "ready" and ready["store_items"] == len(train_items)
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/v1/estimate"]["post"]
    assert operation["summary"] and {"200", "400", "413", "422", "503"} <= set(operation["responses"])
    assert "401" not in operation["responses"]  # no token on this server: no 401 (issue 24)
    assert "examples" in spec["components"]["schemas"]["EstimateRequest"]
    page = client.get("/")
    assert page.status_code == 200 and 'id="description"' in page.text
    assert client.get("/static/app.js").status_code == 200


# bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"description": ""}, "description", "empty"),
        ({"description": "  \n\t "}, "description", "empty"),
        ({}, "description", "required"),
        ({"description": 42}, "description", "string"),
        ({"description": "a lamp", "k": "five"}, "k", "integer"),
        ({"description": "a lamp", "k": True}, "k", "integer"),
        ({"description": "a lamp", "k": 2.5}, "k", "integer"),
        ({"description": "a lamp", "k": 0}, "k", "greater than or equal to 1"),
        ({"description": "a lamp", "k": 101}, "k", "less than or equal to 100"),
        ({"description": "a lamp", "colour": "red"}, "colour", "not permitted"),
        ({"description": "x" * (MAX_DESCRIPTION_CHARS + 1)}, "description", "at most"),
        (["a lamp"], "body", "valid dictionary"),
    ],
)
def test_bad_input_is_a_clear_422(client: TestClient, body: object, field: str, message: str) -> None:
    response = client.post("/v1/estimate", json=body)
    assert response.status_code == 422
    error = response.json()
    assert error["error"] == "invalid_request"
    assert field in error["message"] and message in error["message"]
    assert "input" not in error["details"][0]  # the body is not echoed back


def test_invalid_json_is_a_clear_422(client: TestClient) -> None:
    response = client.post(
        "/v1/estimate", content=b'{"description": "a lamp"', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["message"] == "body: the body is not valid JSON"


def test_unknown_strategy_lists_the_known_ones(client: TestClient) -> None:
    response = client.post("/v1/estimate", json={"description": "a lamp", "strategy": "crystal-ball"})
    assert response.status_code == 422
    error = response.json()
    assert error["error"] == "unknown_strategy" and "crystal-ball" in error["message"] and "knn" in error["message"]
    assert error["details"] == [{"known": registry.names()}]


def test_oversize_body_is_413(client: TestClient) -> None:
    big = b'{"description": "' + b"x" * 70_000 + b'"}'
    response = client.post("/v1/estimate", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"] == "payload_too_large"
    # Without a Content-Length (chunked upload) the limit holds too.
    chunks = (b"x" * 16_384 for _ in range(8))
    response = client.post("/v1/estimate", content=chunks, headers={"Content-Type": "application/json"})
    assert response.status_code == 413


# batch ----------------------------------------------------------------------------------------


def test_batch_prices_in_order_like_single_requests(client: TestClient, train_items: list[Item]) -> None:
    descriptions = [item.description for item in train_items[20:23]]
    items = [
        {"description": descriptions[0]},
        {"description": descriptions[1], "k": 3},
        {"description": descriptions[2]},
    ]
    response = client.post("/v1/estimate/batch", json={"items": items})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == 3 and len(body["items"]) == 3 and body["latency_ms"] > 0
    for request, result in zip(items, body["items"]):
        assert set(result) == RESPONSE_KEYS
        single = estimate(client, **request)
        assert result["price"] == pytest.approx(single["price"], abs=0.01)
        assert [c["id"] for c in result["comparables"]] == [c["id"] for c in single["comparables"]]
    assert len(body["items"][1]["comparables"]) == 3


def test_batch_limits(client: TestClient, service_settings: Settings) -> None:
    too_many = {"items": [{"description": f"lamp {i}"} for i in range(service_settings.max_batch_items + 1)]}
    response = client.post("/v1/estimate/batch", json=too_many)
    assert response.status_code == 413
    assert f"at most {service_settings.max_batch_items} items" in response.json()["message"]
    assert client.post("/v1/estimate/batch", json={"items": []}).status_code == 422
    response = client.post("/v1/estimate/batch", json={"items": [{"description": "a"}, {"description": " "}]})
    assert response.status_code == 422 and "items.1.description" in response.json()["message"]
    response = client.post(
        "/v1/estimate/batch", json={"items": [{"description": "a"}, {"description": "b", "strategy": "nope"}]}
    )
    assert response.status_code == 422 and response.json()["message"].startswith("items[1]: unknown strategy 'nope'")


# degraded LLM strategies ----------------------------------------------------------------------


def test_a_hung_strategy_degrades_to_knn_at_the_deadline(client: TestClient, description: str) -> None:
    knn = estimate(client, description=description)
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        slow = pool.submit(client.post, "/v1/estimate", json={"description": description, "strategy": "test-slow"})
        # Meanwhile the event loop and the local pool keep serving: a knn request is not queued behind it.
        time.sleep(0.2)
        quick_started = time.monotonic()
        assert estimate(client, description=description)["price"] == knn["price"]
        assert time.monotonic() - quick_started < DEADLINE_S / 2
        response = slow.result(timeout=30)
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    body = response.json()
    assert body["fallback"] is True and "did not answer within 3 s" in body["fallback_reason"]
    assert body["strategy"] == "test-slow" and body["price"] == knn["price"]
    assert DEADLINE_S <= elapsed < DEADLINE_S + 10


@pytest.mark.parametrize(
    ("strategy", "reason"),
    [
        ("test-raise", "test-raise failed (RuntimeError)"),
        ("test-nan", "unusable price"),
        ("test-zero", "unusable price"),
    ],
)
def test_a_failing_or_nonsense_strategy_degrades_to_knn(
    client: TestClient, description: str, strategy: str, reason: str
) -> None:
    knn = estimate(client, description=description)
    body = estimate(client, description=description, strategy=strategy)
    assert body["fallback"] is True and reason in body["fallback_reason"]
    assert body["price"] == knn["price"] and body["comparables"] == knn["comparables"]


def test_batch_falls_back_per_group(client: TestClient, train_items: list[Item]) -> None:
    items = [
        {"description": train_items[30].description, "strategy": "test-raise"},
        {"description": train_items[31].description},
    ]
    body = client.post("/v1/estimate/batch", json={"items": items}).json()
    assert [r["fallback"] for r in body["items"]] == [True, False]
    assert [r["strategy"] for r in body["items"]] == ["test-raise", "knn"]


def test_concurrent_requests_share_one_model(client: TestClient, estimator: Estimator, train_items: list[Item]) -> None:
    model = estimator.resources.embedder.model
    with ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(
                lambda i: client.post("/v1/estimate", json={"description": train_items[i].description}), range(40, 56)
            )
        )
    assert [r.status_code for r in responses] == [200] * 16
    assert estimator.resources.embedder.model is model


# the rag strategy with the fake LLM -----------------------------------------------------------


@pytest.fixture()
def fake_chat(estimator: Estimator):
    """The scripted chat model behind ``rag`` in these apps (settings ``llm="fake"``, no cache)."""
    import rag_pricer.strategies.rag  # noqa: F401  (registers "rag" wherever the registry does not yet)

    return estimator.resources.llm().chat_model


def test_rag_prices_with_the_llm_answer(client: TestClient, fake_chat, description: str) -> None:
    body = estimate(client, description=description, strategy="rag")
    assert body["strategy"] == "rag" and body["fallback"] is False, body["fallback_reason"]
    assert body["llm_answer"] is not None and body["price"] == pytest.approx(float(body["llm_answer"]), abs=0.01)
    assert body["usage"]["prompt_tokens"] > 0 and len(body["comparables"]) == 5


def test_rag_falls_back_to_knn_when_the_llm_answers_garbage(
    client: TestClient, fake_chat, description: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    knn = estimate(client, description=description, k=5)  # rag's k: its fallback prices its own comparables
    monkeypatch.setattr(fake_chat, "answers", ["I really could not say, sorry"])
    body = estimate(client, description=description, strategy="rag")
    assert body["fallback"] is True and "no usable price" in body["fallback_reason"]
    assert body["llm_answer"] == "I really could not say, sorry" and body["price"] == knn["price"]


def test_rag_falls_back_to_knn_when_the_llm_fails(
    client: TestClient, fake_chat, description: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    knn = estimate(client, description=description, k=5)
    monkeypatch.setattr(fake_chat, "failure", "auth")  # not retried: fails at once
    monkeypatch.setattr(fake_chat, "fail_times", fake_chat.calls + 100)
    body = estimate(client, description=description, strategy="rag")
    assert body["fallback"] is True and "LLM call failed" in body["fallback_reason"]
    assert body["price"] == knn["price"]


def test_rag_falls_back_to_knn_when_the_llm_is_too_slow(
    client: TestClient, fake_chat, description: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The LLM calls end at 80% of the deadline: rag answers with its own comparables' knn price.
    knn = estimate(client, description=description, k=5)
    monkeypatch.setattr(fake_chat, "delay_s", DEADLINE_S + 2)
    started = time.monotonic()
    body = estimate(client, description=description, strategy="rag")
    assert time.monotonic() - started < DEADLINE_S + 1  # answered by the deadline, not when the LLM was done
    assert body["fallback"] is True and body["fallback_reason"] == "LLM call failed (timeout): knn price used"
    assert body["price"] == knn["price"] and body["strategy"] == "rag"


# readiness ------------------------------------------------------------------------------------


def test_readyz_is_503_until_the_models_are_loaded(
    estimator: Estimator, service_settings: Settings, description: str
) -> None:
    app = create_app(estimator, service_settings)
    pricing = app.state.pricing
    loaded = threading.Event()
    load = pricing._load
    pricing._load = lambda: (loaded.wait(30), load())[1]  # hold the start-up until we let it go
    with TestClient(app) as client:
        response = client.get("/readyz")
        assert response.status_code == 503 and response.json()["status"] == "starting"
        assert client.get("/healthz").status_code == 200
        loaded.set()
        assert estimate(client, description=description)["price"] > 0  # waits for readiness, then answers
        assert client.get("/readyz").status_code == 200


def test_a_missing_store_is_not_ready_and_answers_503(tmp_path: Path, service_settings: Settings) -> None:
    settings = service_settings.model_copy(update={"store_path": tmp_path / "no-store"})
    with TestClient(create_app(settings=settings)) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").json()["status"] == "starting":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "failed"
        assert "index" in ready.json()["detail"]  # says how to build the store
        response = client.post("/v1/estimate", json={"description": "a lamp"})
        assert response.status_code == 503 and response.json()["error"] == "not_ready"
        assert client.get("/healthz").status_code == 200


# auth, CORS, secrets --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_client(estimator: Estimator, service_settings: Settings) -> Iterator[TestClient]:
    settings = service_settings.model_copy(update={"api_token": SecretStr(TOKEN)})
    with TestClient(create_app(estimator, settings, deadline_s=DEADLINE_S)) as client:
        wait_ready(client)
        yield client


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"])
def test_auth_refuses_a_missing_or_wrong_token(auth_client: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    for method, path, body in (("post", "/v1/estimate", {"description": "a lamp"}), ("get", "/v1/strategies", None)):
        response = auth_client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer" and response.json()["error"] == "unauthorized"


def test_auth_accepts_the_token_and_leaves_probes_open(auth_client: TestClient, description: str) -> None:
    response = auth_client.post(
        "/v1/estimate", json={"description": description}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 200 and response.json()["price"] > 0
    assert auth_client.get("/healthz").json()["auth_required"] is True
    for path in ("/healthz", "/readyz", "/docs", "/openapi.json", "/"):
        assert auth_client.get(path).status_code == 200, path


def test_no_secret_in_responses_or_logs(
    auth_client: TestClient, description: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    responses = [
        auth_client.post("/v1/estimate", json={"description": description, "strategy": "test-raise"}, headers=auth),
        auth_client.post("/v1/estimate", json={"description": " "}, headers=auth),
        auth_client.post("/v1/estimate", json={"description": "a lamp"}, headers={"Authorization": "Bearer nope"}),
        auth_client.get("/v1/strategies", headers=auth),
        auth_client.get("/readyz"),
        auth_client.get("/openapi.json"),
    ]
    assert responses[0].json()["fallback"] is True
    assert any("RuntimeError" in r.getMessage() for r in caplog.records)  # the failure was logged...
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (TOKEN, API_KEY):
        assert secret not in logged  # ...without the secrets it contained
        for response in responses:
            assert secret not in response.text and secret not in str(response.headers)


def test_cors_is_off_unless_origins_are_set(
    client: TestClient, estimator: Estimator, service_settings: Settings
) -> None:
    preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in client.options("/v1/estimate", headers=preflight).headers
    settings = service_settings.model_copy(update={"cors_origins": ["https://shop.example"]})
    with TestClient(create_app(estimator, settings)) as cors_client:
        response = cors_client.options("/v1/estimate", headers=preflight)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://shop.example"
        other = cors_client.options("/v1/estimate", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


# the command ----------------------------------------------------------------------------------


def test_serve_refuses_an_unknown_default_strategy() -> None:
    from rag_pricer.cli.app import app

    result = CliRunner().invoke(app, ["serve", "--strategy", "crystal-ball", "--port", "1"])
    assert result.exit_code == 2
    assert "unknown strategy 'crystal-ball'" in result.output


# what the page reads: products, LLM backends, readiness of the strategies ------------------------


def test_a_comparable_opens_as_the_stored_product(
    client: TestClient, description: str, train_items: list[Item]
) -> None:
    comparable = estimate(client, description=description)["comparables"][0]
    response = client.get(f"/v1/products/{comparable['id']}")
    assert response.status_code == 200, response.text
    product = response.json()
    stored = next(item for item in train_items if item.id == comparable["id"])
    assert product == {
        "id": stored.id,
        "title": comparable["title"],
        "price": comparable["price"],
        "category": stored.category,
        "split": "train",
        "description": stored.description,
    }


def test_an_unknown_product_is_404(client: TestClient) -> None:
    response = client.get("/v1/products/no-such-id")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found" and "no-such-id" in response.json()["message"]
    assert client.get(f"/v1/products/{'x' * 201}").status_code == 422
    spec = client.get("/openapi.json").json()["paths"]["/v1/products/{product_id}"]["get"]
    assert {"200", "404"} <= set(spec["responses"])


def test_llms_lists_only_the_servers_own_backend_by_default(client: TestClient, description: str) -> None:
    body = client.get("/v1/llms").json()
    assert body["default"] == "fake" and [b["name"] for b in body["llms"]] == ["fake"]
    # a registered backend the operator did not offer: a paid API would spend the server's key
    response = client.post("/v1/estimate", json={"description": description, "strategy": "rag", "llm": "openai"})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_options" and "not offered" in response.json()["message"]
    batch = client.post(
        "/v1/estimate/batch", json={"items": [{"description": "a"}, {"description": "b", "llm": "local"}]}
    )
    assert batch.status_code == 422 and batch.json()["message"].startswith("items[1]: llm 'local' is not offered")


def test_llms_lists_the_backends_the_operator_offers(estimator: Estimator, service_settings: Settings) -> None:
    settings = service_settings.model_copy(update={"service_llms": ["local", "fake"]})
    with TestClient(create_app(estimator, settings, deadline_s=DEADLINE_S)) as offering:
        body = offering.get("/v1/llms").json()
    assert body["default"] == "fake" and sorted(b["name"] for b in body["llms"]) == ["fake", "local"]
    assert [b["name"] for b in body["llms"] if b["default"]] == ["fake"]


@pytest.fixture()
def fixed_llm() -> Iterator[str]:
    """A backend answering "123" whatever it is asked, registered for one test."""
    from rag_pricer.llms.backends import wrap
    from rag_pricer.llms.fake import FakePricingChatModel
    from rag_pricer.llms.registry import BackendInfo, backend_registry

    def build(argument: str, settings: Settings):
        return wrap(
            FakePricingChatModel(answers=["123"]), settings, spec="test-fixed", model_id="fake", supports_prefill=True
        )

    backend_registry.all()  # the built-in backends first, so that ours is added
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(backend_registry._entries, "test-fixed", BackendInfo("test-fixed", "test", "test-fixed", build))
        yield "test-fixed"


def test_an_estimate_uses_the_llm_it_names(
    estimator: Estimator, service_settings: Settings, fixed_llm: str, description: str
) -> None:
    settings = service_settings.model_copy(update={"service_llms": [fixed_llm]})
    with TestClient(create_app(estimator, settings, deadline_s=DEADLINE_S)) as client:
        wait_ready(client)
        _uses_the_llm_it_names(client, fixed_llm, description)


def _uses_the_llm_it_names(client: TestClient, fixed_llm: str, description: str) -> None:
    default = estimate(client, description=description, strategy="rag")
    chosen = estimate(client, description=description, strategy="rag", llm=fixed_llm)
    assert chosen["llm_answer"] == "123" and default["llm_answer"] != "123"
    assert estimate(client, description=description, strategy="zero-shot", llm=fixed_llm)["llm_answer"] == "123"
    # The server's own backend by name is the server's spec; a strategy without an LLM ignores it.
    assert estimate(client, description=description, strategy="rag", llm="fake")["price"] == default["price"]
    assert (
        estimate(client, description=description, llm=fixed_llm)["price"]
        == estimate(client, description=description)["price"]
    )


@pytest.mark.parametrize("llm", ["crystal-ball", "local:/etc/passwd", "openai-compatible:m@http://evil.example/v1"])
def test_an_unknown_llm_or_a_spec_with_an_argument_is_a_422(client: TestClient, llm: str) -> None:
    response = client.post("/v1/estimate", json={"description": "a lamp", "strategy": "rag", "llm": llm})
    assert response.status_code == 422
    error = response.json()
    assert error["error"] == "invalid_request" and error["message"].startswith("body.llm: unknown LLM backend")
    assert "local" in error["message"]  # the known ones are listed
    batch = client.post(
        "/v1/estimate/batch", json={"items": [{"description": "a lamp"}, {"description": "a", "llm": llm}]}
    )
    assert batch.status_code == 422 and "items.1.llm" in batch.json()["message"]


def test_strategies_say_which_are_ready_and_what_the_others_need(
    service_settings: Settings, train_items: list[Item], tmp_path: Path
) -> None:
    from rag_pricer.training.baselines import BaselineTrainer

    settings = service_settings.model_copy(update={"models_dir": tmp_path})
    BaselineTrainer(["constant"]).train(train_items[:50], tmp_path)
    with TestClient(create_app(Estimator.from_settings(settings), settings)) as trained:
        wait_ready(trained)
        by_name = {s["name"]: s for s in trained.get("/v1/strategies").json()["strategies"]}
        assert {s["status"] for s in by_name.values()} <= {"ready", "needs-training", "needs-llm", "needs-store"}
        assert all(s["ready"] == (s["status"] == "ready") for s in by_name.values())
        for name in ("knn", "rag", "zero-shot", "constant"):
            assert by_name[name]["status"] == "ready" and by_name[name]["hint"] is None, by_name[name]
        assert by_name["bow"]["status"] == "needs-training"
        bow_hint = "rag-pricer train-baselines --items ITEMS --split train --only bow"
        assert by_name["bow"]["hint"] == bow_hint  # no server path
        assert by_name["finetuned"]["hint"].startswith("rag-pricer finetune ") and not by_name["finetuned"]["ready"]
        assert by_name["rag-finetuned"]["hint"].endswith(" --k 5")
        assert by_name["ensemble"]["hint"] == "rag-pricer prepare"
        # Ready means it prices: the trained baseline answers without falling back.
        body = estimate(trained, description=train_items[9].description, strategy="constant")
        assert body["fallback"] is False


def test_strategies_need_the_store_when_it_is_missing(tmp_path: Path, service_settings: Settings) -> None:
    settings = service_settings.model_copy(update={"store_path": tmp_path / "nowhere"})
    with TestClient(create_app(Estimator.from_settings(settings), settings)) as broken:
        deadline = time.monotonic() + 30
        while broken.get("/readyz").json()["status"] != "failed":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        by_name = {s["name"]: s for s in broken.get("/v1/strategies").json()["strategies"]}
        assert by_name["knn"]["status"] == "needs-store" and "rag-pricer-ingest index" in by_name["knn"]["hint"]
        assert str(tmp_path) not in by_name["knn"]["hint"]  # no server path to anonymous callers
        assert broken.get("/v1/products/anything").status_code == 503


def test_strategies_carry_their_dev_score_and_the_recommended_one(
    service_settings: Settings, estimator: Estimator, tmp_path: Path
) -> None:
    settings = service_settings.model_copy(update={"models_dir": tmp_path})
    with TestClient(create_app(Estimator.from_settings(settings), settings)) as fresh:
        wait_ready(fresh)
        listed = {s["name"]: s for s in fresh.get("/v1/strategies").json()["strategies"]}
        assert listed["knn"]["dev_mae"] is None and listed["knn"]["dev_hit_rate"] is None  # none on record
        assert listed["knn"]["recommended"] is True  # nothing measured: the server's default
        dev = {"mae": Interval(106.26, 96.4, 116.4), "hit_rate": Interval(0.37, 0.33, 0.41)}
        ScoreRecord.of("knn", dev, 500, items="items", split="dev", how="evaluated", command="x").save(tmp_path)
        worse = {"mae": Interval(130.78, 118.0, 144.0), "hit_rate": Interval(0.30, 0.26, 0.34)}
        ScoreRecord.of("rag", worse, 500, items="items", split="dev", how="evaluated", command="x").save(tmp_path)
        listed = {s["name"]: s for s in fresh.get("/v1/strategies").json()["strategies"]}
    assert listed["knn"]["dev_mae"] == 106.26 and listed["knn"]["dev_hit_rate"] == 0.37
    assert listed["rag"]["dev_mae"] == 130.78 and listed["rag"]["recommended"] is False
    assert listed["knn"]["recommended"] is True and sum(s["recommended"] for s in listed.values()) == 1


def test_an_unprepared_default_ensemble_is_refused_in_one_line_and_the_service_still_serves(
    service_settings: Settings, estimator: Estimator, description: str, tmp_path: Path
) -> None:
    settings = service_settings.model_copy(update={"models_dir": tmp_path, "strategy": "ensemble"})
    with TestClient(create_app(Estimator.from_settings(settings), settings)) as fresh:
        wait_ready(fresh)  # ready: the knowledge base is there, whatever the default lacks
        refused = fresh.post("/v1/estimate", json={"description": description})
        assert refused.status_code == 409
        body = refused.json()
        assert body["error"] == "strategy_not_ready" and body["details"][0]["hint"] == "rag-pricer prepare"
        assert "\n" not in body["message"] and "rag-pricer prepare" in body["message"]
        assert str(tmp_path) not in refused.text  # the server's folders are named, not shown
        assert fresh.get("/v1/strategies").json()["default"] == "ensemble"
        assert estimate(fresh, description=description, strategy="knn")["price"] > 0
        page = fresh.get("/")
        assert page.status_code == 200 and "rag-pricer prepare" not in page.text
