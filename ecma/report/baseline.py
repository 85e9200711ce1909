"""The score of predicting nothing: every probability 0, scored against the split's truth.

It is the floor a table should be read against: videos in which a modality has no event score 100 for it
(all true negatives), so "nothing" is far from 0 on LLP-like data.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ecma.annotations import read_eval, read_split, segment_truth
from ecma.errors import EcmaError
from ecma.metrics import score


def nothing_predicted(
    split_csv: str | os.PathLike,
    eval_audio_csv: str | os.PathLike,
    eval_visual_csv: str | os.PathLike,
    *,
    classes: Sequence[str],
    n_segments: int = 10,
) -> dict:
    """metrics.json-like dict (segment, event, per_class, num_videos, split) of all-zero predictions."""
    split = read_split(split_csv, classes)
    if len(split) == 0:
        raise EcmaError(f"{split_csv}: the split lists no videos")
    n, c = len(split), len(classes)
    result = score(
        np.zeros((n, c)),
        np.zeros((n, n_segments, c)),
        np.zeros((n, n_segments, c)),
        segment_truth(read_eval(eval_audio_csv, classes), split.filenames, classes, n_segments),
        segment_truth(read_eval(eval_visual_csv, classes), split.filenames, classes, n_segments),
        classes=classes,
    )
    result["split"] = str(split_csv)
    result["predicted"] = "nothing (all probabilities 0)"
    return result
