"""The import driver: annotated videos -> their published feature files -> one HDF5 shard.

Every video named in the annotation files (deduplicated, in the format's order: LLP csvs' file order, UnAV-100's
sorted ids; the format reads its own annotation files and video files, :class:`~ecma.importers.spec.ImportFormat`; with ``shard=(i, n)`` only those
with :func:`ecma.data.datasets.shard_of` ``== i``, the hash extraction uses) whose files are all good goes into
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


from ecma import registry
from ecma.data.failures import failures_path_for, write_failures
from ecma.data.names import shard_of
from ecma.data.shards import FeatureShard, now_iso
from ecma.errors import EcmaError
from ecma.importers.spec import ImportFormat
from ecma.io import atomic_path
from ecma.locks import hold_output
from ecma.progress import Progress

@dataclass
class ImportReport:
    imported: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (filename, stage, reason)
    failures_path: Optional[Path] = None
    manifest: dict = field(default_factory=dict)


def annotated_videos(
    annotation_csvs: Sequence[str | os.PathLike], shard: Optional[tuple[int, int]] = None, fmt: Optional[ImportFormat] = None
) -> list[str]:
    """The videos the annotation files name (LLP split csvs unless ``fmt`` reads others), each once, in the
    format's order; only shard i of n where given."""
    if not annotation_csvs:
        raise EcmaError("no annotation files given")
    if shard is not None:
        i, n = shard
        if n < 1 or not 0 <= i < n:
            raise EcmaError(f"shard {i}/{n} does not exist (0 <= I < N)")
    names = (fmt or registry.feature_format("valor")).annotated_names(annotation_csvs)
    return [f for f in names if shard is None or shard_of(f, shard[1]) == shard[0]]


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
    encoders_from=None,
    progress: bool = True,
) -> ImportReport:
    """Import the published features of the annotated videos (shard i of n where given) into ``output``.

    ``names`` (the workflow's use) gives the videos directly instead of the annotation files.
    ``encoders_from`` (format valor only): an ExtractConfig naming the encoders and weights files that
    computed the features; the shard then carries the identity a ``valor`` extraction with it has.

    ``output`` is replaced atomically; ``OUTPUT.failures.tsv`` lists the videos left out (header only when
    none). Every video failing is an :class:`EcmaError` (and no shard is written).
    """
    fmt = registry.feature_format(format_name)
    fingerprint = fmt.fingerprint(encoders_from)
    root = fmt.check_root(Path(root))
    output = Path(output)
    names = list(dict.fromkeys(names)) if names is not None else annotated_videos(annotation_csvs, shard, fmt)
    with hold_output(output, "ecma import"):  # one writer per shard (ecma.locks)
        return _import(fmt, fingerprint, root, annotation_csvs, output, names, progress)


def _import(fmt: ImportFormat, fingerprint: dict, root: Path, annotation_csvs: Sequence[str | os.PathLike],
            output: Path, names: list[str], progress: bool) -> ImportReport:
    read_video = fmt.video_reader(root, annotation_csvs)
    report = ImportReport(failures_path=failures_path_for(output))
    files: dict[str, int] = {}
    bar = Progress(len(names), f"import {output.name}", "video", bar=progress)
    try:
        with atomic_path(output) as tmp:
            with FeatureShard(tmp, "w") as out:
                out.fingerprint = fingerprint
                stamp = now_iso()
                for name in names:
                    video = read_video(name)
                    if video.problems:
                        report.failed.append((name, video.problems[0][0], "; ".join(p[1] for p in video.problems)))
                    else:
                        arrays = video.arrays
                        out.write(name, arrays["audio"], arrays["visual"], visual_3d=arrays.get("visual_3d"),
                                  frames_per_segment=fmt.frames_per_segment, dtype="float32", extracted_at=stamp,
                                  **video.attrs)
                        files.update(video.files)
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
