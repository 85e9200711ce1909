"""A split's features and labels in memory, as training, validation and prediction use them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ecma.annotations import read_eval, read_split, segment_truth
from ecma.batching import mask_beyond_lengths
from ecma.config import ModelConfig
from ecma.errors import EcmaError
from ecma.shards import FeatureSet, load_features


@dataclass
class SplitData:
    features: FeatureSet
    labels: np.ndarray  # (N, C) weak labels
    gt_audio: np.ndarray | None = None  # (N, C, T) segment truth, where eval files were given
    gt_visual: np.ndarray | None = None

    @property
    def filenames(self) -> list[str]:
        return self.features.filenames

    def __len__(self) -> int:
        return len(self.features)


def load_split(
    feature_paths: Sequence[str | os.PathLike],
    split_csv: str | os.PathLike,
    classes: Sequence[str],
    *,
    eval_audio_csv: str | os.PathLike | None = None,
    eval_visual_csv: str | os.PathLike | None = None,
    missing: str = "error",
) -> SplitData:
    split = read_split(split_csv, classes)
    features = load_features(feature_paths, split.filenames, missing=missing)
    keep = {f: i for i, f in enumerate(split.filenames)}
    labels = split.label_matrix(classes)[[keep[f] for f in features.filenames]]
    data = SplitData(features, labels)
    if eval_audio_csv is not None and eval_visual_csv is not None:
        t = features.audio.shape[1]
        lengths = features.lengths if features.variable_length else None  # events end with their video
        data.gt_audio = mask_beyond_lengths(segment_truth(read_eval(eval_audio_csv, classes), features.filenames, classes, t), lengths, 2)
        data.gt_visual = mask_beyond_lengths(segment_truth(read_eval(eval_visual_csv, classes), features.filenames, classes, t), lengths, 2)
    return data


def check_feature_dims(model: ModelConfig, features: FeatureSet, what: str) -> None:
    """Features must have the model's input sizes; ``what`` names the model or data at fault."""
    da, dv = features.audio.shape[2], features.visual.shape[2]
    if (da, dv) != (model.audio_dim, model.visual_dim):
        raise EcmaError(
            f"{what}: the features are audio {da}-d and visual {dv}-d, but the model takes "
            f"{model.audio_dim}-d and {model.visual_dim}-d (model.audio_dim/visual_dim must match the extractor)"
        )
    if features.frames_per_segment != model.visual_frames_per_segment:
        raise EcmaError(
            f"{what}: the visual features have {features.frames_per_segment} frame(s) per segment, but the model "
            f"takes {model.visual_frames_per_segment} (model.visual_frames_per_segment must match the features)"
        )
    d3 = 0 if features.visual_3d is None else features.visual_3d.shape[2]
    if d3 != model.visual_3d_dim:
        have = f"a {d3}-d 3-D visual stream" if d3 else "no 3-D visual stream"
        raise EcmaError(f"{what}: the features have {have}, but model.visual_3d_dim is {model.visual_3d_dim}")
