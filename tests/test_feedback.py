"""Feedback and monitoring: every estimate has an id, the journal records what was given and
the prices products really sold for (durably: a server killed after its 200 loses nothing), and
the monitor scores each strategy against those prices, warning when ranges under-cover."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from service_settings import service_settings, wait_ready
from typer.testing import CliRunner

from rag_pricer.api import Estimator
from rag_pricer.cli.app import app as cli
from rag_pricer.feedback.journal import FeedbackJournal, Given, UnknownEstimate
from rag_pricer.feedback.monitor import binomial_cdf, monitor
from rag_pricer.knowledge.store import ProductStore
from rag_pricer.pricing.values import Estimate
from rag_pricer.service import create_app
from rag_pricer.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
READ_TOKEN = "read-Fb4q-never-shown"
WRITE_TOKEN = "write-Fb9z-never-shown"
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}


def given(price: float, strategy: str = "knn", text: str = "a thing", **kw: object) -> Given:
    return Given.of(Estimate(price=price, strategy=strategy, **kw), text)  # type: ignore[arg-type]


# the journal ------------------------------------------------------------------------------------


def test_every_estimate_has_its_own_id_and_equality_ignores_it() -> None:
    a, b = Estimate(price=10.0, strategy="knn"), Estimate(price=10.0, strategy="knn")
    assert a.id != b.id and len(a.id) == 32 and a == b
    assert a.to_dict()["id"] == a.id


def test_feedback_names_an_estimate_by_id_or_by_its_latest_description(tmp_path: Path) -> None:
    journal = FeedbackJournal(tmp_path / "j.sqlite3")
    first, second = given(100.0, text="Red  kettle\n1.7 l"), given(120.0, "ensemble", text="Red kettle 1.7 l")
    journal.record([first, second])
    by_id = journal.add(90.0, estimate_id=first.id)
    assert (by_id.estimate_id, by_id.strategy, by_id.price, by_id.matched) == (first.id, "knn", 100.0, True)
    by_text = journal.add(95.0, description="Red kettle 1.7 l")  # blanks folded; the latest estimate of it
    assert by_text.estimate_id == second.id and by_text.strategy == "ensemble"
    unmatched = journal.add(50.0, description="never priced")
    assert not unmatched.matched and unmatched.strategy is None
    with pytest.raises(UnknownEstimate):
        journal.add(50.0, estimate_id="0" * 32)
    assert [f.sold for f in FeedbackJournal(tmp_path / "j.sqlite3").feedbacks()] == [90.0, 95.0, 50.0]


# the monitor ------------------------------------------------------------------------------------


def test_binomial_tail_matches_known_values() -> None:
    assert binomial_cdf(0, 10, 0.5) == pytest.approx(1 / 1024)
    assert binomial_cdf(5, 10, 0.5) == pytest.approx(638 / 1024)
    assert binomial_cdf(10, 10, 0.8) == pytest.approx(1.0)
    assert binomial_cdf(60, 100, 0.8) == pytest.approx(3.6084201146408587e-06)  # exact, by fractions


def feedbacks(tmp_path: Path, held: int, missed: int, strategy: str = "knn") -> list:
    """``held + missed`` feedbacks of 80% ranges [90, 110]: ``held`` sold inside, ``missed`` at 200."""
    journal = FeedbackJournal(tmp_path / f"{strategy}-{held}-{missed}.sqlite3")
    rows = [given(100.0, strategy, low=90.0, high=110.0, coverage=0.8) for _ in range(held + missed)]
    journal.record(rows)
    for i, row in enumerate(rows):
        journal.add(105.0 if i < held else 200.0, estimate_id=row.id)
    return journal.feedbacks()


def test_monitor_scores_each_strategy_latest_and_total(tmp_path: Path) -> None:
    report = monitor(feedbacks(tmp_path, held=8, missed=2), window=5)
    (knn,) = report.strategies
    assert knn.total.n == 10 and knn.latest.n == 5
    assert knn.total.mae == pytest.approx((8 * 5 + 2 * 100) / 10)
    assert knn.total.hit_rate == pytest.approx(0.8)  # $5 off is a hit, $100 off (50%) is not
    assert knn.total.bias == pytest.approx(-(8 * 5 + 2 * 100) / 10)  # priced too low
    assert knn.total.coverage == pytest.approx(0.8) and knn.total.promised == pytest.approx(0.8)
    assert knn.latest.coverage == pytest.approx(0.6)  # the last 5: 3 held, 2 missed
    assert report.warnings == []  # as promised, and 5 say nothing


def test_monitor_warns_when_ranges_hold_clearly_less_than_promised(tmp_path: Path) -> None:
    report = monitor(feedbacks(tmp_path, held=25, missed=25), window=200)
    (knn,) = report.strategies
    assert knn.total.coverage == pytest.approx(0.5) and knn.total.p_value < 0.05
    assert len(report.warnings) == 1 and "50%" in report.warnings[0] and "80%" in report.warnings[0]
    # a little below by chance is not a warning: 15 of 20 (75%) against 80%
    assert monitor(feedbacks(tmp_path, held=15, missed=5), window=200).warnings == []


def test_monitor_command_prints_the_report_and_says_when_there_is_no_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = FeedbackJournal(tmp_path / "j.sqlite3")
    rows = [given(100.0, low=90.0, high=110.0, coverage=0.8) for _ in range(30)]
    journal.record(rows)
    for row in rows:
        journal.add(300.0, estimate_id=row.id)
    monkeypatch.setenv("RAG_PRICER_FEEDBACK_PATH", str(tmp_path / "j.sqlite3"))
    runner = CliRunner()
    shown = runner.invoke(cli, ["monitor", "--json", "--last", "10"])
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.stdout)
    assert report["strategies"][0]["latest"]["n"] == 10 and report["strategies"][0]["total"]["n"] == 30
    assert report["warnings"]
    assert runner.invoke(cli, ["monitor", "--strict"]).exit_code == 1
    monkeypatch.setenv("RAG_PRICER_FEEDBACK_PATH", str(tmp_path / "none.sqlite3"))
    missing = runner.invoke(cli, ["monitor"])
    assert missing.exit_code == 2 and "no feedback journal" in missing.output


# over HTTP --------------------------------------------------------------------------------------


def settings_for(store: Path, tmp: Path, **values: object) -> Settings:
    """The service tests' settings with a feedback journal under ``tmp``."""
    return service_settings(store, tmp, **({"feedback_path": tmp / "feedback.sqlite3"} | values))


@pytest.fixture(scope="module")
def store_copy(small_store: ProductStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("feedback") / "store"
    shutil.copytree(small_store.path, target)  # type: ignore[arg-type]
    return target


@pytest.fixture(scope="module")
def client(store_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = settings_for(store_copy, tmp_path_factory.mktemp("feedback-http"), api_token=SecretStr(READ_TOKEN))
    with TestClient(create_app(Estimator.from_settings(settings), settings)) as client:
        wait_ready(client)
        yield client


DESCRIPTION = "Cordless drill 18V with two batteries and a charger"


def test_single_and_batch_estimates_have_ids_that_feedback_names(client: TestClient) -> None:
    one = client.post("/v1/estimate", json={"description": DESCRIPTION}, headers=READ).json()
    batch = client.post(
        "/v1/estimate/batch",
        json={"items": [{"description": "Yoga mat 6 mm"}, {"description": "USB-C charger"}]},
        headers=READ,
    ).json()
    ids = [one["id"], *(item["id"] for item in batch["items"])]
    assert len(set(ids)) == 3 and all(len(i) == 32 for i in ids)
    sent = client.post("/v1/feedback", json={"estimate_id": one["id"], "price": 99.0}, headers=READ)
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert body["matched"] and body["strategy"] == "knn" and body["estimated"] == one["price"]
    assert body["error"] == pytest.approx(one["price"] - 99.0, abs=0.01)
    by_text = client.post("/v1/feedback", json={"description": "Yoga mat 6 mm", "price": 25.0}, headers=READ)
    assert by_text.json()["estimate_id"] == batch["items"][0]["id"]
    report = client.get("/v1/monitor", headers=READ).json()
    assert report["strategies"][0]["strategy"] == "knn" and report["strategies"][0]["total"]["n"] == 2


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"estimate_id": "f" * 32, "price": 10.0}, 404, "no estimate"),
        ({"price": 10.0}, 422, "estimate_id"),
        ({"estimate_id": "abc", "price": -1}, 422, "price"),
        ({"estimate_id": "abc", "price": "NaN"}, 422, "price"),
        ({"estimate_id": "abc", "price": 1e9}, 422, "price"),
        ({"estimate_id": "a b\n", "price": 10.0}, 422, "estimate_id"),
        ({"estimate_id": "abc", "price": 10.0, "extra": 1}, 422, "extra"),
    ],
)
def test_bad_feedback_is_refused_clearly(client: TestClient, body: dict, status: int, words: str) -> None:
    response = client.post("/v1/feedback", json=body, headers=READ)
    assert response.status_code == status, response.text
    assert words in response.json()["message"]


def test_feedback_and_monitor_need_the_read_token(client: TestClient) -> None:
    assert client.post("/v1/feedback", json={"description": "x", "price": 1.0}).status_code == 401
    assert client.get("/v1/monitor").status_code == 401


def test_learning_feedback_needs_the_write_token_and_joins_the_knowledge_base(store_copy: Path, tmp_path: Path) -> None:
    settings = settings_for(
        store_copy,
        tmp_path,
        api_token=SecretStr(READ_TOKEN),
        write_token=SecretStr(WRITE_TOKEN),
        feedback_learns=True,
    )
    with TestClient(create_app(Estimator.from_settings(settings), settings)) as client:
        wait_ready(client)
        body = {"description": "Quokka-shaped enamel teapot, 1 l\nHand painted.", "price": 42.0}
        assert client.post("/v1/feedback", json=body, headers=READ).status_code == 401
        sent = client.post("/v1/feedback", json=body, headers=WRITE)
        assert sent.status_code == 200, sent.text
        product = client.get(f"/v1/products/{sent.json()['product_id']}", headers=READ).json()
        assert product["title"] == "Quokka-shaped enamel teapot, 1 l" and product["price"] == 42.0


def test_feedback_is_refused_on_a_server_that_keeps_no_journal(store_copy: Path, tmp_path: Path) -> None:
    settings = settings_for(store_copy, tmp_path, feedback_path=None)
    with TestClient(create_app(Estimator.from_settings(settings), settings)) as client:
        response = client.post("/v1/feedback", json={"description": "x", "price": 1.0})
        assert response.status_code == 403 and "disabled" in response.json()["message"]


# a real server, killed after its 200 ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_server_killed_after_acknowledging_feedback_loses_none_and_logs_json(
    store_copy: Path, tmp_path: Path
) -> None:
    port, journal_path, log_path = free_port(), tmp_path / "feedback.sqlite3", tmp_path / "server.log"
    command = [sys.executable, "-m", "rag_pricer.cli.app", "serve", "--store", str(store_copy), "--port", str(port)]
    command += ["--strategy", "knn", "--llm", "fake", "--log-format", "json", "--no-access-log"]
    env = os.environ | {
        "PYTHONPATH": str(ROOT),
        "RAG_PRICER_LLM_CACHE_DIR": "",
        "RAG_PRICER_MODELS_DIR": str(tmp_path / "models"),
        "RAG_PRICER_FEEDBACK_PATH": str(journal_path),
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        estimate = httpx.post(
            f"{url}/v1/estimate", json={"description": DESCRIPTION}, headers={"X-Request-ID": "trace-7"}, timeout=60
        )
        assert estimate.headers["X-Request-ID"] == "trace-7"
        acknowledged = [
            httpx.post(f"{url}/v1/feedback", json={"estimate_id": estimate.json()["id"], "price": p}, timeout=60)
            for p in (10.0, 20.0, 30.0)
        ]
        assert [r.status_code for r in acknowledged] == [200, 200, 200]
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    stored = FeedbackJournal(journal_path).feedbacks()
    assert [(f.seq, f.sold) for f in stored] == [(r.json()["seq"], p) for r, p in zip(acknowledged, (10, 20, 30))]
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    traced = [line for line in lines if line["request_id"] == "trace-7"]
    assert traced and traced[-1]["route"] == "/v1/estimate" and traced[-1]["strategy"] == "knn"
    assert traced[-1]["fallback"] is False and traced[-1]["latency_ms"] > 0
