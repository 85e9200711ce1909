"""Reading the benchmark's annotation files (LLP format: tab-separated, with a header row).

- split files (``AVVP_train.csv``, ``AVVP_val_pd.csv``, ``AVVP_test_pd.csv``): ``filename``, ``event_labels``
  (a comma-separated subset of the classes): the weak, video-level labels.
- eval files (``AVVP_eval_audio.csv``, ``AVVP_eval_visual.csv``): ``filename``, ``onset``, ``offset``,
  ``event_labels`` (one class per row): segment-level truth, whole seconds, end exclusive.

Every problem is an :class:`~ecma.errors.EcmaError` naming the file, the line and the problem. A UTF-8 byte
order mark at the start of a file (as spreadsheet programs write) is accepted and dropped, as the benchmark's
own reader does: AVVP-ECCV20 reads these files with ``pandas.read_csv(..., sep="\\t")``, which skips it.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ecma.errors import EcmaError
from ecma.progress import log

SPLIT_COLUMNS = ("filename", "event_labels")
EVAL_COLUMNS = ("filename", "onset", "offset", "event_labels")


@dataclass(frozen=True)
class SplitLabels:
    """The videos of one split in file order, with their weak labels."""

    path: str
    filenames: list[str]
    labels: list[tuple[str, ...]]

    def __len__(self) -> int:
        return len(self.filenames)

    def label_matrix(self, classes: Sequence[str]) -> np.ndarray:
        """(N, C) float32 multi-hot matrix in the order of ``classes``."""
        index = {c: i for i, c in enumerate(classes)}
        y = np.zeros((len(self.filenames), len(classes)), dtype=np.float32)
        for n, names in enumerate(self.labels):
            for name in names:
                y[n, index[name]] = 1.0
        return y


@dataclass(frozen=True)
class EvalRow:
    filename: str
    onset: int
    offset: int
    label: str
    source: str = ""  # the file and line it was read from, for messages
    line: int = 0


def _read_rows(path: str | os.PathLike, columns: Sequence[str], what: str) -> list[tuple[int, dict[str, str]]]:
    path = Path(path)
    if not path.is_file():
        raise EcmaError(f"{path}: {what} file not found")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # utf-8, minus a leading byte order mark
            reader = csv.reader(f, delimiter="\t")
            try:
                header = next(reader)
            except StopIteration:
                raise EcmaError(f"{path}: {what} file is empty (expected a header: {', '.join(columns)})") from None
            header = [h.strip() for h in header]
            missing = [c for c in columns if c not in header]
            if missing:
                raise EcmaError(
                    f"{path}: {what} file lacks column(s) {', '.join(missing)} "
                    f"(header is {header!r}; the files are tab-separated)"
                )
            pos = [header.index(c) for c in columns]
            rows = []
            for lineno, row in enumerate(reader, start=2):
                if not row or all(not cell.strip() for cell in row):
                    continue
                if len(row) <= max(pos):
                    raise EcmaError(f"{path}:{lineno}: expected {len(header)} tab-separated fields, found {len(row)}")
                rows.append((lineno, {c: row[p].strip() for c, p in zip(columns, pos)}))
            return rows
    except UnicodeDecodeError as e:
        raise EcmaError(f"{path}: not a text file ({e.reason})") from None


def _check_class(path, lineno, name: str, classes: Sequence[str]) -> None:
    if name not in classes:
        raise EcmaError(f"{path}:{lineno}: unknown class {name!r} (known: {', '.join(classes)})")


def read_split(path: str | os.PathLike, classes: Sequence[str]) -> SplitLabels:
    """Read a split file; duplicate filenames and unknown classes are errors."""
    filenames, labels, seen = [], [], set()
    for lineno, row in _read_rows(path, SPLIT_COLUMNS, "split"):
        name = row["filename"]
        if not name:
            raise EcmaError(f"{path}:{lineno}: empty filename")
        if name in seen:
            raise EcmaError(f"{path}:{lineno}: video {name!r} is listed twice")
        seen.add(name)
        names = tuple(x.strip() for x in row["event_labels"].split(",") if x.strip())
        for c in names:
            _check_class(path, lineno, c, classes)
        filenames.append(name)
        labels.append(names)
    return SplitLabels(str(path), filenames, labels)


def read_eval(path: str | os.PathLike, classes: Sequence[str]) -> list[EvalRow]:
    """Read a segment-level truth file. Rows with onset >= offset, or past the clip, are kept and scored as the
    benchmark scores them (:func:`segment_truth` says so where they are used)."""
    out = []
    for lineno, row in _read_rows(path, EVAL_COLUMNS, "eval"):
        try:
            onset, offset = int(row["onset"]), int(row["offset"])
        except ValueError:
            raise EcmaError(
                f"{path}:{lineno}: onset/offset must be whole seconds, got {row['onset']!r}/{row['offset']!r}"
            ) from None
        if onset < 0 or offset < 0:
            raise EcmaError(f"{path}:{lineno}: negative onset/offset {onset}/{offset}")
        _check_class(path, lineno, row["event_labels"], classes)
        out.append(EvalRow(row["filename"], onset, offset, row["event_labels"], str(path), lineno))
    return out


def segment_truth(
    rows: Sequence[EvalRow], filenames: Sequence[str], classes: Sequence[str], n_segments: int,
    lengths: Sequence[int] | None = None,
) -> np.ndarray:
    """(N, C, T) 0/1 truth for ``filenames``: GT[c, onset:offset] = 1 (end exclusive, clipped to T).

    Rows of videos outside ``filenames`` are ignored, and rows with onset >= offset set nothing:
    both as in the benchmark's evaluation loop. Rows of these videos with onset > offset or past the clip's
    end (``lengths[n]`` segments where given, else ``n_segments``) are scored so too, and named in one
    warning line per file.
    """
    index = {f: i for i, f in enumerate(filenames)}
    cls = {c: i for i, c in enumerate(classes)}
    gt = np.zeros((len(filenames), len(classes), n_segments), dtype=np.uint8)
    for r in rows:
        n = index.get(r.filename)
        if n is not None and r.onset < r.offset:
            gt[n, cls[r.label], r.onset : r.offset] = 1
    ends = [n_segments] * len(filenames) if lengths is None else [int(t) for t in lengths]
    _warn_rows_outside_their_clip([(r, ends[index[r.filename]]) for r in rows if r.filename in index])
    return gt


def _warn_rows_outside_their_clip(rows: Sequence[tuple[EvalRow, int]], shown: int = 3) -> None:
    """One warning line per file (the ``ecma`` logger, on stderr) naming the first ``shown`` of its truth rows
    (row, clip end) with onset > offset or offset past the clip's end. They stay, scored as the benchmark
    scores them (no segment, or cut at the clip's end); one line, so that a real run is not flooded."""
    bad: dict[str, list[str]] = {}
    for r, end in rows:
        if r.onset > r.offset:
            bad.setdefault(r.source, []).append(f"{r.line} (onset {r.onset} > offset {r.offset})")
        elif r.offset > end:
            bad.setdefault(r.source, []).append(f"{r.line} (offset {r.offset} past the clip's end {end})")
    for source, lines in bad.items():
        more = f" and {len(lines) - shown} more" if len(lines) > shown else ""
        log.warning(f"{source}: {len(lines)} truth row(s) end before they start or past their clip, kept and "
                    f"scored as the benchmark scores them (nothing, or cut at the clip's end): line "
                    f"{', '.join(lines[:shown])}{more}")
