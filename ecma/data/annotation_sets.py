"""A dataset's annotations behind one interface: LLP's csv files or UnAV-100's JSON.

Training, prediction and evaluation ask the same three things of any dataset: the videos of a split and
their weak labels, the segment-level truth of a split (per modality), and the class list. LLP answers from
its split csvs and its two eval csvs (whole-second events, 10 segments, 25 classes, audio and visual truth
apart); UnAV-100 from one JSON (fractional AV events, videos of any length, classes from the file). The
rest of the package never asks which one it has, except ``av_only``: UnAV-100 annotates only events heard
and seen at once, so only its audio-visual scores mean anything (:mod:`ecma.evaluation.metrics_av`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ecma.data.annotations import SplitLabels, read_eval, read_split, segment_truth
from ecma.data.classes import LLP_CLASSES
from ecma.errors import EcmaError

SPLITS = ("train", "val", "test")


class Annotations:
    """What every annotation source answers; see :class:`LlpAnnotations` and :class:`UnavAnnotationSet`."""

    kind: str = ""
    av_only: bool = False  # only audio-visual events are annotated (UnAV-100)
    classes: tuple[str, ...] = ()

    def split(self, name: str) -> SplitLabels:
        """The split's videos in file order and their weak labels."""
        raise NotImplementedError

    def truth(self, name: str, filenames: Sequence[str], n_segments: int,
              lengths: Optional[Sequence[int]] = None) -> tuple[np.ndarray, np.ndarray]:
        """(audio, visual) (N, C, n_segments) 0/1 truth of ``filenames`` (videos of split ``name``), zero
        past each video's own length; ``lengths``: each video's T where known (features of any length), to
        name truth rows past it."""
        raise NotImplementedError

    def lengths(self, name: str, filenames: Sequence[str]) -> Optional[np.ndarray]:
        """Segments per video where the annotations fix them (UnAV-100: from the duration), else None."""
        return None

    def durations(self, name: str, filenames: Sequence[str]) -> Optional[np.ndarray]:
        """Seconds per video where the annotations know them (UnAV-100), else None."""
        return None

    def source(self, name: str) -> str:
        """Where split ``name`` is listed, for messages."""
        raise NotImplementedError

    def events(self, name: str) -> list[tuple[str, int, float, float]]:
        """The split's annotated events as (video, class index, onset s, offset s), where the source has them
        as events (UnAV-100's detection metric); LLP's are per modality and not needed there."""
        raise NotImplementedError


@dataclass
class LlpAnnotations(Annotations):
    """LLP's tab-separated files: ``splits`` maps a split name to its csv; the eval csvs hold the segment-level
    truth of every split that has one (val and test on LLP)."""

    splits: dict[str, Path]
    eval_audio: Optional[Path] = None
    eval_visual: Optional[Path] = None
    classes: tuple[str, ...] = LLP_CLASSES
    kind: str = "llp"
    _cache: dict = field(default_factory=dict, repr=False)

    def _csv(self, name: str) -> Path:
        if name not in self.splits:
            raise EcmaError(f"no {name} split given (have: {', '.join(self.splits) or 'none'})")
        return Path(self.splits[name])

    def split(self, name: str) -> SplitLabels:
        return read_split(self._csv(name), self.classes)

    def source(self, name: str) -> str:
        return str(self._csv(name))

    def truth(self, name, filenames, n_segments, lengths=None):
        if self.eval_audio is None or self.eval_visual is None:
            raise EcmaError(f"the {name} split needs segment-level truth (the eval audio and visual csvs)")
        if "rows" not in self._cache:
            self._cache["rows"] = (read_eval(self.eval_audio, self.classes), read_eval(self.eval_visual, self.classes))
        rows_a, rows_v = self._cache["rows"]
        return (segment_truth(rows_a, filenames, self.classes, n_segments, lengths),
                segment_truth(rows_v, filenames, self.classes, n_segments, lengths))


@dataclass
class UnavAnnotationSet(Annotations):
    """UnAV-100's one JSON file (:mod:`ecma.data.unav100`): every split, classes by label_id, AV events only.
    ``classes`` pins the class list (a trained model's); None takes the file's."""

    path: Path
    pinned_classes: Optional[Sequence[str]] = None
    segment_seconds: float = 1.0
    kind: str = "unav100"
    av_only: bool = True

    def __post_init__(self):
        from ecma.data.unav100 import read_unav100

        self.data = read_unav100(self.path, self.pinned_classes)
        self.classes = tuple(self.data.classes)

    def split(self, name: str) -> SplitLabels:
        s = self.data.split(name)
        return SplitLabels(str(self.path), s.filenames, [v.labels for v in s.videos])

    def source(self, name: str) -> str:
        return f"the {name} split of {self.path}"

    def _videos(self, name: str, filenames: Sequence[str]):
        s = self.data.split(name)
        by_id = {v.video_id: v for v in s.videos}
        absent = [f for f in filenames if f not in by_id]
        if absent:
            raise EcmaError(f"{self.path}: {len(absent)} video(s) are not in the {name} split: {', '.join(absent[:5])}")
        from ecma.data.unav100 import UnavSplit

        return UnavSplit(name, s.classes, tuple(by_id[f] for f in filenames))

    def truth(self, name, filenames, n_segments, lengths=None):  # lengths: the JSON's durations fix them
        sub = self._videos(name, filenames)
        gt, lengths = sub.segment_truth(self.segment_seconds)
        out = np.zeros((len(filenames), len(self.classes), n_segments), dtype=np.uint8)
        t = min(n_segments, gt.shape[2])
        out[:, :, :t] = gt[:, :, :t]
        return out, out.copy()  # AV events: the same truth for both streams

    def durations(self, name, filenames):
        return self._videos(name, filenames).durations

    def events(self, name):
        return self.data.split(name).events()

    def lengths(self, name, filenames):
        return self._videos(name, filenames).lengths(self.segment_seconds)


class SplitOverlapError(EcmaError):
    """A video listed in two splits: the one annotation error that a dataset may declare intended
    (``allow_split_overlap``), so callers can add that hint to it and to nothing else."""


def check_disjoint(annotations: Annotations, names: Sequence[str]) -> None:
    """Stop on leakage: a video in two of the splits ``names`` is a :class:`SplitOverlapError` naming it and
    where each split is listed (one csv given for two splits is not two listings). Errors in the files
    themselves are plain :class:`EcmaError`."""
    seen: dict[str, str] = {}
    for split in names:
        source = annotations.source(split)
        for f in annotations.split(split).filenames:
            if f in seen and seen[f] != source:
                raise SplitOverlapError(f"{f}: listed in {seen[f]} and in {source} (a video in two splits leaks between them)")
            seen.setdefault(f, source)


__all__ = ["Annotations", "LlpAnnotations", "UnavAnnotationSet", "SplitOverlapError", "check_disjoint", "SPLITS"]
