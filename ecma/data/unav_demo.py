"""The UnAV-100-format demo dataset: published-style features and an annotation JSON, no video, deterministic.

``FOLDER/av_features/<id>_rgb.npy``, ``<id>_flow.npy`` (n, 1024) and ``<id>_vggish.npy`` (n or n - 1, 128)
float32 on UnAV-100's grid (stride 8 frames, 24-frame windows, 25 fps: n = (frames - 24) // 8 + 1), and
``FOLDER/unav100_annotations.json`` in UnAV-100's layout (subsets train / validation / test), as
:mod:`ecma.importers.unav100` reads them. Videos last 10 s to 2 min (fractional), with one to three planted
audio-visual events of one or two classes, 1 to 20 s long with fractional onsets.

Learnable on purpose: features are Gaussian noise, and a feature whose window centre lies inside an event
of class c gets ``SIGNAL`` times class c's fixed unit direction added, in rgb, flow and vggish alike (the
events are audio-visual). Eight classes with label_ids spread over 0..99: few enough that 60 training videos
hold every class several times (100 classes would leave most with one example or none, and the class list
comes from the data anyway), and gapped ids exercise the class order by label_id.

Ids are 11 characters like YouTube's: ``unav`` + split (``tr``, ``va``, ``te``) + a 5-digit index. Every
video is drawn from its own random stream (seed, split, index).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecma.errors import EcmaError
from ecma.io import atomic_path

UNAV_DEMO_CLASSES: dict[int, str] = {  # label_id -> name
    3: "dog barking", 11: "church bell ringing", 24: "playing piano", 38: "car passing by",
    52: "people clapping", 67: "helicopter", 81: "baby crying", 95: "playing violin",
}
SPLITS = {"train": ("tr", "train"), "val": ("va", "validation"), "test": ("te", "test")}  # ours -> (id part, file's)
FPS, STRIDE, WINDOW = 25, 8, 24
WIDTHS = {"rgb": 1024, "flow": 1024, "vggish": 128}
SIGNAL = 4.0  # along the class direction, against unit-variance noise per dimension
MIN_DURATION, MAX_DURATION = 10.0, 120.0
FEATURES_FOLDER = "av_features"  # under the output folder
ANNOTATION_FILE = "unav100_annotations.json"


@dataclass(frozen=True)
class UnavDemoVideo:
    video_id: str
    split: str  # ours: train, val, test
    duration: float
    events: tuple[tuple[float, float, int], ...]  # (onset s, offset s, label_id)


@dataclass(frozen=True)
class UnavDemo:
    root: Path
    features: Path
    annotations: Path
    videos: list[UnavDemoVideo]


def grid_length(duration: float) -> int:
    """Features the authors' extractor gives a video: one per 8 frames over 24-frame windows."""
    frames = int(np.floor(duration * FPS + 1e-6))
    return max(1, (frames - WINDOW) // STRIDE + 1)


def _rng(seed: int, split: str, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, list(SPLITS).index(split), index, stream])


def plan_unav_video(split: str, index: int, seed: int, min_duration: float = MIN_DURATION,
                    max_duration: float = MAX_DURATION) -> UnavDemoVideo:
    """One video's duration and events, before any file exists."""
    rng = _rng(seed, split, index, 0)
    duration = round(float(rng.uniform(min_duration, max_duration)), 2)
    ids = list(UNAV_DEMO_CLASSES)
    classes = rng.choice(ids, size=int(rng.integers(1, 3)), replace=False)
    events = []
    for _ in range(int(rng.integers(1, 4))):
        length = round(float(rng.uniform(1.0, min(20.0, duration / 2))), 2)
        onset = round(float(rng.uniform(0.0, duration - length)), 2)
        events.append((onset, round(onset + length, 2), int(rng.choice(classes))))
    return UnavDemoVideo(f"unav{SPLITS[split][0]}{index:05d}", split, duration, tuple(sorted(events)))


def class_directions(seed: int) -> dict[str, np.ndarray]:
    """kind -> (len(UNAV_DEMO_CLASSES), width) unit rows, one per class in label_id order."""
    rng = np.random.default_rng([seed, 7919])
    out = {}
    for kind, width in WIDTHS.items():
        d = rng.standard_normal((len(UNAV_DEMO_CLASSES), width))
        out[kind] = d / np.linalg.norm(d, axis=1, keepdims=True)
    return out


def render_features(video: UnavDemoVideo, seed: int, directions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """kind -> (n, width) float32: noise plus the class direction where a window centre is inside an event."""
    rng = _rng(seed, video.split, int(video.video_id[-5:]), 1)
    n = grid_length(video.duration)
    lengths = {"rgb": n, "flow": n, "vggish": max(1, n - int(rng.integers(0, 2)))}  # audio may be one shorter
    row_of = {label_id: k for k, label_id in enumerate(UNAV_DEMO_CLASSES)}
    out = {}
    for kind, width in WIDTHS.items():
        x = rng.standard_normal((lengths[kind], width))
        centres = (STRIDE * np.arange(lengths[kind]) + WINDOW / 2) / FPS
        for onset, offset, label_id in video.events:
            inside = (centres >= onset) & (centres < offset)
            x[inside] += SIGNAL * directions[kind][row_of[label_id]]
        out[kind] = x.astype(np.float32)
    return out


def annotation_json(videos: list[UnavDemoVideo]) -> dict:
    return {"database": {
        v.video_id: {
            "subset": SPLITS[v.split][1], "duration": v.duration, "fps": FPS,
            "annotations": [{"segment": [on, off], "label": UNAV_DEMO_CLASSES[c], "label_id": c}
                            for on, off, c in v.events],
        } for v in videos
    }}


def make_unav_demo(
    out_dir: str | os.PathLike,
    *,
    n_train: int = 60,
    n_val: int = 20,
    n_test: int = 20,
    seed: int = 0,
    min_duration: float = MIN_DURATION,
    max_duration: float = MAX_DURATION,
) -> UnavDemo:
    """Write ``out_dir/av_features/`` and ``out_dir/unav100_annotations.json``; returns the plan."""
    counts = {"train": n_train, "val": n_val, "test": n_test}
    for name, value in (*counts.items(), ("seed", seed)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise EcmaError(f"UnAV demo dataset: {name} must be a whole number >= 0, got {value!r}")
    if min(counts.values()) < 1 or max(counts.values()) > 99999:
        raise EcmaError(f"UnAV demo dataset: 1 to 99999 videos per split, got {counts}")
    if not 1.0 <= min_duration <= max_duration:
        raise EcmaError(f"UnAV demo dataset: durations must satisfy 1 <= min <= max, got {min_duration}, {max_duration}")
    root = Path(out_dir)
    features = root / FEATURES_FOLDER
    try:
        features.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise EcmaError(f"{root}: cannot create the UnAV demo's av_features folder here (a file is in the way)") from None
    videos = [plan_unav_video(split, i, seed, min_duration, max_duration) for split in SPLITS for i in range(counts[split])]
    directions = class_directions(seed)
    for video in videos:
        for kind, x in render_features(video, seed, directions).items():
            with atomic_path(features / f"{video.video_id}_{kind}.npy") as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, x)
    annotations = root / ANNOTATION_FILE
    with atomic_path(annotations) as tmp:
        tmp.write_text(json.dumps(annotation_json(videos), indent=1))
    return UnavDemo(root, features, annotations, videos)
