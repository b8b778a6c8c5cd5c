"""The web page in headless Chromium: the real app under uvicorn on a loopback port, driven by
Playwright. Needs Debian's chromium (``scripts/install-browser.sh``) and the ``playwright``
package (not its browser download)."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from rag_pricer.api import Estimator
from rag_pricer.evaluation.bootstrap import Interval
from rag_pricer.evaluation.scores import ScoreRecord
from rag_pricer.items import Item
from rag_pricer.pricing.ranges import RangeCalibration
from rag_pricer.service import create_app
from rag_pricer.settings import Settings

CHROMIUM = os.environ.get("RAG_PRICER_CHROMIUM", "/usr/bin/chromium")
# The flags that let Chromium start in a sandbox without a network: no background connections
# to Google's services (refused here, many at a time), no GPU, no first-run UI.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

try:
    from playwright import sync_api
except ImportError:  # reported by the fixture below, when a browser test runs
    sync_api = None

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def browser_installed() -> None:
    """The README's set-up installs both; a missing one is a broken set-up, so these tests fail
    rather than skip. Checked when they run, not at import: `-m "not slow"` still deselects them."""
    if sync_api is None:
        pytest.fail("the playwright package is missing: run the README's set-up (run.sh)", pytrace=False)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run scripts/install-browser.sh", pytrace=False)


TOKEN = "page-token-5c1e"


@pytest.fixture(scope="module")
def estimator(small_store, tmp_path_factory: pytest.TempPathFactory) -> Estimator:
    # knn calibrated (so its estimates carry a range); nothing trained (so the trained strategies
    # are unavailable, as on a fresh install)
    models_dir = tmp_path_factory.mktemp("models")
    RangeCalibration("knn", 0.8, -0.5, 0.75, 200).save(models_dir)
    dev = {"mae": Interval(106.26, 96.37, 116.36), "hit_rate": Interval(0.37, 0.33, 0.41)}
    ScoreRecord.of("knn", dev, 500, items="items.jsonl.gz", split="dev", how="evaluated", command="test").save(
        models_dir
    )
    settings = Settings(
        store_path=small_store.path,
        collection="products",
        llm="fake",
        llm_cache_dir=None,
        models_dir=models_dir,
        strategy="knn",
        _env_file=None,
    )
    return Estimator.from_settings(settings)


@contextmanager
def serving(app) -> Iterator[str]:
    """``app`` under uvicorn in a thread on a free 127.0.0.1 port; yields its URL once ready."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # bound here and handed over: no race for the port
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not become ready"
        time.sleep(0.1)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def base_url(estimator: Estimator) -> Iterator[str]:
    with serving(create_app(estimator)) as url:
        yield url


@pytest.fixture(scope="module")
def auth_url(estimator: Estimator) -> Iterator[str]:
    settings = estimator.settings.model_copy(update={"api_token": SecretStr(TOKEN)})
    with serving(create_app(estimator, settings)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_page_prices_a_description_and_shows_the_evidence(
    base_url: str, browser, train_items: list[Item], tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 1300})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.goto(f"{base_url}/")

    # The strategies come from the API; no token field without auth.
    page.wait_for_selector("#strategy option[value='knn']", state="attached")
    assert page.input_value("#strategy") == "knn"
    assert page.is_hidden("#token-field")
    sync_api.expect(page.locator("#status")).to_contain_text("ready")

    # An empty description: the server's message is shown, no result.
    page.fill("#description", "   ")
    page.click("#submit")
    sync_api.expect(page.locator("#error")).to_be_visible()
    sync_api.expect(page.locator("#error")).to_contain_text("description: the description is empty")
    assert page.is_hidden("#result")

    description = train_items[3].description
    page.fill("#description", description)
    page.fill("#k", "6")
    page.click("#submit")
    sync_api.expect(page.locator("#comparables tbody tr")).to_have_count(6)
    assert page.is_hidden("#error")

    # What the page shows is what the API answers.
    api = httpx.post(f"{base_url}/v1/estimate", json={"description": description, "k": 6}).json()
    assert page.inner_text("#price") == f"${api['price']:,.2f}"
    first_row = page.locator("#comparables tbody tr").first.locator("td")
    assert first_row.nth(1).inner_text() == api["comparables"][0]["title"]
    assert first_row.nth(3).inner_text() == f"${api['comparables'][0]['price']:,.2f}"
    assert first_row.nth(4).inner_text().strip() == f"{api['comparables'][0]['similarity']:.3f}"

    # The chart: one dot per comparable and the estimate marked, placed by price on the axis.
    chart = page.locator("#chart svg")
    sync_api.expect(chart.locator("circle.comparable")).to_have_count(6)
    assert chart.locator("line.estimate-line").count() == 1
    assert chart.locator("text.estimate-label").text_content() == f"estimate ${api['price']:,.2f}"
    xs = [
        float(x) for x in chart.locator("circle.comparable").evaluate_all("dots => dots.map(d => d.getAttribute('cx'))")
    ]
    prices = [c["price"] for c in api["comparables"]]
    order = sorted(range(len(prices)), key=prices.__getitem__)
    assert [xs[i] for i in order] == sorted(xs)  # cheaper is further left

    # A bad request after a good one: the error replaces the result.
    page.fill("#k", "500")
    page.click("#submit")
    sync_api.expect(page.locator("#error")).to_contain_text("k: Input should be less than or equal to 100")
    assert page.is_hidden("#result")

    page.fill("#k", "6")
    page.click("#submit")
    sync_api.expect(page.locator("#result")).to_be_visible()
    screenshot = Path(os.environ.get("RAG_PRICER_SCREENSHOT_DIR", tmp_path)) / "service-page.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 20_000
    assert problems == [] or all("status of 422" in p for p in problems), problems
    page.close()


def test_the_page_says_how_far_to_trust_the_price_next_to_it(base_url: str, browser, train_items: list[Item]) -> None:
    problems: list[str] = []
    page = watched_page(browser, problems, viewport={"width": 1100, "height": 900})
    page.goto(f"{base_url}/")
    page.wait_for_selector("#strategy option[value='knn']", state="attached")
    page.fill("#description", "hello world")
    page.click("#submit")
    confidence = page.locator("#confidence")
    sync_api.expect(confidence).to_be_visible()
    api = httpx.post(f"{base_url}/v1/estimate", json={"description": "hello world"}).json()
    assert api["confidence"] == "low"
    assert confidence.inner_text() == f"Low confidence — {api['confidence_reason']}"
    assert "low" in (confidence.get_attribute("class") or "").split()
    # right under the price, inside the headline
    assert page.locator(".headline #price ~ #confidence").count() == 1

    page.fill("#description", train_items[3].description)
    page.click("#submit")
    known = httpx.post(f"{base_url}/v1/estimate", json={"description": train_items[3].description}).json()
    sync_api.expect(confidence).to_have_text(
        f"{known['confidence'].capitalize()} confidence — {known['confidence_reason']}"
    )
    assert known["confidence"] != "low" and problems == [], problems
    page.close()


def test_api_docs_render_without_internet(base_url: str, browser) -> None:
    page = browser.new_page()
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(f"{base_url}/docs")
    sync_api.expect(page.get_by_text("Estimate the price of one description")).to_be_visible()
    sync_api.expect(page.get_by_text("Readiness: embedding model and knowledge base loaded")).to_be_visible()
    assert failed == []  # every asset came from the server itself, none from a CDN
    page.close()


def test_page_asks_for_the_token_when_the_server_has_one(auth_url: str, browser, train_items: list[Item]) -> None:
    page = browser.new_page()
    page.goto(f"{auth_url}/")
    sync_api.expect(page.locator("#token-field")).to_be_visible()
    sync_api.expect(page.locator("#strategy-summary")).to_contain_text("needs an API token")
    assert page.locator("#strategy option").count() == 0

    page.fill("#token", "wrong")
    page.locator("#token").dispatch_event("change")
    sync_api.expect(page.locator("#error")).to_contain_text("missing or invalid bearer token")

    page.fill("#token", TOKEN)
    page.locator("#token").dispatch_event("change")
    page.wait_for_selector("#strategy option[value='knn']", state="attached")
    assert page.is_hidden("#error")
    page.fill("#description", train_items[5].description)
    page.click("#submit")
    # k left empty: knn's own tuned default (7) applies, as in the CLI, not a page default of 5.
    sync_api.expect(page.locator("#comparables tbody tr")).to_have_count(7)
    assert page.inner_text("#price").startswith("$")
    assert TOKEN not in page.content()  # the token stays in the password field's value only
    page.close()


def watched_page(browser, problems: list[str], **options):
    """A new page whose script errors are collected in ``problems``."""
    page = browser.new_page(**options)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    return page


def test_page_fits_a_phone_and_its_chart_stays_readable(base_url: str, browser, tmp_path: Path) -> None:
    problems: list[str] = []
    page = watched_page(browser, problems, viewport={"width": 390, "height": 844})
    page.goto(f"{base_url}/")
    page.wait_for_selector("#strategy option[value='knn']", state="attached")

    # The example button fills a real description; it prices like any other.
    page.click("#example")
    example = page.input_value("#description")
    assert example.startswith("Delphi FG0166 Fuel Pump Module")
    page.click("#submit")
    sync_api.expect(page.locator("#comparables tbody tr")).to_have_count(7)
    sync_api.expect(page.locator("#result")).to_be_visible()

    # Nothing wider than the screen: no sideways scrolling of the page.
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1] == 390, width
    for selector in ("#price", "#range", "#confidence", "#chart svg", "#submit", "#comparables"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (selector, box)

    # The price range of the calibrated strategy, as the API gives it.
    api = httpx.post(f"{base_url}/v1/estimate", json={"description": example}).json()
    assert api["coverage"] == 0.8
    assert page.inner_text("#range") == f"80% range: ${api['low']:,.2f} – ${api['high']:,.2f}"
    assert page.locator("#chart svg rect.range-band").count() == 1

    # The chart is drawn at the phone's width: its text is as tall on screen as the stylesheet
    # says (11-12 px), not a desktop drawing shrunk to a third.
    heights = page.locator("#chart svg text").evaluate_all("ts => ts.map(t => t.getBoundingClientRect().height)")
    assert heights and min(heights) >= 10, heights
    svg_width = float(page.locator("#chart svg").get_attribute("width"))
    assert svg_width <= 390
    page.locator("#comparables tbody tr").first.locator("button.link").click()  # a description opened
    sync_api.expect(page.locator("#comparables .product-text")).to_be_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    screenshot = Path(os.environ.get("RAG_PRICER_SCREENSHOT_DIR", tmp_path)) / "service-page-phone.png"
    page.screenshot(path=str(screenshot), full_page=True)

    # Turned to a desktop width, the chart is drawn again for the new width.
    page.set_viewport_size({"width": 1100, "height": 900})
    page.wait_for_function("() => Number(document.querySelector('#chart svg').getAttribute('width')) > 800")
    assert problems == [], problems
    page.close()


def test_unavailable_strategies_say_what_they_lack_in_words_and_cannot_be_chosen(base_url: str, browser) -> None:
    problems: list[str] = []
    page = watched_page(browser, problems)
    page.goto(f"{base_url}/")
    page.wait_for_selector("#strategy option[value='knn']", state="attached")
    listed = {s["name"]: s for s in httpx.get(f"{base_url}/v1/strategies").json()["strategies"]}
    assert listed["finetuned"]["ready"] is False and listed["knn"]["ready"] is True

    enabled = page.locator("#strategy option:not([disabled])").evaluate_all("os => os.map(o => o.value)")
    disabled = page.locator("#strategy option[disabled]").evaluate_all("os => os.map(o => o.value)")
    assert sorted(enabled) == sorted(n for n, s in listed.items() if s["ready"])
    assert sorted(disabled) == sorted(n for n, s in listed.items() if not s["ready"])
    assert "finetuned" in disabled and "bow" in disabled and page.input_value("#strategy") == "knn"

    # Each unavailable strategy is listed with what it lacks, in words: the operator's commands
    # and the server's folders stay in `rag-pricer strategies` and the logs.
    page.click("#unavailable summary")
    finetuned = page.locator("#unavailable-list li[data-strategy='finetuned']")
    sync_api.expect(finetuned).to_be_visible()
    sync_api.expect(finetuned).to_contain_text("not prepared on this server")
    text = page.inner_text("body")
    assert not re.search(r"rag-pricer(-ingest)? [a-z]", text), text  # the page's name, never a command
    assert "MODELS_DIR" not in text and "--" not in text and "/tmp" not in text

    # The measured dev error is shown where the strategy is picked, the recommended one marked.
    assert page.locator("#strategy option[value='knn']").inner_text() == "knn — $106 on dev (recommended)"
    assert page.locator("#strategy option[value='rag']").inner_text() == "rag"
    assert problems == [], problems
    page.close()


def test_llm_strategies_offer_the_llm_backends(base_url: str, browser, train_items: list[Item]) -> None:
    problems: list[str] = []
    page = watched_page(browser, problems)
    sent: list[dict] = []
    page.on("request", lambda r: sent.append(r.post_data_json) if r.url.endswith("/v1/estimate") else None)
    page.goto(f"{base_url}/")
    page.wait_for_selector("#strategy option[value='rag']", state="attached")
    assert page.is_hidden("#llm-field")  # knn needs no LLM

    page.select_option("#strategy", "rag")
    sync_api.expect(page.locator("#llm-field")).to_be_visible()
    names = page.locator("#llm option").evaluate_all("os => os.map(o => o.value)")
    assert names == [b["name"] for b in httpx.get(f"{base_url}/v1/llms").json()["llms"]]
    assert page.input_value("#llm") == "fake"  # the server's default

    page.fill("#description", train_items[11].description)
    page.click("#submit")
    sync_api.expect(page.locator("#llm-answer")).to_contain_text("LLM answer:")
    assert sent[-1]["strategy"] == "rag" and sent[-1]["llm"] == "fake"
    # rag is not calibrated: the page says so in words, never with the command that would calibrate it
    assert page.inner_text("#range") == "no range for this strategy"
    assert not re.search(r"rag-pricer [a-z]", page.inner_text("#result"))

    page.select_option("#strategy", "knn")
    assert page.is_hidden("#llm-field")
    page.click("#submit")
    sync_api.expect(page.locator("#meta")).to_contain_text("knn")
    assert sent[-1]["strategy"] == "knn" and "llm" not in sent[-1]
    assert problems == [], problems
    page.close()


def test_network_errors_read_as_sentences(base_url: str, browser, train_items: list[Item]) -> None:
    problems: list[str] = []
    page = watched_page(browser, problems)
    page.goto(f"{base_url}/")
    page.wait_for_selector("#strategy option[value='knn']", state="attached")
    page.fill("#description", train_items[2].description)

    page.route("**/v1/estimate", lambda route: route.abort("connectionrefused"))
    page.click("#submit")
    error = page.locator("#error")
    sync_api.expect(error).to_contain_text("Could not reach the rag-pricer server")
    assert "Failed to fetch" not in error.inner_text()
    assert page.is_hidden("#result") and page.is_enabled("#submit")

    # A proxy's HTML error page, not the API's JSON: the status, said plainly.
    page.unroute("**/v1/estimate")
    page.route("**/v1/estimate", lambda route: route.fulfill(status=502, body="<html>Bad Gateway</html>"))
    page.click("#submit")
    sync_api.expect(error).to_contain_text("The server could not answer (502")

    # Back to the real server: the estimate replaces the error.
    page.unroute("**/v1/estimate")
    page.click("#submit")
    sync_api.expect(page.locator("#result")).to_be_visible()
    assert page.is_hidden("#error")
    assert problems == [], problems
    page.close()


def test_a_comparable_opens_to_its_description(base_url: str, browser, train_items: list[Item]) -> None:
    problems: list[str] = []
    page = watched_page(browser, problems)
    page.goto(f"{base_url}/")
    page.wait_for_selector("#strategy option[value='knn']", state="attached")
    description = train_items[4].description
    page.fill("#description", description)
    page.click("#submit")
    sync_api.expect(page.locator("#comparables tbody tr")).to_have_count(7)
    first = httpx.post(f"{base_url}/v1/estimate", json={"description": description}).json()["comparables"][0]
    product = httpx.get(f"{base_url}/v1/products/{first['id']}").json()

    opener = page.locator("#comparables tbody tr").first.locator("button.link")
    assert opener.inner_text() == first["title"]
    opener.click()
    opened = page.locator("#comparables tr.product-row")
    sync_api.expect(opened).to_have_count(1)
    sync_api.expect(opened.locator(".product-text")).to_have_text(product["description"])
    sync_api.expect(opened.locator(".product-facts")).to_contain_text(f"${product['price']:,.2f}")
    assert opener.get_attribute("aria-expanded") == "true"

    opener.click()  # and closes again
    sync_api.expect(opened).to_have_count(0)
    assert opener.get_attribute("aria-expanded") == "false"
    assert problems == [], problems
    page.close()
