"""Score a predictions file on one split of the benchmark, from the files alone.

Reads the predictions (:func:`ecma.predictions.read_predictions`), the split and the two eval csvs
(:mod:`ecma.annotations`), builds the truth for exactly the split's videos in split order (as the
benchmark's evaluation loop does) and hands everything to :func:`ecma.metrics.score`.
"""

from __future__ import annotations

import os

from ecma.annotations import read_eval, read_split, segment_truth
from ecma.errors import EcmaError
from ecma.metrics import score
from ecma.predictions import read_predictions


def _with_classes_of(predictions_path, read, *args):
    """Run a csv reader; an unknown class is reported together with where the classes come from."""
    try:
        return read(*args)
    except EcmaError as e:
        if "unknown class" in str(e):
            raise EcmaError(f"{e}; the classes are those stored in {predictions_path}") from None
        raise


def evaluate_files(
    predictions_path: str | os.PathLike,
    split_csv: str | os.PathLike,
    eval_audio_csv: str | os.PathLike,
    eval_visual_csv: str | os.PathLike,
    *,
    video_threshold: float = 0.5,
    segment_threshold: float = 0.5,
    missing: str = "error",
) -> dict:
    """The :func:`~ecma.metrics.score` dict of the split's videos, plus ``split`` and ``thresholds``.

    The classes are those stored in the predictions file; a csv naming another class is an error.
    Every video of the split must have predictions (videos predicted beyond the split are ignored), unless
    ``missing`` is 'skip': then videos without predictions (e.g. that failed to decode) are left out and listed
    under ``skipped``, and the result is no longer the benchmark's number for the whole split.
    Truth has as many one-second segments as the predictions (10 on LLP, the only T the benchmark knows).
    """
    preds = read_predictions(predictions_path)
    classes = preds.classes
    split = _with_classes_of(predictions_path, read_split, split_csv, classes)
    if len(split) == 0:
        raise EcmaError(f"{split_csv}: the split lists no videos")
    rows_a = _with_classes_of(predictions_path, read_eval, eval_audio_csv, classes)
    rows_v = _with_classes_of(predictions_path, read_eval, eval_visual_csv, classes)

    index = {name: i for i, name in enumerate(preds.filenames)}
    absent = [name for name in split.filenames if name not in index]
    if absent and (missing != "skip" or len(absent) == len(split.filenames)):
        shown = ", ".join(absent[:5]) + (f", ... ({len(absent)} in all)" if len(absent) > 5 else "")
        raise EcmaError(f"{predictions_path}: no predictions for {len(absent)} video(s) of split {split_csv}: {shown}")
    filenames = [name for name in split.filenames if name in index]
    order = [index[name] for name in filenames]

    n_segments = preds.audio_prob.shape[1]
    result = score(
        preds.video_prob[order],
        preds.audio_prob[order],
        preds.visual_prob[order],
        segment_truth(rows_a, filenames, classes, n_segments),
        segment_truth(rows_v, filenames, classes, n_segments),
        video_threshold=video_threshold,
        segment_threshold=segment_threshold,
        classes=classes,
    )
    result["split"] = str(split_csv)
    result["skipped"] = absent
    result["thresholds"] = {"video": float(video_threshold), "segment": float(segment_threshold)}
    return result
