#!/usr/bin/env bash
# CI step: `pip install rag-pricer` with NO extras, in its own venv, then the core's promises:
# `rag-pricer-ingest` runs, `estimate -s knn` prices against the store that run.sh built, and
# an LLM strategy is refused with one line naming the `llm` extra. Prints how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
CORE=${CORE_VENV:-/tmp/core-venv}
PYTHON=${PYTHON:-python3.11}
STORE=${RAG_PRICER_STORE_PATH:-$PWD/var/store}
started=$SECONDS

rm -rf "$CORE"
"$PYTHON" -m venv "$CORE"
# The CPU wheel of torch first, as run.sh does: anything else may pull a CUDA build.
"$CORE/bin/python" -m pip --quiet install torch==2.13.0
"$CORE/bin/python" -m pip --quiet install .
installed=$((SECONDS - started))

"$CORE/bin/rag-pricer-ingest" --help >/dev/null
# From another directory: the installed package is what runs, not this checkout (nor its .env).
(cd /tmp && RAG_PRICER_STORE_PATH="$STORE" "$CORE/bin/rag-pricer" estimate -s knn "Stainless steel insulated water bottle, 32 oz")
if refused=$(cd /tmp && RAG_PRICER_STORE_PATH="$STORE" "$CORE/bin/rag-pricer" estimate -s rag "a water bottle" 2>&1); then
  echo "core install: rag should be refused without the llm extra" >&2
  exit 1
fi
grep -q "pip install 'rag-pricer\[llm\]'" <<<"$refused" || { echo "core install: unexpected refusal: $refused" >&2; exit 1; }
echo "core install: knn and ingest work, rag names its extra (install ${installed} s, all $((SECONDS - started)) s)"
