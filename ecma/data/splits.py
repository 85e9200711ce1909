"""A split's features and labels in memory, as training, validation and prediction use them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ecma.config import ModelConfig
from ecma.data.annotation_sets import Annotations, LlpAnnotations
from ecma.data.batching import mask_beyond_lengths
from ecma.data.shards import FeatureSet, load_features
from ecma.errors import EcmaError


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


def load_annotated_split(
    feature_paths: Sequence[str | os.PathLike],
    annotations: Annotations,
    split: str,
    *,
    with_truth: bool = False,
    missing: str = "error",
) -> SplitData:
    """The videos of ``split`` of any annotation source (LLP csvs, UnAV-100's JSON) with their weak labels
    and, ``with_truth``, their segment truth (zero past each video's length)."""
    labels_of = annotations.split(split)
    features = load_features(feature_paths, labels_of.filenames, missing=missing)
    keep = {f: i for i, f in enumerate(labels_of.filenames)}
    labels = labels_of.label_matrix(annotations.classes)[[keep[f] for f in features.filenames]]
    data = SplitData(features, labels)
    if with_truth:
        t = features.audio.shape[1]
        lengths = features.lengths if features.variable_length else None  # events end with their video
        gt_a, gt_v = annotations.truth(split, features.filenames, t, lengths)
        data.gt_audio, data.gt_visual = mask_beyond_lengths(gt_a, lengths, 2), mask_beyond_lengths(gt_v, lengths, 2)
    return data


def load_split(
    feature_paths: Sequence[str | os.PathLike],
    split_csv: str | os.PathLike,
    classes: Sequence[str],
    *,
    eval_audio_csv: str | os.PathLike | None = None,
    eval_visual_csv: str | os.PathLike | None = None,
    missing: str = "error",
) -> SplitData:
    """:func:`load_annotated_split` for one LLP-format split csv (and its eval csvs, where given)."""
    annotations = LlpAnnotations({"split": Path(split_csv)}, eval_audio_csv, eval_visual_csv, classes=tuple(classes))
    return load_annotated_split(feature_paths, annotations, "split",
                                with_truth=eval_audio_csv is not None and eval_visual_csv is not None, missing=missing)


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
