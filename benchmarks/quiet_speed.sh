#!/usr/bin/env bash
# Usage: STORE=var/store OUT=benchmarks/out bash benchmarks/quiet_speed.sh   (nothing else running)
# Quiet re-measurement of issue 15's speed figures, one after another, load average logged.
cd "$(dirname "$0")/.."
B=.venv/bin/python
log() { echo "== $1 $(date -u +%H:%M:%S) load: $(cut -d' ' -f1-3 /proc/loadavg)"; }
log "embedding runtimes"
$B -m benchmarks.embedding --store ${STORE:-var/store} --n 1000 --queries 1000 --rounds 3 --out ${OUT:-benchmarks/out}/q-embedding.json 2>&1 | grep -v Warning | grep '^round'
log "ingest indexers"
$B -m benchmarks.ingest --skip-base --export --indexers --n 400 --indexer-rounds 2 --out ${OUT:-benchmarks/out}/q-ingest-indexers.json 2>&1 | grep -v Warning | tail -25
log "knn latency"
$B -m benchmarks.estimate --store ${STORE:-var/store} --n 60 --rag-n 0 --compare-knn --out ${OUT:-benchmarks/out}/q-estimate-knn.json 2>&1 | tail -25
log "service"
$B -m benchmarks.service --store ${STORE:-var/store} --strategies knn --concurrency 1 4 --embedding-backends torch onnx --max-seconds 15 --warmup 5 --out ${OUT:-benchmarks/out}/q-service 2>&1 | tail -25
log "filters"
$B -m benchmarks.filters --store ${STORE:-var/store} --n 200 --rounds 2 --out ${OUT:-benchmarks/out}/q-filters.json 2>&1 | tail -25
log "end"
