"""The failures table beside a shard (``SHARD.h5.failures.tsv``): one row per video that did not make it in.

Shared by extraction and import; kept free of torch so that ``ecma import`` starts fast.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ecma.io import atomic_path

FAILURES_HEADER = ("filename", "stage", "reason")


def failures_path_for(output: str | Path) -> Path:
    return Path(f"{output}.failures.tsv")


def write_failures(path: Path, failed: list[tuple[str, str, str]]) -> None:
    """Write (filename, stage, reason) rows, header first (header only when none failed), atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(FAILURES_HEADER)
    for name, stage, reason in failed:
        w.writerow((name, stage, " ".join(reason.split())))
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
