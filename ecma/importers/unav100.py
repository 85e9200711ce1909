"""UnAV-100's published features (Geng et al., CVPR 2023; github.com/ttgeng233/UnAV, "av_features"), resampled
to our segments.

One folder: ``<id>_rgb.npy`` and ``<id>_flow.npy`` (T, 1024) I3D, concatenated to the 2048-d visual stream,
and ``<id>_vggish.npy`` (T', 128) VGGish audio; one file set per video of the annotation JSON
(:mod:`ecma.data.unav100`). As the authors' loader (``libs/datasets/unav100.py``) reads them: the features lie on
a grid of stride 8 frames over windows of 24 frames at 25 fps (``feat_stride`` 8, ``num_frames`` 24,
``default_fps`` 25 in ``libs/core/config.py``), so feature i's window centre is (8 i + 12) / 25 s (they map
event times to the grid by ``(t * fps - 0.5 * num_frames) / feat_stride``); rgb and flow are stacked side
by side (they must have the same T); audio and visual are cut to the shorter of the two.

Resampling to segments of ``SEGMENT_SECONDS`` (the model's grid, LLP's one second): the video has
``ceil(duration / L)`` segments (:func:`ecma.data.segments.n_segments`, the same count the truth uses); segment
s is the mean of the grid features whose window centre lies in [s L, (s + 1) L); a segment with none (the
tail of a video whose features end early, or a grid coarser than L) takes the feature whose centre is
nearest to the middle of its part of the video. Features centred past the last segment are dropped. Each
video thus has its own T; the shard stores ``duration`` (seconds) per video.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ecma import registry
from ecma.data.segments import n_segments
from ecma.data.unav100 import UnavVideo, read_unav100
from ecma.errors import EcmaError
from ecma.importers.npy import BadFeatureFile, read_feature_file
from ecma.importers.spec import IMPORTER_VERSION, LoadedVideo, refuse_encoders

FPS, STRIDE_FRAMES, WINDOW_FRAMES = 25, 8, 24
SEGMENT_SECONDS = 1.0
FILES = (("rgb", 1024), ("flow", 1024), ("vggish", 128))  # <id>_<kind>.npy, (T, width)
RULE = (f"ceil(duration / {SEGMENT_SECONDS:g} s) segments; each the mean of the {STRIDE_FRAMES}-frame-stride "
        f"features whose {WINDOW_FRAMES}-frame window centre ((8 i + 12) / {FPS} s) lies in it, else the "
        "feature centred nearest its middle; rgb and flow concatenated; audio and visual cut to the shorter first")


def grid_centres(n: int) -> np.ndarray:
    """(n,) seconds: the window centre of each published feature."""
    return (STRIDE_FRAMES * np.arange(n) + WINDOW_FRAMES / 2) / FPS


def resample_to_segments(features: np.ndarray, duration: float, segment_seconds: float = SEGMENT_SECONDS) -> np.ndarray:
    """(n, D) grid features -> (ceil(duration / L), D) float32 segment features (see the module's rule)."""
    n_seg = n_segments(duration, segment_seconds)
    centres = grid_centres(len(features))
    bins = np.floor(centres / segment_seconds + 1e-9).astype(np.int64)
    keep = bins < n_seg
    sums = np.zeros((n_seg, features.shape[1]), dtype=np.float64)
    np.add.at(sums, bins[keep], features[keep].astype(np.float64))
    counts = np.bincount(bins[keep], minlength=n_seg)
    out = sums / np.maximum(counts, 1)[:, None]
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        starts = empty * segment_seconds
        middles = (starts + np.minimum(starts + segment_seconds, duration)) / 2
        nearest = np.abs(centres[None, :] - middles[:, None]).argmin(axis=1)  # first on a tie
        out[empty] = features[nearest]
    return out.astype(np.float32)


@dataclass(frozen=True)
class UnavFormat:
    name: str = "unav100"
    frames_per_segment: int = 1
    segment_seconds: float = SEGMENT_SECONDS

    def fingerprint(self, encoders=None) -> dict:
        refuse_encoders(self.name, encoders)
        return {
            "source": "import",
            "format": self.name,
            "importer_version": IMPORTER_VERSION,
            "streams": {
                "audio": {"files": "<id>_vggish.npy", "published_shape": ["T", 128], "features": "VGGish (UnAV-100)"},
                "visual": {"files": "<id>_rgb.npy, <id>_flow.npy", "published_shape": ["T", 2048],
                           "features": "I3D rgb and flow, concatenated (UnAV-100)"},
            },
            "grid": {"fps": FPS, "stride_frames": STRIDE_FRAMES, "window_frames": WINDOW_FRAMES},
            "segment_seconds": self.segment_seconds,
            "n_segments": "per video",
            "resampling": RULE,
            "frames_per_segment": 1,
            "dtype": "float32",
        }

    def check_root(self, root: Path) -> Path:
        root = Path(root)
        if not root.is_dir():
            raise EcmaError(f"{root}: feature folder of format {self.name!r} not found")
        return root

    def _annotations(self, annotation_files: Sequence[str | os.PathLike]):
        if len(annotation_files) != 1:
            raise EcmaError(f"format {self.name!r} reads one annotation file (unav100_annotations.json), "
                            f"got {len(annotation_files)}")
        return read_unav100(annotation_files[0])

    def feature_files(self, root: Path, names: Sequence[str]) -> dict[str, list[Path]]:
        """name -> its ``<id>_rgb.npy``, ``<id>_flow.npy`` and ``<id>_vggish.npy``, for the names that have all three."""
        listed = {p.name for p in Path(root).iterdir()}
        return {n: [Path(root) / f"{n}_{kind}.npy" for kind, _ in FILES] for n in names
                if all(f"{n}_{kind}.npy" in listed for kind, _ in FILES)}

    def annotated_names(self, annotation_files: Sequence[str | os.PathLike]) -> list[str]:
        """Every video of the file (all subsets), in sorted id order."""
        return sorted(self._annotations(annotation_files).videos)

    def video_reader(self, root: Path, annotation_files: Sequence[str | os.PathLike]) -> Callable[[str], LoadedVideo]:
        videos = self._annotations(annotation_files).videos

        def read(name: str) -> LoadedVideo:
            video = LoadedVideo()
            entry: UnavVideo | None = videos.get(name)
            if entry is None:
                video.problems.append(("annotations", f"{name}: not in the annotation file (its duration is needed)"))
                return video
            found = {}
            for kind, width in FILES:
                rel = f"{name}_{kind}.npy"
                try:
                    found[kind], video.files[rel] = read_feature_file(root / rel, (None, width))
                except BadFeatureFile as e:
                    video.problems.append((kind, f"{rel}: {e}"))
            if video.problems:
                return video
            if len(found["rgb"]) != len(found["flow"]):
                video.problems.append(("flow", f"{name}_rgb.npy has {len(found['rgb'])} rows, {name}_flow.npy "
                                               f"{len(found['flow'])}: they are concatenated, so they must agree"))
                return video
            n = min(len(found["rgb"]), len(found["vggish"]))  # the authors' loader cuts both to the shorter
            visual = np.concatenate([found["rgb"][:n], found["flow"][:n]], axis=1)
            video.arrays["visual"] = resample_to_segments(visual, entry.duration, self.segment_seconds)
            video.arrays["audio"] = resample_to_segments(found["vggish"][:n], entry.duration, self.segment_seconds)
            video.attrs["duration"] = entry.duration
            return video

        return read


UNAV100 = UnavFormat()

registry.register_feature_format(UNAV100)
