// rag-pricer page: plain JS, no build step. Everything from the server is inserted with
// textContent / SVG attributes, never innerHTML, so product titles cannot inject markup.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
let strategies = [];

function headers() {
  const h = { "Content-Type": "application/json" };
  const token = $("token").value.trim();
  if (token) h["Authorization"] = "Bearer " + token;
  return h;
}

// fetch JSON; throw an Error carrying the server's message for any non-2xx answer.
async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers() });
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) {
    throw new Error(describeError(response, body));
  }
  return body;
}

function describeError(response, body) {
  if (body && Array.isArray(body.details) && body.error === "invalid_request") {
    // "body.description: the description is empty" -> "description: the description is empty"
    return body.details.map((d) => `${d.loc[d.loc.length - 1]}: ${d.msg}`).join("; ");
  }
  if (body && body.message) return body.message;
  return `${response.status} ${response.statusText || "error"}`;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

async function checkReady() {
  const badge = $("status");
  try {
    const response = await fetch("/readyz");
    const body = await response.json();
    if (body.ready) {
      badge.textContent = `ready · ${Number(body.store_items).toLocaleString("en-US")} products`;
      badge.className = "status ready";
      return;
    }
    badge.textContent = body.status === "failed" ? "not ready: " + (body.detail || "failed") : "loading models…";
    badge.className = body.status === "failed" ? "status down" : "status";
    if (body.status !== "failed") setTimeout(checkReady, 1000);
  } catch (_) {
    badge.textContent = "server unreachable";
    badge.className = "status down";
    setTimeout(checkReady, 3000);
  }
}

async function loadStrategies() {
  try {
    const data = await api("/v1/strategies");
    strategies = data.strategies;
    const select = $("strategy");
    select.replaceChildren(...strategies.map((s) => {
      const option = el("option", s.name);
      option.value = s.name;
      option.selected = s.name === data.default;
      return option;
    }));
    showSummary();
    showError("");
  } catch (error) {
    showError("Could not load the strategies: " + error.message);
  }
}

function showSummary() {
  const chosen = strategies.find((s) => s.name === $("strategy").value);
  $("strategy-summary").textContent = chosen ? chosen.summary : "";
}

async function submit(event) {
  event.preventDefault();
  const button = $("submit");
  const request = { description: $("description").value, strategy: $("strategy").value || null };
  const k = $("k").value.trim();
  if (k) request.k = Number(k);
  button.disabled = true;
  button.textContent = "Estimating…";
  showError("");
  try {
    const result = await api("/v1/estimate", { method: "POST", body: JSON.stringify(request) });
    render(result);
  } catch (error) {
    $("result").hidden = true;
    showError(error.message);
  } finally {
    button.disabled = false;
    button.textContent = "Estimate price";
  }
}

function render(result) {
  $("price").textContent = usd.format(result.price);
  const range = $("range");
  const ranged = result.low != null && result.high != null;
  range.textContent = ranged
    ? `${Math.round(result.coverage * 100)}% range ${usd.format(result.low)} – ${usd.format(result.high)}`
    : "no calibrated range for this strategy";
  $("meta").textContent = `${result.strategy} · ${result.comparables.length} comparables · ${Math.round(result.latency_ms)} ms`;
  const fallback = $("fallback");
  fallback.hidden = !result.fallback;
  fallback.textContent = result.fallback ? "Fallback: " + result.fallback_reason : "";
  const answer = $("llm-answer");
  answer.hidden = result.llm_answer == null;
  answer.textContent = result.llm_answer == null ? "" : "LLM answer: " + result.llm_answer;
  $("notes").replaceChildren(...result.notes.map((n) => el("li", n)));

  const rows = result.comparables.map((c, i) => {
    const tr = document.createElement("tr");
    tr.append(el("td", String(i + 1), "num"), el("td", c.title), el("td", c.category || "–"),
              el("td", usd.format(c.price), "num"));
    const sim = el("td", "", "num");
    const bar = el("span", undefined, "bar");
    bar.style.width = `${Math.max(2, Math.round(c.similarity * 60))}px`;
    sim.append(bar, document.createTextNode(c.similarity.toFixed(3)));
    tr.append(sim);
    return tr;
  });
  $("comparables").tBodies[0].replaceChildren(...rows);
  drawChart(result.price, result.comparables, ranged ? result : null);
  $("result").hidden = false;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// Ticks at 1, 2, 5 x 10^n inside [lo, hi], thinned to at most ~8.
function logTicks(lo, hi) {
  const ticks = [];
  for (let p = Math.floor(Math.log10(lo)); p <= Math.ceil(Math.log10(hi)); p++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** p;
      if (v >= lo && v <= hi) ticks.push(v);
    }
  }
  const step = Math.ceil(ticks.length / 8);
  return ticks.filter((_, i) => i % step === 0);
}

// A strip plot on a log price axis: one dot per comparable (bigger = more similar), the
// estimate as a red line, its calibrated range (when there is one) as a band. Prices are
// roughly log-normal, hence the log scale.
function drawChart(estimate, comparables, range) {
  const W = 880, H = 150, left = 30, right = 30, axisY = 110;
  const prices = comparables.map((c) => c.price).concat([estimate]).concat(range ? [range.low, range.high] : []);
  let lo = Math.min(...prices) / 1.25, hi = Math.max(...prices) * 1.25;
  if (hi / lo < 4) { const mid = Math.sqrt(lo * hi); lo = mid / 2; hi = mid * 2; }
  const x = (v) => left + (Math.log(v) - Math.log(lo)) / (Math.log(hi) - Math.log(lo)) * (W - left - right);

  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `Estimate ${usd.format(estimate)} among ${comparables.length} comparable prices` });
  if (range) {
    const band = svg("rect", { id: "range-band", class: "range-band", x: x(range.low), y: 22,
      width: Math.max(1, x(range.high) - x(range.low)), height: axisY - 22 });
    band.append(svg("title", {}, `${Math.round(range.coverage * 100)}% range ${usd.format(range.low)} – ${usd.format(range.high)}`));
    root.append(band);
  }
  root.append(svg("line", { class: "axis", x1: left, x2: W - right, y1: axisY, y2: axisY }));
  for (const t of logTicks(lo, hi)) {
    const g = svg("g", { class: "tick" });
    g.append(svg("line", { class: "axis", x1: x(t), x2: x(t), y1: axisY, y2: axisY + 5 }));
    g.append(svg("text", { x: x(t), y: axisY + 18, "text-anchor": "middle" }, usd.format(t).replace(/\.00$/, "")));
    root.append(g);
  }
  root.append(svg("text", { class: "axis-label", x: W - right, y: H - 4, "text-anchor": "end" }, "price (log scale)"));

  // Dot size and opacity by similarity relative to the others: the closest product stands out.
  const sims = comparables.map((c) => c.similarity);
  const sLo = Math.min(...sims), sSpan = Math.max(...sims) - sLo || 1;
  comparables.forEach((c, i) => {
    const weight = (c.similarity - sLo) / sSpan;
    const y = axisY - 28 - (i % 3) * 16;  // a little vertical spread so equal prices stay visible
    const r = 5 + 5 * weight;
    const dot = svg("circle", { class: "comparable", cx: x(c.price), cy: y, r: r,
      "fill-opacity": (0.45 + 0.5 * weight).toFixed(2) });
    dot.append(svg("title", {}, `#${i + 1} ${c.title}\n${usd.format(c.price)} · similarity ${c.similarity.toFixed(3)}`));
    root.append(dot);
    // the row number of the table, so the dot and its product can be matched
    root.append(svg("text", { class: "dot-label", x: x(c.price), y: y - r - 3, "text-anchor": "middle" }, String(i + 1)));
  });

  const ex = x(estimate);
  root.append(svg("line", { class: "estimate-line", x1: ex, x2: ex, y1: 22, y2: axisY }));
  const anchor = ex > W - 120 ? "end" : ex < 120 ? "start" : "middle";
  root.append(svg("text", { class: "estimate-label", x: ex, y: 16, "text-anchor": anchor }, `estimate ${usd.format(estimate)}`));
  $("chart").replaceChildren(root);
}

async function init() {
  $("form").addEventListener("submit", submit);
  $("strategy").addEventListener("change", showSummary);
  $("token").addEventListener("change", loadStrategies);
  checkReady();
  try {
    const health = await (await fetch("/healthz")).json();
    $("token-field").hidden = !health.auth_required;
    if (health.auth_required) {
      $("strategy-summary").textContent = "This server needs an API token: enter it to load the strategies.";
      return;
    }
  } catch (_) { /* checkReady reports it */ }
  loadStrategies();
}

init();
