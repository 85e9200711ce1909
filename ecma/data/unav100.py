"""Reading UnAV-100's annotation file (Geng et al., CVPR 2023; github.com/ttgeng233/UnAV).

One JSON file: ``{"database": {VIDEO_ID: {"subset": "train" | "validation" | "test", "duration": seconds,
"fps": 25, "annotations": [{"segment": [onset, offset], "label": NAME, "label_id": INT}, ...]}}}``.
Every event is audio-visual (heard and seen at once); times are fractional seconds.

Our split names are ``train``, ``val`` and ``test`` (``validation`` becomes ``val``). Videos of a subset are in
sorted id order, so the order never depends on the JSON's key order. The class list comes from the data:
the names sorted by ``label_id`` (ids may have gaps). A video with no annotations is kept, with no label
(all-zero weak label, no truth): it is a true negative for every class, and the authors' loader keeps such
videos too (``segments = None``); their detection evaluation counts predictions there as false positives.

Every problem is a one-line :class:`~ecma.errors.EcmaError` naming the file and the video.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ecma.data.segments import events_to_segments, n_segments
from ecma.errors import EcmaError

SUBSETS = {"train": "train", "validation": "val", "test": "test"}  # the file's name -> ours
DEFAULT_FPS = 25  # the authors' config fixes default_fps = 25 whatever the file says


@dataclass(frozen=True)
class UnavEvent:
    onset: float  # seconds
    offset: float  # seconds, >= onset
    label: str


@dataclass(frozen=True)
class UnavVideo:
    video_id: str
    split: str  # train, val or test
    duration: float  # seconds
    events: tuple[UnavEvent, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        """The weak, video-level label: every class with an event, each once, in event order."""
        return tuple(dict.fromkeys(e.label for e in self.events))


@dataclass(frozen=True)
class UnavSplit:
    """The videos of one split in sorted id order, with the dataset's classes."""

    name: str
    classes: tuple[str, ...]
    videos: tuple[UnavVideo, ...]

    def __len__(self) -> int:
        return len(self.videos)

    @property
    def filenames(self) -> list[str]:
        return [v.video_id for v in self.videos]

    @property
    def durations(self) -> np.ndarray:
        return np.array([v.duration for v in self.videos], dtype=np.float64)

    def label_matrix(self) -> np.ndarray:
        """(N, C) float32 multi-hot weak labels in the order of ``classes``."""
        index = {c: i for i, c in enumerate(self.classes)}
        y = np.zeros((len(self.videos), len(self.classes)), dtype=np.float32)
        for n, video in enumerate(self.videos):
            for name in video.labels:
                y[n, index[name]] = 1.0
        return y

    def lengths(self, segment_seconds: float = 1.0) -> np.ndarray:
        """(N,) segments per video: ceil(duration / segment_seconds) (:func:`ecma.data.segments.n_segments`)."""
        return np.array([n_segments(v.duration, segment_seconds) for v in self.videos], dtype=np.int64)

    def segment_truth(self, segment_seconds: float = 1.0, rule: str = "half") -> tuple[np.ndarray, np.ndarray]:
        """((N, C, T_max) uint8 truth padded with 0, (N,) lengths): the events on the segment grid."""
        index = {c: i for i, c in enumerate(self.classes)}
        lengths = self.lengths(segment_seconds)
        truth = np.zeros((len(self.videos), len(self.classes), int(lengths.max(initial=0))), dtype=np.uint8)
        for n, video in enumerate(self.videos):
            events = [(index[e.label], e.onset, e.offset) for e in video.events]
            truth[n, :, : lengths[n]] = events_to_segments(
                events, len(self.classes), int(lengths[n]), segment_seconds=segment_seconds,
                duration=video.duration, rule=rule)
        return truth, lengths

    def events(self) -> list[tuple[str, int, float, float]]:
        """Every event as (video id, class index, onset s, offset s), as annotated (not clipped: the authors'
        detection evaluation takes the file's times as they are)."""
        index = {c: i for i, c in enumerate(self.classes)}
        return [(v.video_id, index[e.label], e.onset, e.offset) for v in self.videos for e in v.events]


@dataclass(frozen=True)
class UnavAnnotations:
    path: str
    classes: tuple[str, ...]  # names in label_id order
    label_ids: tuple[int, ...]  # the file's label_id of each class
    videos: dict[str, UnavVideo]

    def split(self, name: str) -> UnavSplit:
        if name not in SUBSETS.values():
            raise EcmaError(f"{self.path}: no split {name!r} (the splits are {', '.join(SUBSETS.values())})")
        videos = tuple(self.videos[k] for k in sorted(self.videos) if self.videos[k].split == name)
        return UnavSplit(name, self.classes, videos)


def _number(path, vid: str, what: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise EcmaError(f"{path}: video {vid!r}: {what} must be a finite number, got {value!r}")
    return float(value)


def _event(path, vid: str, k: int, raw) -> tuple[float, float, str, int]:
    if not isinstance(raw, dict) or not {"segment", "label", "label_id"} <= set(raw):
        raise EcmaError(f"{path}: video {vid!r}: annotation {k} needs 'segment', 'label' and 'label_id'")
    seg = raw["segment"]
    if not isinstance(seg, (list, tuple)) or len(seg) != 2:
        raise EcmaError(f"{path}: video {vid!r}: annotation {k}: segment must be [onset, offset], got {seg!r}")
    onset = _number(path, vid, f"annotation {k} onset", seg[0])
    offset = _number(path, vid, f"annotation {k} offset", seg[1])
    if onset < 0 or offset < 0:
        raise EcmaError(f"{path}: video {vid!r}: annotation {k}: negative time in segment [{onset}, {offset}]")
    if offset < onset:
        raise EcmaError(f"{path}: video {vid!r}: annotation {k}: offset {offset} is before onset {onset}")
    label, label_id = raw["label"], raw["label_id"]
    if not isinstance(label, str) or not label.strip():
        raise EcmaError(f"{path}: video {vid!r}: annotation {k}: label must be a non-empty string, got {label!r}")
    if isinstance(label_id, bool) or not isinstance(label_id, int):
        raise EcmaError(f"{path}: video {vid!r}: annotation {k}: label_id of {label!r} must be an integer, got {label_id!r}")
    return onset, offset, label, label_id


def read_unav100(path: str | os.PathLike, classes: Optional[Sequence[str]] = None) -> UnavAnnotations:
    """Read the annotation file. ``classes`` (e.g. a trained model's) pins the class list: a label outside
    it is an error; without it the classes are those of the file, in ``label_id`` order.

    A label_id used with two names (or a name with two ids) is an error naming the video and the label.
    """
    path = Path(path)
    if not path.is_file():
        raise EcmaError(f"{path}: UnAV-100 annotation file not found")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise EcmaError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except UnicodeDecodeError as e:
        raise EcmaError(f"{path}: not a text file ({e.reason})") from None
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict):
        raise EcmaError(f"{path}: expected an object with a 'database' object of videos")

    name_of: dict[int, str] = {}
    id_of: dict[str, int] = {}
    videos: dict[str, UnavVideo] = {}
    for vid, entry in database.items():
        if not vid:
            raise EcmaError(f"{path}: a video has an empty id")
        if not isinstance(entry, dict):
            raise EcmaError(f"{path}: video {vid!r}: expected an object, got {type(entry).__name__}")
        for key in ("subset", "duration"):
            if key not in entry:
                raise EcmaError(f"{path}: video {vid!r} lacks {key!r}")
        subset = entry["subset"]
        if not isinstance(subset, str) or subset.lower() not in SUBSETS:
            raise EcmaError(f"{path}: video {vid!r}: subset {subset!r} is not one of {', '.join(SUBSETS)}")
        duration = _number(path, vid, "duration", entry["duration"])
        if duration <= 0:
            raise EcmaError(f"{path}: video {vid!r}: duration must be positive, got {duration}")
        raw_events = entry.get("annotations", [])
        if not isinstance(raw_events, list):
            raise EcmaError(f"{path}: video {vid!r}: 'annotations' must be a list")
        events = []
        for k, raw in enumerate(raw_events):
            onset, offset, label, label_id = _event(path, vid, k, raw)
            if name_of.setdefault(label_id, label) != label:
                raise EcmaError(f"{path}: video {vid!r}: label {label!r} has label_id {label_id}, "
                                f"which other videos give to {name_of[label_id]!r}")
            if id_of.setdefault(label, label_id) != label_id:
                raise EcmaError(f"{path}: video {vid!r}: label {label!r} has label_id {label_id}, "
                                f"other videos {id_of[label]}")
            if classes is not None and label not in classes:
                raise EcmaError(f"{path}: video {vid!r}: label {label!r} is not one of the {len(classes)} known classes")
            events.append(UnavEvent(onset, offset, label))
        videos[vid] = UnavVideo(vid, SUBSETS[subset.lower()], duration, tuple(events))

    if classes is None:
        ids = tuple(sorted(name_of))
        names = tuple(name_of[i] for i in ids)
    else:
        names = tuple(classes)
        ids = tuple(id_of.get(c, -1) for c in names)  # -1: a class the file never uses
    return UnavAnnotations(str(path), names, ids, videos)
