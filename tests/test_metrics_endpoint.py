"""Observability: Prometheus metrics at /metrics, a request id in every response and in every log
line of its request, structured (JSON) logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from service_settings import service_settings, wait_ready

from rag_pricer.api import Estimator
from rag_pricer.knowledge.store import ProductStore
from rag_pricer.service import create_app
from rag_pricer.service.logging_setup import JsonFormatter, log_config
from rag_pricer.service.metrics import fallback_reason
from rag_pricer.service.request_ids import RequestIdFilter
from rag_pricer.settings import Settings


@pytest.fixture(scope="module")
def client(small_store: ProductStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("metrics")
    settings = service_settings(small_store.path, tmp, feedback_path=tmp / "feedback.sqlite3")  # type: ignore[arg-type]
    with TestClient(create_app(Estimator.from_settings(settings), settings)) as client:
        wait_ready(client)
        yield client


def samples(client: TestClient) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_metrics_count_requests_by_route_template_strategy_and_status(client: TestClient) -> None:
    assert client.post("/v1/estimate", json={"description": "Cordless drill 18V"}).status_code == 200
    assert client.get("/v1/products/no-such-id").status_code == 404
    seen = samples(client)
    ok = frozenset({"method": "POST", "route": "/v1/estimate", "strategy": "knn", "status": "200"}.items())
    assert seen[("rag_pricer_http_requests_total", ok)] >= 1
    assert seen[("rag_pricer_http_request_duration_seconds_count", ok)] >= 1
    missing = {"method": "GET", "route": "/v1/products/{product_id}", "strategy": "", "status": "404"}
    assert seen[("rag_pricer_http_requests_total", frozenset(missing.items()))] >= 1  # the template, not the id
    assert seen[("rag_pricer_estimates_total", frozenset({"strategy": "knn"}.items()))] >= 1
    assert seen[("rag_pricer_estimates_in_flight", frozenset())] == 0
    assert seen[("rag_pricer_store_items", frozenset())] == 400
    build = [labels for (name, labels) in seen if name == "rag_pricer_build_info"]
    assert build and "version" in dict(build[0])


def test_fallback_reasons_and_llm_error_kinds_are_short_codes() -> None:
    assert fallback_reason("rag did not answer within 5 s: knn price used") == "deadline"
    assert fallback_reason("LLM call failed (rate_limit): knn price used") == "llm_error"
    assert fallback_reason("the LLM answer has no usable price: knn price used") == "no_price_in_answer"
    assert fallback_reason("something new") == "other"


def test_a_request_id_is_taken_when_valid_made_otherwise_and_returned(client: TestClient) -> None:
    kept = client.get("/healthz", headers={"X-Request-ID": "order-42.retry:1"})
    assert kept.headers["X-Request-ID"] == "order-42.retry:1"
    for bad in ("has spaces", "x" * 129, 'quote"d'):
        replaced = client.get("/healthz", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert replaced != bad and len(replaced) == 32
    assert len(client.get("/healthz").headers["X-Request-ID"]) == 32


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(RequestIdFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_every_log_line_of_a_request_carries_its_id(client: TestClient) -> None:
    handler = Records()
    logger = logging.getLogger("rag_pricer")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        response = client.post("/v1/estimate", json={"description": "Yoga mat"}, headers={"X-Request-ID": "abc-1"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert response.status_code == 200
    mine = [r for r in handler.records if r.request_id == "abc-1"]  # type: ignore[attr-defined]
    # the pricing worker's debug line and the request's own line, both with the id
    assert {r.name for r in mine} >= {"rag_pricer.service", "rag_pricer.service.requests"}
    line = next(r for r in mine if r.name == "rag_pricer.service.requests")
    assert line.strategy == "knn" and line.fallback is False and line.status == 200  # type: ignore[attr-defined]


def test_json_logs_are_one_object_per_line_with_the_request_fields() -> None:
    record = logging.LogRecord("rag_pricer.service.requests", logging.INFO, __file__, 1, "POST %s", ("/x",), None)
    record.request_id, record.strategy, record.latency_ms, record.fallback = "r-1", "rag", 12.5, True
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "POST /x" and data["level"] == "info" and data["request_id"] == "r-1"
    assert (data["strategy"], data["latency_ms"], data["fallback"]) == ("rag", 12.5, True)
    config = log_config("info", "json")
    assert all(f["()"].endswith("JsonFormatter") for f in config["formatters"].values())
    assert all(h["filters"] == ["request_id"] for h in config["handlers"].values())
    assert "rag_pricer" in config["loggers"]


def test_metrics_need_the_read_token_when_the_server_has_one(small_store: ProductStore, tmp_path: Path) -> None:
    from pydantic import SecretStr

    settings = Settings(
        _env_file=None, store_path=small_store.path, llm="fake", api_token=SecretStr("t0k"), feedback_path=None
    )
    with TestClient(create_app(Estimator.from_settings(settings), settings)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer t0k"}).status_code == 200
