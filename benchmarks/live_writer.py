"""A second process writing products with ``KnowledgeWriter``: the other writer of the live-update
benchmark (``benchmarks.live_updates``), beside the serving process.

    python -m benchmarks.live_writer --store S [--items FILE | -] [--pause 0.05]

Loads the embedder and opens the store as the settings say (``--store`` overrides the store
path), prints ``{"ready": true}``, then writes the products of FILE (curated JSONL; ``-`` reads
stdin, one product per line, as the benchmark sends them) one at a time. After each write
returns it prints one JSON line, flushed: ``{"id", "written_at", "write_s"}``; ``written_at`` is
``time.monotonic()``, the same clock in every process of the machine (Linux
``CLOCK_MONOTONIC``), so the benchmark can time what happens after the write. A printed id is an
acknowledged write: the benchmark checks that each one survives SIGKILLs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from rag_pricer.items import Item
from rag_pricer.knowledge.writer import KnowledgeWriter
from rag_pricer.pricing.resources import Resources
from rag_pricer.settings import Settings


def products(lines: TextIO) -> Iterator[Item]:
    """The products of curated JSONL ``lines`` (blank lines skipped), as ingestion reads them."""
    for line in lines:
        if line.strip():
            yield Item.from_record(json.loads(line))


def say(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, required=True, help="The store folder (an embedded Chroma store).")
    parser.add_argument("--items", default="-", help="Curated JSONL to write, one product at a time; - is stdin.")
    parser.add_argument("--pause", type=float, default=0.0, help="Seconds to wait between two writes.")
    args = parser.parse_args()
    resources = Resources(Settings.load(store_path=args.store))
    writer = KnowledgeWriter(resources.store, resources.embedder)
    resources.store.collection()  # open the store and load the model before saying ready
    resources.embedder.encode(["warm up"])
    say(ready=True)
    source = sys.stdin if args.items == "-" else open(args.items, encoding="utf-8")
    with source:
        for item in products(source):
            started = time.monotonic()
            writer.upsert([item])
            done = time.monotonic()
            say(id=item.id, written_at=done, write_s=round(done - started, 4))
            if args.pause > 0:
                time.sleep(args.pause)


if __name__ == "__main__":
    main()
