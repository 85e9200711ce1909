"""HDF5 feature shards: the contract between extraction and training.

One shard is one ``.h5`` file holding many videos:

- a group per video, named by its annotation ``filename`` (e.g. ``BjCEufrlXm4_20_30``), with datasets
  ``audio`` (T, Da) and ``visual`` (T, Dv), float16 or float32, and attributes ``n_segments`` and
  ``extracted_at`` (ISO 8601 time); extraction may add flags such as ``audio_missing``;
- a file attribute ``fingerprint``: JSON describing the extractor (encoders, checkpoints and their
  sha256, segment length, sample rate, frames per segment, ...). Shards with different fingerprints
  are never mixed: :func:`load_features` refuses them.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

import h5py
import numpy as np

from ecma.errors import EcmaError

FINGERPRINT_ATTR = "fingerprint"


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

    def videos(self) -> list[str]:
        return list(self._h5.keys())

    def __contains__(self, name: str) -> bool:
        return name in self._h5

    def __len__(self) -> int:
        return len(self._h5)

    def attrs(self, name: str) -> dict[str, Any]:
        return {k: _plain(v) for k, v in self._h5[name].attrs.items()}

    def read(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(audio, visual) arrays of one video, as stored."""
        if name not in self._h5:
            raise EcmaError(f"{self.path}: no video {name!r}")
        g = self._h5[name]
        try:
            return g["audio"][()], g["visual"][()]
        except KeyError as e:
            raise EcmaError(f"{self.path}: video {name!r} lacks dataset {e}") from None

    def write(
        self,
        name: str,
        audio: np.ndarray,
        visual: np.ndarray,
        *,
        dtype: str = "float16",
        extracted_at: str | None = None,
        **attrs: Any,
    ) -> None:
        """Write one video's features (replacing any earlier group of that name)."""
        audio, visual = np.asarray(audio), np.asarray(visual)
        if audio.ndim != 2 or visual.ndim != 2 or audio.shape[0] != visual.shape[0]:
            raise EcmaError(
                f"{self.path}: video {name!r}: audio {audio.shape} and visual {visual.shape} "
                "must be (T, Da) and (T, Dv) with the same T"
            )
        if name in self._h5:
            del self._h5[name]
        g = self._h5.create_group(name)
        g.create_dataset("audio", data=audio.astype(dtype))
        g.create_dataset("visual", data=visual.astype(dtype))
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
class FeatureSet:
    """Features of one split in memory, rows in the order asked for."""

    filenames: list[str]
    audio: np.ndarray  # (N, T, Da) float32
    visual: np.ndarray  # (N, T, Dv) float32
    fingerprint: dict
    skipped: list[str]

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
    Every video must have the same (T, Da) and (T, Dv) shapes (T = ``n_segments`` where given) and finite
    values; a video that breaks this is an error naming it and its shard.
    """
    if missing not in ("error", "skip"):
        raise ValueError(f"missing must be 'error' or 'skip', not {missing!r}")
    fingerprint = read_fingerprint(paths)
    wanted = {f: i for i, f in enumerate(filenames)}
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    shapes: tuple[tuple[int, ...], tuple[int, ...], Path] | None = None
    for p in paths:
        with FeatureShard(p) as shard:
            for name in shard.videos():
                if name not in wanted or name in found:
                    continue
                a, v = shard.read(name)
                if a.ndim != 2 or v.ndim != 2 or a.shape[0] != v.shape[0]:
                    raise EcmaError(f"{p}: video {name!r} has audio {a.shape} and visual {v.shape}; expected (T, D) each")
                if n_segments is not None and a.shape[0] != n_segments:
                    raise EcmaError(f"{p}: video {name!r} has {a.shape[0]} segments; the dataset has {n_segments}")
                if shapes is None:
                    shapes = (a.shape, v.shape, Path(p))
                elif (a.shape, v.shape) != shapes[:2]:
                    raise EcmaError(
                        f"{p}: video {name!r} has audio {a.shape} and visual {v.shape}, "
                        f"but videos in {shapes[2]} have {shapes[0]} and {shapes[1]}"
                    )
                if not (np.isfinite(a).all() and np.isfinite(v).all()):
                    raise EcmaError(f"{p}: video {name!r} has NaN or infinite features")
                found[name] = (a, v)
    absent = [f for f in filenames if f not in found]
    if absent and missing == "error":
        shown = ", ".join(absent[:10]) + (f" and {len(absent) - 10} more" if len(absent) > 10 else "")
        raise EcmaError(f"{len(absent)} of {len(filenames)} videos have no features in the given shards: {shown}")
    if absent:
        warnings.warn(f"skipping {len(absent)} of {len(filenames)} videos without features: {', '.join(absent[:10])}")
    kept = [f for f in filenames if f in found]
    if not kept:
        raise EcmaError("none of the requested videos has features in the given shards")
    audio = np.stack([found[f][0] for f in kept]).astype(np.float32)
    visual = np.stack([found[f][1] for f in kept]).astype(np.float32)
    return FeatureSet(kept, audio, visual, fingerprint, absent)
