"""The score of predicting nothing: every probability 0, scored against the split's truth.

It is the floor a table should be read against: videos in which a modality has no event score 100 for it
(all true negatives), so "nothing" is far from 0 on LLP-like data.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ecma.data.annotation_sets import Annotations, LlpAnnotations
from ecma.errors import EcmaError
from ecma.evaluation.metrics import score


def nothing_predicted(
    split_csv: str | os.PathLike,
    eval_audio_csv: str | os.PathLike,
    eval_visual_csv: str | os.PathLike,
    *,
    classes: Sequence[str],
    n_segments: int = 10,
) -> dict:
    """metrics.json-like dict (segment, event, per_class, num_videos, split) of all-zero predictions."""
    annotations = LlpAnnotations({str(split_csv): split_csv}, eval_audio_csv, eval_visual_csv, classes=tuple(classes))
    return annotated_nothing_predicted(annotations, str(split_csv), n_segments=n_segments)


def annotated_nothing_predicted(annotations: Annotations, split: str, *, n_segments: int = 10) -> dict:
    """:func:`nothing_predicted` for any annotation source; AV-only ones (UnAV-100) are scored as
    :func:`ecma.evaluation.evaluate.evaluate_annotated` scores them (videos of their own lengths)."""
    names = annotations.split(split).filenames
    if not names:
        raise EcmaError(f"the {split} split lists no videos")
    lengths = annotations.lengths(split, names)
    t = n_segments if lengths is None else int(lengths.max())
    n, c = len(names), len(annotations.classes)
    gt_a, gt_v = annotations.truth(split, names, t)
    zeros = (np.zeros((n, c)), np.zeros((n, t, c)), np.zeros((n, t, c)))
    if annotations.av_only:
        from ecma.evaluation.metrics_av import score_av_only

        result = score_av_only(*zeros, gt_a, lengths=lengths, classes=annotations.classes)
    else:
        result = score(*zeros, gt_a, gt_v, classes=annotations.classes)
    result["split"] = split
    result["predicted"] = "nothing (all probabilities 0)"
    return result
