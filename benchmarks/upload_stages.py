#!/usr/bin/env python3
"""Where an upload's time goes, from the JSON logs of one run of our stack (e.g. `run.py --keep`).

    .venv/bin/python benchmarks/upload_stages.py [.bench/run-ours/var/log]

Joins the lines of each upload by correlation id and prints the median and p90 per stage, per corpus
group (file name prefix):
  api      request start -> `distribution_stored` (auth, the file part read and hashed, the reservation
           beside the S3 put and the inspection, publish confirm)
  queue    -> worker `distribution_inspected` (delivery, the metadata's check; negative when the worker
           starts before upload-api has the broker's confirm, which is usual)
  index    -> worker `distribution_indexed` (Mongo writes, page updates, index.changed)
  verdict  -> upload-api `http_request` (the verdict's delivery, the replicas' index.applied answers, the
           response)
"""
from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from statistics import median, quantiles

STAGES = (("api", "start", "distribution_stored"), ("queue", "distribution_stored", "distribution_inspected"),
          ("index", "distribution_inspected", "distribution_indexed"), ("verdict", "distribution_indexed", "end"))


def events(log_dir: Path) -> dict[str, dict[str, float]]:
    by_cid: dict[str, dict[str, float]] = defaultdict(dict)
    for name in ("upload-api.log", "metadata-worker.log"):
        for line in (log_dir / name).read_text().splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            cid, event = doc.get("correlation_id"), doc.get("event")
            if not cid or not doc.get("timestamp"):
                continue
            at = datetime.fromisoformat(doc["timestamp"].replace("Z", "+00:00")).timestamp()
            if event == "http_request" and doc.get("method") == "POST":
                by_cid[cid]["end"] = at
                by_cid[cid]["start"] = at - doc["duration_ms"] / 1000
                by_cid[cid]["group"] = re.sub(r"\d+", "N", doc.get("filename", "?").split("-")[0])  # type: ignore[assignment]
            elif event in ("distribution_stored", "distribution_inspected", "distribution_indexed"):
                by_cid[cid][event] = at
    return by_cid


def main(argv: list[str]) -> int:
    log_dir = Path(argv[0]) if argv else Path(".bench/run-ours/var/log")
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for marks in events(log_dir).values():
        if not all(k in marks for k in ("start", "end", *(s for _, s, _ in STAGES[1:]))):
            continue
        stages = groups[str(marks["group"])]
        for label, begin, end in STAGES:
            stages[label].append((marks[end] - marks[begin]) * 1000)
        stages["total"].append((marks["end"] - marks["start"]) * 1000)
    for group, stages in sorted(groups.items()):
        cells = []
        for label, values in stages.items():
            p90 = quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
            cells.append(f"{label} {median(values):6.1f}/{p90:6.1f}")
        print(f"{group:12} n={len(stages['total']):4}  " + "  ".join(cells) + "  (ms, median/p90)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
