"""The service's routes by resource: strategy options over HTTP (what ``/v1/strategies`` lists is
what ``POST /v1/estimate`` takes), and product writes (their own token, ingestion's checks)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from service_settings import service_settings, wait_ready

from rag_pricer.api import Estimator
from rag_pricer.items import Item
from rag_pricer.knowledge.store import ProductStore
from rag_pricer.service import create_app

READ_TOKEN = "read-Yv3q-never-shown"
WRITE_TOKEN = "write-Kp7d-never-shown"
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}
NEW = {
    "title": "Zebracorn 9000 titanium left-handed banjo tuner",
    "text": "A set of six titanium banjo tuners for left-handed players, zebra-striped, with a unicorn crest.",
    "price": 123.45,
    "category": "Musical Instruments",
}


@pytest.fixture(scope="module")
def copied_store(small_store: ProductStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the small store: these tests write to it, others read the original."""
    target = tmp_path_factory.mktemp("routes") / "store"
    shutil.copytree(small_store.path, target)  # type: ignore[arg-type]
    return target


settings_for = service_settings


@pytest.fixture(scope="module")
def client(copied_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = settings_for(
        copied_store,
        tmp_path_factory.mktemp("routes-models"),
        api_token=SecretStr(READ_TOKEN),
        write_token=SecretStr(WRITE_TOKEN),
    )
    with TestClient(create_app(Estimator.from_settings(settings), settings)) as client:
        wait_ready(client)
        yield client


#: what a buyer would type: close to NEW, not its verbatim text (a verbatim copy is never evidence)
QUERY = "zebra-striped titanium banjo tuners for a left-handed player, unicorn crest"


def top_ids(client: TestClient, description: str) -> list[str]:
    response = client.post("/v1/estimate", json={"description": description, "k": 3}, headers=READ)
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["comparables"]]


# strategy options ---------------------------------------------------------------------------


def test_each_listed_option_is_accepted_and_applied(client: TestClient, train_items: list[Item]) -> None:
    listed = client.get("/v1/strategies", headers=READ).json()["strategies"]
    knn = next(s for s in listed if s["name"] == "knn")
    assert {o["name"] for o in knn["options"]} == {"k", "category", "min_price", "max_price", "mmr", "power", "mean"}
    description = train_items[3].description
    plain = client.post("/v1/estimate", json={"description": description}, headers=READ).json()
    options = {"power": 4.0, "mean": "geometric", "mmr": True, "min_price": 1.0, "max_price": 900.0}
    tuned = client.post("/v1/estimate", json={"description": description, "options": options}, headers=READ)
    assert tuned.status_code == 200, tuned.text
    assert tuned.json()["price"] != plain["price"]  # the options reached the pricer


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"options": {"colour": "red"}}, "unknown option 'colour'"),
        ({"options": {"power": "strong"}}, "option 'power'"),
        ({"options": {"mean": "mode"}}, "option 'mean'"),
        ({"k": 3, "options": {"k": 4}}, "given twice"),
        ({"strategy": "finetuned", "options": {"run": "/etc"}}, "the server's setting"),
        ({"strategy": "rag", "options": {"llm": "local:/etc/passwd"}}, "not offered"),
    ],
)
def test_a_wrong_option_is_a_422_naming_it(client: TestClient, body: dict, message: str) -> None:
    response = client.post("/v1/estimate", json={"description": "a lamp"} | body, headers=READ)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_options" and message in response.json()["message"]


def test_options_only_the_operator_sets_are_not_listed(client: TestClient) -> None:
    listed = client.get("/v1/strategies", headers=READ).json()["strategies"]
    assert all(o["name"] != "run" for s in listed for o in s["options"])


# product writes -----------------------------------------------------------------------------


def test_writes_need_the_write_token_and_the_read_token_never_writes(client: TestClient) -> None:
    for headers in ({}, READ, {"Authorization": "Bearer nope"}):
        response = client.put("/v1/products/zebra-1", json=NEW, headers=headers)
        assert response.status_code == 401 and response.json()["error"] == "unauthorized"
        assert client.delete("/v1/products/zebra-1", headers=headers).status_code == 401
    # and the write token does not read
    assert client.post("/v1/estimate", json={"description": "a lamp"}, headers=WRITE).status_code == 401


def test_writes_are_refused_when_the_operator_set_no_write_token(
    copied_store: Path, tmp_path: Path, small_store: ProductStore
) -> None:
    settings = settings_for(copied_store, tmp_path, api_token=SecretStr(READ_TOKEN))
    app = create_app(Estimator.from_settings(settings), settings)
    with TestClient(app) as client:
        for headers in ({}, READ, WRITE):
            response = client.put("/v1/products/zebra-1", json=NEW, headers=headers)
            assert response.status_code == 403 and "disabled" in response.json()["message"]


def test_a_product_put_is_retrieved_at_once_and_a_deleted_one_no_longer(client: TestClient) -> None:
    description = QUERY
    assert "zebra-1" not in top_ids(client, description)
    response = client.put("/v1/products/zebra-1", json=NEW, headers=WRITE)
    assert response.status_code == 200, response.text
    assert response.json()["upserted"] == ["zebra-1"]
    assert top_ids(client, description)[0] == "zebra-1"
    stored = client.get("/v1/products/zebra-1", headers=READ).json()
    assert stored["price"] == NEW["price"] and stored["title"] == NEW["title"]
    # a correction replaces it
    assert client.put("/v1/products/zebra-1", json=NEW | {"price": 99.0}, headers=WRITE).status_code == 200
    assert client.get("/v1/products/zebra-1", headers=READ).json()["price"] == 99.0
    deleted = client.delete("/v1/products/zebra-1", headers=WRITE)
    assert deleted.status_code == 200 and deleted.json()["deleted"] == ["zebra-1"]
    assert "zebra-1" not in top_ids(client, description)
    assert client.delete("/v1/products/zebra-1", headers=WRITE).status_code == 404
    assert client.get("/v1/products/zebra-1", headers=READ).status_code == 404


@pytest.mark.parametrize(
    ("product", "reason"),
    [
        (NEW | {"price": 1e6}, "price_out_of_range"),
        (NEW | {"price": 0.1}, "price_out_of_range"),
        (NEW | {"price": "NaN"}, "bad_price"),
        (NEW | {"title": "   "}, "missing_title"),
    ],
)
def test_a_product_ingestion_would_refuse_is_a_422(client: TestClient, product: dict, reason: str) -> None:
    response = client.put("/v1/products/bad-1", json=product, headers=WRITE)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_product" and body["details"][0]["reason"] == reason
    assert client.get("/v1/products/bad-1", headers=READ).status_code == 404


def test_a_long_text_is_cut_like_ingestion_cuts_it(client: TestClient) -> None:
    response = client.put("/v1/products/long-1", json=NEW | {"text": "word " * 3000}, headers=WRITE)
    assert response.status_code == 200, response.text
    stored = client.get("/v1/products/long-1", headers=READ).json()
    assert len(stored["description"]) <= 500 + 1 + 4000
    client.delete("/v1/products/long-1", headers=WRITE)


def test_a_batch_with_a_bad_record_writes_nothing_and_names_each(client: TestClient) -> None:
    before = client.get("/readyz").json()["store_items"]
    body = {
        "upsert": [
            NEW | {"id": "good-1"},
            NEW | {"id": "bad-2", "price": -4},
            NEW | {"id": "bad-3", "title": ""},
        ],
        "delete": [],
    }
    response = client.post("/v1/products/batch", json=body, headers=WRITE)
    assert response.status_code == 422, response.text
    details = response.json()["details"]
    assert [(d["index"], d["reason"]) for d in details] == [(1, "bad_price"), (2, "missing_title")]
    assert client.get("/v1/products/good-1", headers=READ).status_code == 404
    good = {"upsert": [NEW | {"id": "good-1"}, NEW | {"id": "good-2", "price": 5.0}], "delete": ["nothing-here"]}
    written = client.post("/v1/products/batch", json=good, headers=WRITE).json()
    assert written["upserted"] == ["good-1", "good-2"] and written["missing"] == ["nothing-here"]
    assert written["store_items"] == before + 2
    removed = client.post("/v1/products/batch", json={"delete": ["good-1", "good-2"]}, headers=WRITE).json()
    assert removed["deleted"] == ["good-1", "good-2"] and removed["store_items"] == before
