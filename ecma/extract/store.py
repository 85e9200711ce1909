"""Crash-safe incremental writing of one shard.

New features never go into the shard file directly (HDF5 files can be corrupted by a kill mid-write).
Each batch is written to its own part file ``SHARD.h5.parts/part-*.h5`` (a temporary name renamed when
complete); parts are merged into a new copy of the shard that then replaces it in one rename, at the end
of a run and whenever ``merge_every`` videos have piled up. Every video carries its source file's content
identity (``content_id``: size and hash), so a file replaced under the same name is extracted again. So a kill at any moment leaves the shard
as it was after the last merge (readable), plus complete part files holding every video finished
since; the next run on that shard merges those first and does not extract them again.
"""

from __future__ import annotations

import uuid
import warnings
from pathlib import Path
from typing import Collection, Iterable

from ecma.data.shards import FeatureShard, fingerprint_diff
from ecma.errors import EcmaError
from ecma.io import atomic_path, remove_stale_temporaries


class ShardStore:
    """The incremental shard of one extraction: which videos it holds (with their content identity), new
    features in part files, and merges that replace the shard in one rename.

    A shard of another fingerprint is replaced only when ``overwrite`` is given, and only by the first merge
    that has features to add: a run in which every video fails leaves it as it was.
    """

    def __init__(self, path: str | Path, fingerprint: dict, *, overwrite: bool = False, merge_every: int = 1024):
        self.path = Path(path)
        self.parts_dir = self.path.with_name(self.path.name + ".parts")
        self.fingerprint = fingerprint
        self.merge_every = merge_every
        self.fresh = not self.path.exists()  # True: the shard is (re)built from the parts alone
        if self.path.exists():
            try:
                with FeatureShard(self.path) as shard:
                    old = shard.fingerprint
            except EcmaError:
                if not overwrite:
                    raise
                old = None
            if old != fingerprint:
                if not overwrite:
                    keys = ", ".join(fingerprint_diff(old or {}, fingerprint)) or "fingerprint"
                    raise EcmaError(
                        f"{self.path}: holds features of different extractor settings (differing: {keys}); "
                        "pass overwrite to replace them, or extract into another shard"
                    )
                self.fresh = True
        remove_stale_temporaries(self.path)
        self._drop_stale_parts()
        self.existing: dict[str, str | None] = {}  # name -> content identity (None: not recorded)
        if self.path.exists() and not self.fresh:
            with FeatureShard(self.path) as shard:
                self.existing = {name: shard.attrs(name).get("content_id") for name in shard.videos()}
        self._unmerged = 0
        if self._parts():
            self.merge()  # what a killed run finished (updates existing)

    def _parts(self) -> list[Path]:
        return sorted(self.parts_dir.glob("part-*.h5")) if self.parts_dir.is_dir() else []

    def _drop_stale_parts(self) -> None:
        if self.parts_dir.is_dir():
            for debris in self.parts_dir.glob(".part-*.tmp"):  # a part file a kill left half-written
                debris.unlink()
        for p in self._parts():
            try:
                with FeatureShard(p) as part:
                    same = part.fingerprint == self.fingerprint
            except EcmaError:
                same = False
            if not same:
                warnings.warn(f"{p}: discarding features left by an interrupted run with other settings")
                p.unlink()

    def write_part(self, records: Iterable[tuple[str, object, object, dict]], dtype: str) -> None:
        """Write (name, audio, visual, attrs) records into a new part file, atomically."""
        records = list(records)
        if not records:
            return
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.parts_dir / f"part-{uuid.uuid4().hex}.h5") as tmp:
            with FeatureShard(tmp, "w") as part:
                part.fingerprint = self.fingerprint
                for name, audio, visual, attrs in records:
                    part.write(name, audio, visual, dtype=dtype, **attrs)
        self._unmerged += len(records)
        if self._unmerged >= self.merge_every:
            self.merge()

    def merge(self, keep: Collection[str] | None = None, drop: Collection[str] = ()) -> list[str]:
        """Fold every part into the shard with one atomic rename, then delete the parts.

        With ``keep``, videos not in it leave the shard; videos in ``drop`` leave it too (stale features of
        a file that changed and now fails). The shard is rebuilt group by group, so replaced and removed
        videos leave no dead space behind. Returns the names removed.
        """
        parts = self._parts()
        gone = (set(self.existing) - set(keep) if keep is not None else set()) | (set(self.existing) & set(drop))
        removed = sorted(gone)
        if not parts and not removed and not (self.fresh and keep is not None):
            return []
        with atomic_path(self.path) as tmp:
            with FeatureShard(tmp, "w") as shard:
                shard.fingerprint = self.fingerprint
                newer = set()
                for p in parts:
                    with FeatureShard(p) as part:
                        newer.update(part.videos())
                if not self.fresh and self.path.exists():
                    with FeatureShard(self.path) as old:
                        for name in old.videos():
                            if name not in newer and name not in removed:
                                shard.copy_video_from(old, name)
                for p in parts:
                    with FeatureShard(p) as part:
                        for name in part.videos():
                            shard.copy_video_from(part, name)
                self.existing = {name: shard.attrs(name).get("content_id") for name in shard.videos()}
        self.fresh = False
        for p in parts:  # a kill before this only means the same videos get merged again, harmlessly
            p.unlink()
        if self.parts_dir.is_dir() and not any(self.parts_dir.iterdir()):
            self.parts_dir.rmdir()
        self._unmerged = 0
        return removed
