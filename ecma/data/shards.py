"""HDF5 feature shards: the contract between extraction and training.

One shard is one ``.h5`` file holding many videos:

- a group per video, named by its annotation ``filename`` (e.g. ``BjCEufrlXm4_20_30``), with datasets
  ``audio`` (T, Da) and ``visual`` (T * k, Dv), float16 or float32, and attributes ``n_segments`` (T) and
  ``extracted_at`` (ISO 8601 time of extraction or import); extraction may add flags such as
  ``audio_missing``;
- optional per video (added for published frame-level features, e.g. HAN's; absent in older shards):
  the attribute ``frames_per_segment`` = k, the number of consecutive ``visual`` rows per segment (absent
  means 1, so ``visual`` is (T, Dv)), and the dataset ``visual_3d`` (T, D3), a second per-segment visual
  stream (R(2+1)D clip features). Every video of a split must agree on k and on having ``visual_3d``;
- videos may differ in T (untrimmed datasets such as UnAV-100: 10 s to minutes at one segment a second),
  but not in Da, Dv, D3 or k. :func:`load_features` pads them with zero segments to the longest and reports
  each video's T in ``FeatureSet.lengths``; models and losses ignore the padding through a mask;
- a file attribute ``fingerprint``: JSON describing where the numbers came from. Extracted shards describe
  the extractor (encoders, checkpoints and their sha256, segment length, sample rate, ...); imported
  shards (``ecma import``) say ``"source": "import"``, the format, its conversions and the importer's
  version, and carry a file attribute ``manifest`` (JSON: sha256 of the names and sizes of the feature
  files that went into that shard, their count and bytes; outside the fingerprint, which the shards of one
  dataset must share: a per-shard digest in it would forbid loading them together); imported VALOR shards
  carry instead the feature identity that ``extract.profile: valor`` extractions carry
  (:mod:`ecma.extract.valor.identity`), so those two may share a shard and a run. Shards with different
  fingerprints are never mixed: :func:`load_features` refuses them.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

import h5py
import numpy as np

from ecma.errors import EcmaError

FINGERPRINT_ATTR = "fingerprint"
MANIFEST_ATTR = "manifest"
FRAMES_ATTR = "frames_per_segment"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def fingerprint_diff(a: dict, b: dict) -> list[str]:
    """Keys whose values differ between two fingerprints, for error messages."""
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


class FeatureShard:
    """One shard file. Use as a context manager; ``mode`` is h5py's ('r', 'a', 'w')."""

    def __init__(self, path: str | os.PathLike, mode: str = "r"):
        self.path = Path(path)
        if mode == "r" and not self.path.is_file():
            raise EcmaError(f"{self.path}: feature shard not found")
        try:
            self._h5 = h5py.File(self.path, mode)
        except OSError as e:
            raise EcmaError(f"{self.path}: not a readable HDF5 feature shard ({e})") from None

    def __enter__(self) -> "FeatureShard":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._h5.close()

    @property
    def fingerprint(self) -> dict | None:
        raw = self._h5.attrs.get(FINGERPRINT_ATTR)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except (TypeError, ValueError):
            raise EcmaError(f"{self.path}: the fingerprint attribute is not valid JSON") from None

    @fingerprint.setter
    def fingerprint(self, value: dict) -> None:
        self._h5.attrs[FINGERPRINT_ATTR] = json.dumps(value, sort_keys=True)

    @property
    def manifest(self) -> dict | None:
        """Imported shards: what went in (sha256 of feature file names and sizes, count, bytes); else None."""
        raw = self._h5.attrs.get(MANIFEST_ATTR)
        return json.loads(raw) if raw is not None else None

    @manifest.setter
    def manifest(self, value: dict) -> None:
        self._h5.attrs[MANIFEST_ATTR] = json.dumps(value, sort_keys=True)

    def videos(self) -> list[str]:
        return list(self._h5.keys())

    def __contains__(self, name: str) -> bool:
        return name in self._h5

    def __len__(self) -> int:
        return len(self._h5)

    def attrs(self, name: str) -> dict[str, Any]:
        return {k: _plain(v) for k, v in self._h5[name].attrs.items()}

    def read(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(audio, visual) arrays of one video, as stored (visual is (T * k, Dv) for frame-level features)."""
        video = self.read_video(name)
        return video.audio, video.visual

    def read_video(self, name: str) -> "VideoFeatures":
        """Every stream of one video, as stored, with its ``frames_per_segment``."""
        if name not in self._h5:
            raise EcmaError(f"{self.path}: no video {name!r}")
        g = self._h5[name]
        try:
            audio, visual = g["audio"][()], g["visual"][()]
        except KeyError as e:
            raise EcmaError(f"{self.path}: video {name!r} lacks dataset {e}") from None
        visual_3d = g["visual_3d"][()] if "visual_3d" in g else None
        return VideoFeatures(audio, visual, visual_3d, int(g.attrs.get(FRAMES_ATTR, 1)))

    def write(
        self,
        name: str,
        audio: np.ndarray,
        visual: np.ndarray,
        *,
        dtype: str = "float16",
        extracted_at: str | None = None,
        visual_3d: np.ndarray | None = None,
        frames_per_segment: int = 1,
        **attrs: Any,
    ) -> None:
        """Write one video's features (replacing any earlier group of that name).

        ``visual`` is (T * frames_per_segment, Dv); ``visual_3d``, where given, (T, D3).
        """
        audio, visual = np.asarray(audio), np.asarray(visual)
        frames = int(frames_per_segment)
        if frames < 1 or audio.ndim != 2 or visual.ndim != 2 or audio.shape[0] * frames != visual.shape[0]:
            raise EcmaError(
                f"{self.path}: video {name!r}: audio {audio.shape} and visual {visual.shape} must be (T, Da) and "
                f"(T * {frames}, Dv) ({frames} visual rows per segment)"
            )
        if visual_3d is not None:
            visual_3d = np.asarray(visual_3d)
            if visual_3d.ndim != 2 or visual_3d.shape[0] != audio.shape[0]:
                raise EcmaError(f"{self.path}: video {name!r}: visual_3d {visual_3d.shape} must be (T, D3) with T = {audio.shape[0]}")
        if name in self._h5:
            del self._h5[name]
        g = self._h5.create_group(name)
        g.create_dataset("audio", data=audio.astype(dtype, copy=False))
        g.create_dataset("visual", data=visual.astype(dtype, copy=False))
        if visual_3d is not None:
            g.create_dataset("visual_3d", data=visual_3d.astype(dtype, copy=False))
        if frames != 1:  # absent means 1: shards written before frame-level features existed read the same
            g.attrs[FRAMES_ATTR] = frames
        g.attrs["n_segments"] = int(audio.shape[0])
        g.attrs["extracted_at"] = extracted_at or now_iso()
        for k, v in attrs.items():
            g.attrs[k] = v

    def copy_video_from(self, other: "FeatureShard", name: str) -> None:
        """Copy a video group verbatim (features and attributes, ``extracted_at`` included)."""
        if name in self._h5:
            del self._h5[name]
        other._h5.copy(other._h5[name], self._h5, name=name)

    def flush(self) -> None:
        self._h5.flush()


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


@dataclass
class VideoFeatures:
    """One video's streams as stored in a shard."""

    audio: np.ndarray  # (T, Da)
    visual: np.ndarray  # (T * frames_per_segment, Dv)
    visual_3d: np.ndarray | None  # (T, D3) or None
    frames_per_segment: int

    def sizes(self) -> tuple:
        """What every video of a split must share: the feature sizes, k, and whether there is a 3-D stream (not T)."""
        return (self.audio.shape[1:], self.visual.shape[1:], None if self.visual_3d is None else self.visual_3d.shape[1:],
                self.frames_per_segment)

    def describe(self, names: bool = True) -> str:
        """'audio (T, Da) and visual (T, Dv)' plus the optional parts; without the stream names if not ``names``."""
        a, v, v3 = ("audio ", "visual ", "visual_3d ") if names else ("", "", "")
        frames = "" if self.frames_per_segment == 1 else f" ({self.frames_per_segment} frames per segment)"
        extra = "" if self.visual_3d is None else f" and {v3}{self.visual_3d.shape}"
        return f"{a}{self.audio.shape} and {v}{self.visual.shape}{frames}{extra}"


@dataclass
class FeatureSet:
    """Features of one split in memory, rows in the order asked for."""

    filenames: list[str]
    audio: np.ndarray  # (N, T, Da) float32
    visual: np.ndarray  # (N, T * frames_per_segment, Dv) float32
    fingerprint: dict
    skipped: list[str]
    visual_3d: np.ndarray | None = None  # (N, T, D3) float32: a second visual stream (HAN's R(2+1)D), or None
    frames_per_segment: int = 1  # visual rows per segment (8 for HAN's ResNet-152 frames)
    # (N,) int64: each video's own T; segments at and beyond it are zero padding. Default: all T.
    lengths: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.lengths is None:
            self.lengths = np.full(len(self.filenames), self.audio.shape[1], dtype=np.int64)
        else:
            self.lengths = np.asarray(self.lengths, dtype=np.int64)

    @property
    def variable_length(self) -> bool:
        """Whether any video is shorter than the arrays' T (then batches need a mask)."""
        return bool(len(self.lengths)) and int(self.lengths.min()) < self.audio.shape[1]

    def __len__(self) -> int:
        return len(self.filenames)


def read_fingerprint(paths: Iterable[str | os.PathLike]) -> dict:
    """The common fingerprint of several shards; shards that disagree are an error naming both."""
    first: tuple[Path, dict] | None = None
    for p in paths:
        with FeatureShard(p) as shard:
            fp = shard.fingerprint or {}
        if first is None:
            first = (Path(p), fp)
        elif fp != first[1]:
            keys = ", ".join(fingerprint_diff(first[1], fp))
            raise EcmaError(
                f"{p}: feature fingerprint differs from {first[0]} (in {keys}); "
                "shards from different extractor settings cannot be mixed"
            )
    if first is None:
        raise EcmaError("no feature shards given")
    return first[1]


def load_features(
    paths: Sequence[str | os.PathLike],
    filenames: Sequence[str],
    *,
    missing: str = "error",
    n_segments: int | None = None,
) -> FeatureSet:
    """Load the videos ``filenames`` from any number of shards into memory.

    ``missing``: 'error' stops with a message naming the absent videos; 'skip' warns and leaves them out.
    Every video must have the same feature sizes, (T, Da), (T * k, Dv) and, where present, (T, D3), the
    same k and finite values; a video that breaks this is an error naming it and its shard. T may differ
    between videos (where ``n_segments`` is given, every video must have that T): shorter videos are padded
    with zero segments to the longest, and ``lengths`` gives each video's own T.
    """
    if missing not in ("error", "skip"):
        raise ValueError(f"missing must be 'error' or 'skip', not {missing!r}")
    fingerprint = read_fingerprint(paths)
    wanted = {f: i for i, f in enumerate(filenames)}
    found: dict[str, VideoFeatures] = {}
    shard_of: dict[str, Path] = {}
    for p in paths:
        with FeatureShard(p) as shard:
            for name in shard.videos():
                if name not in wanted or name in found:
                    continue
                video = shard.read_video(name)
                a, v, v3, k = video.audio, video.visual, video.visual_3d, video.frames_per_segment
                if (a.ndim != 2 or v.ndim != 2 or k < 1 or a.shape[0] * k != v.shape[0]
                        or (v3 is not None and (v3.ndim != 2 or v3.shape[0] != a.shape[0]))):
                    raise EcmaError(f"{p}: video {name!r} has {video.describe()}; expected (T, D) per segment")
                if n_segments is not None and a.shape[0] != n_segments:
                    raise EcmaError(f"{p}: video {name!r} has {a.shape[0]} segments; the dataset has {n_segments}")
                if not all(np.isfinite(x).all() for x in (a, v, v3) if x is not None):
                    raise EcmaError(f"{p}: video {name!r} has NaN or infinite features")
                found[name] = video
                shard_of[name] = Path(p)
    _check_same_sizes(found, shard_of)
    absent = [f for f in filenames if f not in found]
    if absent and missing == "error":
        shown = ", ".join(absent[:10]) + (f" and {len(absent) - 10} more" if len(absent) > 10 else "")
        raise EcmaError(f"{len(absent)} of {len(filenames)} videos have no features in the given shards: {shown}")
    if absent:
        warnings.warn(f"skipping {len(absent)} of {len(filenames)} videos without features: {', '.join(absent[:10])}")
    kept = [f for f in filenames if f in found]
    if not kept:
        raise EcmaError("none of the requested videos has features in the given shards")
    k, has_3d = found[kept[0]].frames_per_segment, found[kept[0]].visual_3d is not None
    lengths = np.array([found[f].audio.shape[0] for f in kept], dtype=np.int64)
    audio, visual = _stack_float32(found, kept, "audio"), _stack_float32(found, kept, "visual")
    visual_3d = _stack_float32(found, kept, "visual_3d") if has_3d else None
    return FeatureSet(kept, audio, visual, fingerprint, absent, visual_3d, k, lengths)


def _check_same_sizes(found: dict[str, VideoFeatures], shard_of: dict[str, Path]) -> None:
    """Every video must share the feature sizes (:meth:`VideoFeatures.sizes`). The sizes most videos have are
    the norm, and the error names a video that differs and its shard: comparing with the first video read
    would blame every other video when that first one is the odd one. A tie names one of each."""
    groups: dict[tuple, list[str]] = {}
    for name, video in found.items():
        groups.setdefault(video.sizes(), []).append(name)
    if len(groups) <= 1:
        return
    by_count = sorted(groups.values(), key=len, reverse=True)  # stable: ties keep the order read
    usual, odd = by_count[0], by_count[1]
    (ex, bad) = usual[0], odd[0]
    if len(usual) == len(odd):
        raise EcmaError(f"{shard_of[bad]}: video {bad!r} has {found[bad].describe()}, but video {ex!r} in "
                        f"{shard_of[ex]} has {found[ex].describe(names=False)}: the videos of a split must share "
                        "their feature sizes")
    n_odd = sum(len(g) for g in by_count[1:])
    others = f" ({n_odd} videos differ)" if n_odd > 1 else ""
    raise EcmaError(f"{shard_of[bad]}: video {bad!r} has {found[bad].describe()}, but {len(usual)} other videos "
                    f"(e.g. {ex!r} in {shard_of[ex]}) have {found[ex].describe(names=False)}{others}")


def _stack_float32(found: dict[str, VideoFeatures], kept: list[str], stream: str) -> np.ndarray:
    """One stream of all videos as one float32 array, shorter videos padded with zero rows to the longest;
    each video's copy is dropped once stacked, so that frame-level features (HAN's are 650 KB a video) are
    not held twice. np.zeros pages in lazily, so the padding costs only what is written."""
    first = getattr(found[kept[0]], stream)
    rows = max(getattr(found[f], stream).shape[0] for f in kept)
    out = np.zeros((len(kept), rows, *first.shape[1:]), dtype=np.float32)
    for i, f in enumerate(kept):
        x = getattr(found[f], stream)
        out[i, : len(x)] = x
        setattr(found[f], stream, None)
    return out
