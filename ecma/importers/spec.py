"""What a published feature format is: its streams (folder, shape, conversion), its fingerprint, which videos
its annotation files name and how one video's files are read.

The import driver (:mod:`ecma.importers.run`) sees a format only through :class:`ImportFormat`: LLP's
per-stream folders of ``<YouTube id>.npy`` (:class:`FeatureFormat`: VALOR's, HAN's) and UnAV-100's one folder
of ``<id>_rgb/_flow/_vggish.npy`` with a JSON file (:mod:`ecma.importers.unav100`) both implement it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Sequence

import numpy as np

from ecma.errors import EcmaError
from ecma.importers.npy import BadFeatureFile, read_feature_file

IMPORTER_VERSION = 1  # bump when the numbers an import writes change: shards of another version never mix


@dataclass(frozen=True)
class Stream:
    role: str  # the shard dataset it becomes: 'audio', 'visual' or 'visual_3d'
    folder: str  # under the root; files are <YouTube id>.npy
    shape: tuple[int, int]  # as published
    what: str  # the features, for the fingerprint
    convert: Optional[Callable[[np.ndarray], np.ndarray]] = None  # published array -> stored array
    conversion: Optional[str] = None  # what ``convert`` does, for the fingerprint


@dataclass
class LoadedVideo:
    """One video's stored arrays by role, the files read ({relative path: size}), [(stage, reason)] problems
    (the video fails when there is any) and extra per-video shard attributes."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)


class ImportFormat(Protocol):
    name: str
    frames_per_segment: int

    def fingerprint(self, encoders=None) -> dict:
        """The shards' fingerprint; ``encoders`` (an ExtractConfig naming the encoders and their weights
        files) only for a format whose features an extraction profile also computes (valor)."""
        ...

    def check_root(self, root: Path) -> Path: ...

    def annotated_names(self, annotation_files: Sequence[str | os.PathLike]) -> list[str]: ...

    def video_reader(self, root: Path, annotation_files: Sequence[str | os.PathLike]) -> Callable[[str], LoadedVideo]: ...

    def feature_files(self, root: Path, names: Sequence[str]) -> dict[str, list[Path]]:
        """name -> its files, for the names whose files all exist (each folder listed once)."""
        ...


def refuse_encoders(format_name: str, encoders) -> None:
    if encoders is not None:
        raise EcmaError(f"format {format_name!r}: its features have no extraction profile, so naming the encoders "
                        "that computed them (encoders_from) means nothing (valor only)")


@dataclass(frozen=True)
class FeatureFormat:
    name: str
    streams: tuple[Stream, ...]
    frames_per_segment: int = 1  # visual rows per segment
    n_segments: int = 10
    # The feature identity that an extraction profile shares (valor: ecma.extract.valor.identity), from the
    # encoders that computed the published features (None: the publisher's own); None: import-only features.
    identity: Optional[Callable[[Any], dict]] = None

    def fingerprint(self, encoders=None) -> dict:
        """The shard fingerprint: the shared feature identity where the format has one, else an import-only
        one that never mixes with extracted shards or other formats."""
        if self.identity is not None:
            return self.identity(encoders)
        refuse_encoders(self.name, encoders)
        streams = {}
        for s in self.streams:
            d = {"folder": s.folder, "published_shape": list(s.shape), "features": s.what}
            if s.conversion:
                d["conversion"] = s.conversion
            streams[s.role] = d
        return {
            "source": "import",
            "format": self.name,
            "importer_version": IMPORTER_VERSION,
            "streams": streams,
            "n_segments": self.n_segments,
            "frames_per_segment": self.frames_per_segment,
            "dtype": "float32",
        }

    def check_root(self, root: Path) -> Path:
        """The root folder, after checking that it holds every sub-folder of the format."""
        root = Path(root)
        if not root.is_dir():
            raise EcmaError(f"{root}: feature root of format {self.name!r} not found")
        for s in self.streams:
            if not (root / s.folder).is_dir():
                raise EcmaError(f"{root / s.folder}: folder of the {s.role} features of format {self.name!r} not found")
        return root

    def annotated_names(self, annotation_files: Sequence[str | os.PathLike]) -> list[str]:
        """The filenames of LLP split csvs, each once, in file order."""
        from ecma.data.annotations import read_split
        from ecma.data.classes import LLP_CLASSES

        return list(dict.fromkeys(f for csv in annotation_files for f in read_split(csv, LLP_CLASSES).filenames))

    def feature_files(self, root: Path, names: Sequence[str]) -> dict[str, list[Path]]:
        """name -> ``<folder>/<YouTube id>.npy`` of every stream, for the names that have them all."""
        from ecma.data.names import youtube_id

        listed = {s.folder: {p.name for p in (root / s.folder).iterdir()} for s in self.streams}
        found: dict[str, list[Path]] = {}
        for name in names:
            stem = f"{youtube_id(name)}.npy"
            if all(stem in listed[s.folder] for s in self.streams):
                found[name] = [root / s.folder / stem for s in self.streams]
        return found

    def video_reader(self, root: Path, annotation_files: Sequence[str | os.PathLike] = ()) -> Callable[[str], LoadedVideo]:
        """name -> its streams, read from ``<folder>/<YouTube id>.npy`` and converted."""
        from ecma.data.names import youtube_id

        def read(name: str) -> LoadedVideo:
            video = LoadedVideo()
            vid = youtube_id(name)
            for s in self.streams:
                rel = f"{s.folder}/{vid}.npy"
                try:
                    array, size = read_feature_file(root / rel, s.shape)
                except BadFeatureFile as e:
                    video.problems.append((s.folder, f"{rel}: {e}"))
                    continue
                video.arrays[s.role] = s.convert(array) if s.convert else array
                video.files[rel] = size
            return video

        return read
