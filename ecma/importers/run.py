"""The import driver: annotated videos -> their published feature files -> one HDF5 shard.

Every video named in the annotation files (deduplicated, in file order; with ``shard=(i, n)`` only those
with :func:`ecma.datasets.shard_of` ``== i``, the hash extraction uses) whose files are all good goes into
the shard under its annotation filename. A video with a bad file goes to ``SHARD.h5.failures.tsv`` instead.
The shard is written to a temporary name and renamed when complete; when every video failed, no shard is
written and the import is an :class:`EcmaError`. Videos are read, converted and written one at a time, so
memory does not grow with the number of videos.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence


from ecma.annotations import read_split
from ecma.classes import LLP_CLASSES
from ecma.datasets import shard_of, youtube_id
from ecma.errors import EcmaError
from ecma.failures import failures_path_for, write_failures
from ecma.importers.han import HAN
from ecma.importers.npy import BadFeatureFile, read_feature_file
from ecma.importers.spec import FeatureFormat
from ecma.importers.valor import VALOR
from ecma.io import atomic_path
from ecma.progress import Progress
from ecma.shards import FeatureShard, now_iso

FORMATS: dict[str, FeatureFormat] = {f.name: f for f in (VALOR, HAN)}


@dataclass
class ImportReport:
    imported: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (filename, stage, reason)
    failures_path: Optional[Path] = None
    manifest: dict = field(default_factory=dict)


def feature_format(name: str) -> FeatureFormat:
    if name not in FORMATS:
        raise EcmaError(f"unknown feature format {name!r} (known: {', '.join(FORMATS)})")
    return FORMATS[name]


def check_root(fmt: FeatureFormat, root: str | os.PathLike) -> Path:
    """The root folder, after checking that it holds every sub-folder of the format."""
    root = Path(root)
    if not root.is_dir():
        raise EcmaError(f"{root}: feature root of format {fmt.name!r} not found")
    for s in fmt.streams:
        if not (root / s.folder).is_dir():
            raise EcmaError(f"{root / s.folder}: folder of the {s.role} features of format {fmt.name!r} not found")
    return root


def annotated_videos(annotation_csvs: Sequence[str | os.PathLike], shard: Optional[tuple[int, int]] = None,
                     classes: Sequence[str] = LLP_CLASSES) -> list[str]:
    """The filenames of the annotation files, each once, in file order; only shard i of n where given.
    ``classes``: those the csvs may name (LLP-format csvs: LLP's)."""
    if not annotation_csvs:
        raise EcmaError("no annotation files given")
    if shard is not None:
        i, n = shard
        if n < 1 or not 0 <= i < n:
            raise EcmaError(f"shard {i}/{n} does not exist (0 <= I < N)")
    names = dict.fromkeys(f for csv in annotation_csvs for f in read_split(csv, classes).filenames)
    return [f for f in names if shard is None or shard_of(f, shard[1]) == shard[0]]


def _load_video(fmt: FeatureFormat, root: Path, name: str) -> tuple[dict, dict, list[tuple[str, str]]]:
    """(stored arrays by role, {relative path: size}, [(folder, reason)]) of one video."""
    arrays, files, problems = {}, {}, []
    vid = youtube_id(name)
    for s in fmt.streams:
        rel = f"{s.folder}/{vid}.npy"
        try:
            array, size = read_feature_file(root / rel, s.shape)
        except BadFeatureFile as e:
            problems.append((s.folder, f"{rel}: {e}"))
            continue
        arrays[s.role] = s.convert(array) if s.convert else array
        files[rel] = size
    return arrays, files, problems


def _manifest(files: dict[str, int]) -> dict:
    """sha256 over the sorted 'path<TAB>size' lines: a cheap identity of the data (not of its contents)."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(f"{rel}\t{files[rel]}\n".encode())
    return {"sha256": h.hexdigest(), "files": len(files), "bytes": int(sum(files.values()))}


def import_features(
    format_name: str,
    root: str | os.PathLike,
    annotation_csvs: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    shard: Optional[tuple[int, int]] = None,
    names: Optional[Sequence[str]] = None,
    progress: bool = True,
) -> ImportReport:
    """Import the published features of the annotated videos (shard i of n where given) into ``output``.

    ``names`` (the workflow's use) gives the videos directly instead of the annotation files.

    ``output`` is replaced atomically; ``OUTPUT.failures.tsv`` lists the videos left out (header only when
    none). Every video failing is an :class:`EcmaError` (and no shard is written).
    """
    fmt = feature_format(format_name)
    root = check_root(fmt, root)
    output = Path(output)
    names = list(dict.fromkeys(names)) if names is not None else annotated_videos(annotation_csvs, shard)
    report = ImportReport(failures_path=failures_path_for(output))
    files: dict[str, int] = {}
    bar = Progress(len(names), f"import {output.name}", "video", bar=progress)
    try:
        with atomic_path(output) as tmp:
            with FeatureShard(tmp, "w") as out:
                out.fingerprint = fmt.fingerprint()
                stamp = now_iso()
                for name in names:
                    arrays, used, problems = _load_video(fmt, root, name)
                    if problems:
                        report.failed.append((name, problems[0][0], "; ".join(p[1] for p in problems)))
                    else:
                        out.write(name, arrays["audio"], arrays["visual"], visual_3d=arrays.get("visual_3d"),
                                  frames_per_segment=fmt.frames_per_segment, dtype="float32", extracted_at=stamp)
                        files.update(used)
                        report.imported += 1
                    bar.update(1)
                report.manifest = _manifest(files)
                out.manifest = report.manifest
            if names and not report.imported:
                write_failures(report.failures_path, report.failed)
                raise EcmaError(
                    f"{root}: none of the {len(names)} videos could be imported (see {report.failures_path}); "
                    f"first: {report.failed[0][2]}"
                )
    finally:
        bar.close()
    write_failures(report.failures_path, report.failed)
    return report
