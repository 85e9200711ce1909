"""The predictions file: what ``ecma predict`` writes and ``ecma evaluate`` scores.

HDF5 with datasets ``filename`` (N strings), ``classes`` (C strings), ``video_prob`` (N, C),
``audio_prob`` (N, T, C), ``visual_prob`` (N, T, C) segment-level, and optionally ``a_prob``/``v_prob`` (N, C)
modality-level (what CoLeaF's evaluation protocol gates with); probabilities in [0, 1]. Where videos differ
in length, ``lengths`` (N,) int64 gives each one's real segments (T is then the longest; segments beyond a
video's length are padding and are not scored); absent, every video has all T (older files read the same).
Any model's predictions in this format can be scored, not only ours.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import h5py
import numpy as np

from ecma.errors import EcmaError
from ecma.io import atomic_path


@dataclass
class Predictions:
    filenames: list[str]
    classes: list[str]
    video_prob: np.ndarray  # (N, C)
    audio_prob: np.ndarray  # (N, T, C)
    visual_prob: np.ndarray  # (N, T, C)
    provenance: dict = field(default_factory=dict)
    a_prob: Optional[np.ndarray] = None  # (N, C) modality-level; needed by eval.protocol coleaf
    v_prob: Optional[np.ndarray] = None  # (N, C)
    lengths: Optional[np.ndarray] = None  # (N,) real segments per video where they differ; None: all T

    def _present(self) -> tuple[str, ...]:
        return ("video_prob", "audio_prob", "visual_prob") + tuple(n for n in ("a_prob", "v_prob") if getattr(self, n) is not None)

    def validate(self, source: str = "predictions") -> None:
        n, c = len(self.filenames), len(self.classes)
        if self.video_prob.shape != (n, c):
            raise EcmaError(f"{source}: video_prob has shape {self.video_prob.shape}, expected ({n}, {c})")
        for name in ("audio_prob", "visual_prob"):
            arr = getattr(self, name)
            if arr.ndim != 3 or arr.shape[0] != n or arr.shape[2] != c:
                raise EcmaError(f"{source}: {name} has shape {arr.shape}, expected ({n}, T, {c})")
        for name in ("a_prob", "v_prob"):
            arr = getattr(self, name)
            if arr is not None and arr.shape != (n, c):
                raise EcmaError(f"{source}: {name} has shape {arr.shape}, expected ({n}, {c})")
        if self.audio_prob.shape != self.visual_prob.shape:
            raise EcmaError(f"{source}: audio_prob {self.audio_prob.shape} and visual_prob {self.visual_prob.shape} differ")
        if self.lengths is not None:
            t = self.audio_prob.shape[1]
            if self.lengths.shape != (n,) or (n and (self.lengths.min() < 1 or self.lengths.max() > t)):
                raise EcmaError(f"{source}: lengths must be ({n},) with values in [1, {t}], got shape {self.lengths.shape}")
        for name in self._present():
            arr = getattr(self, name)
            if arr.size and not (np.isfinite(arr).all() and arr.min() >= 0.0 and arr.max() <= 1.0):
                raise EcmaError(f"{source}: {name} holds values outside [0, 1] (or NaN); expected probabilities")
        if len(set(self.filenames)) != n:
            raise EcmaError(f"{source}: some filenames occur twice")


def write_predictions(path: str | os.PathLike, preds: Predictions) -> None:
    preds.validate(str(path))
    str_dtype = h5py.string_dtype()
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("filename", data=np.array(preds.filenames, dtype=object), dtype=str_dtype)
            f.create_dataset("classes", data=np.array(preds.classes, dtype=object), dtype=str_dtype)
            for name in preds._present():
                f.create_dataset(name, data=np.asarray(getattr(preds, name), dtype=np.float32))
            if preds.lengths is not None:
                f.create_dataset("lengths", data=np.asarray(preds.lengths, dtype=np.int64))
            f.attrs["provenance"] = json.dumps(preds.provenance, sort_keys=True)


def read_predictions(path: str | os.PathLike) -> Predictions:
    path = Path(path)
    if not path.is_file():
        raise EcmaError(f"{path}: predictions file not found")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("filename", "classes", "video_prob", "audio_prob", "visual_prob") if k not in f]
            if missing:
                raise EcmaError(f"{path}: predictions file lacks dataset(s) {', '.join(missing)}")
            preds = Predictions(
                filenames=[s.decode() if isinstance(s, bytes) else str(s) for s in f["filename"][()]],
                classes=[s.decode() if isinstance(s, bytes) else str(s) for s in f["classes"][()]],
                video_prob=np.asarray(f["video_prob"][()], dtype=np.float32),
                audio_prob=np.asarray(f["audio_prob"][()], dtype=np.float32),
                visual_prob=np.asarray(f["visual_prob"][()], dtype=np.float32),
                provenance=json.loads(f.attrs.get("provenance", "{}")),
                a_prob=np.asarray(f["a_prob"][()], dtype=np.float32) if "a_prob" in f else None,
                v_prob=np.asarray(f["v_prob"][()], dtype=np.float32) if "v_prob" in f else None,
                lengths=np.asarray(f["lengths"][()], dtype=np.int64) if "lengths" in f else None,
            )
    except OSError as e:
        raise EcmaError(f"{path}: not a readable HDF5 predictions file ({e})") from None
    preds.validate(str(path))
    return preds
