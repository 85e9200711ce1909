"""Score a predictions file on one split of the benchmark, from the files alone.

Reads the predictions (:func:`ecma.evaluation.predictions.read_predictions`), the split and the two eval csvs
(:mod:`ecma.data.annotations`), builds the truth for exactly the split's videos in split order (as the
benchmark's evaluation loop does) and hands everything to :func:`ecma.evaluation.metrics.score`.
"""

from __future__ import annotations

import dataclasses
import os
from types import SimpleNamespace
from typing import Sequence

import numpy as np

from ecma.config import EvalConfig
from ecma.data.annotation_sets import Annotations
from ecma.data.annotations import read_eval, read_split, segment_truth
from ecma.errors import EcmaError
from ecma.evaluation.predictions import Predictions, read_predictions
from ecma.evaluation.protocols import score_outputs


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
    eval_config: EvalConfig | None = None,
) -> dict:
    """The :func:`~ecma.evaluation.metrics.score` dict of the split's videos, plus ``split`` and ``thresholds``.

    The classes are those stored in the predictions file; a csv naming another class is an error.
    Every video of the split must have predictions (videos predicted beyond the split are ignored), unless
    ``missing`` is 'skip': then videos without predictions (e.g. that failed to decode) are left out and listed
    under ``skipped``, and the result is no longer the benchmark's number for the whole split.
    ``eval_config``: the protocol (``eval.protocol``; coleaf needs a_prob/v_prob in the predictions) and
    CoLeaF's thresholds; the benchmark's thresholds are always the arguments. CoLeaF's audible-only and
    visible-only metrics are under ``modality_only`` (:mod:`ecma.evaluation.protocols`).
    Truth has as many one-second segments as the predictions (10 on LLP, the only T the benchmark knows).
    """
    preds = read_predictions(predictions_path)
    classes = preds.classes
    split = _with_classes_of(predictions_path, read_split, split_csv, classes)
    if len(split) == 0:
        raise EcmaError(f"{split_csv}: the split lists no videos")
    rows_a = _with_classes_of(predictions_path, read_eval, eval_audio_csv, classes)
    rows_v = _with_classes_of(predictions_path, read_eval, eval_visual_csv, classes)
    n_segments = preds.audio_prob.shape[1]
    lengths = _own_lengths(preds, split.filenames)
    gt_audio = segment_truth(rows_a, split.filenames, classes, n_segments, lengths)
    gt_visual = segment_truth(rows_v, split.filenames, classes, n_segments, lengths)
    result = evaluate_predictions(preds, split.filenames, gt_audio, gt_visual, video_threshold=video_threshold,
                                  segment_threshold=segment_threshold, missing=missing, eval_config=eval_config,
                                  source=f"{predictions_path}", split=str(split_csv))
    return result


def _own_lengths(preds: Predictions, filenames: Sequence[str]) -> list[int] | None:
    """Each video's own T where the predictions record lengths (videos of any length), else None (all T):
    where its clip ends, for naming truth rows past it."""
    if preds.lengths is None:
        return None
    own = dict(zip(preds.filenames, preds.lengths))
    return [int(own.get(f, preds.audio_prob.shape[1])) for f in filenames]


def _predicted_videos(preds: Predictions, filenames: Sequence[str], missing: str, source: str, split: str):
    """(positions in ``filenames``, rows of ``preds``, absent names) of the split's videos that have predictions;
    absent ones are an error unless ``missing`` is 'skip' (and some remain)."""
    index = {name: i for i, name in enumerate(preds.filenames)}
    absent = [name for name in filenames if name not in index]
    if absent and (missing != "skip" or len(absent) == len(filenames)):
        shown = ", ".join(absent[:5]) + (f", ... ({len(absent)} in all)" if len(absent) > 5 else "")
        raise EcmaError(f"{source}: no predictions for {len(absent)} video(s) of split {split}: {shown}")
    kept = [i for i, name in enumerate(filenames) if name in index]
    return kept, [index[filenames[i]] for i in kept], absent


def _protocol_config(preds: Predictions, eval_config: EvalConfig | None, video_threshold: float, segment_threshold: float,
                     source: str) -> EvalConfig:
    """The evaluation settings with the benchmark's thresholds given; the coleaf protocol needs a_prob/v_prob."""
    cfg = dataclasses.replace(eval_config or EvalConfig(), video_threshold=video_threshold, segment_threshold=segment_threshold)
    if cfg.protocol == "coleaf" and (preds.a_prob is None or preds.v_prob is None):
        raise EcmaError(f"{source}: the coleaf protocol needs modality-level a_prob/v_prob, which these predictions lack")
    return cfg


def _thresholds(cfg: EvalConfig) -> dict:
    """The thresholds the protocol used, for metrics.json."""
    if cfg.protocol == "benchmark":
        return {"video": float(cfg.video_threshold), "segment": float(cfg.segment_threshold)}
    return {"audio": cfg.coleaf_audio_threshold, "visual": cfg.coleaf_visual_threshold, "segment": cfg.coleaf_segment_threshold}


def evaluate_predictions(
    preds: Predictions,
    filenames: Sequence[str],
    gt_audio: np.ndarray,
    gt_visual: np.ndarray,
    *,
    video_threshold: float = 0.5,
    segment_threshold: float = 0.5,
    missing: str = "error",
    eval_config: EvalConfig | None = None,
    source: str = "predictions",
    split: str = "",
) -> dict:
    """Score ``preds`` on the videos ``filenames`` whose truth is ``gt_audio``/``gt_visual`` (N, C, T) with
    T = the predictions' T, in ``filenames`` order, classes those of ``preds``: the part of
    :func:`evaluate_files` any annotation format can use. ``missing``, ``eval_config`` and the thresholds as
    there; the predictions' ``lengths`` (variable-length videos) keep their padding out of the counts."""
    kept, order, absent = _predicted_videos(preds, filenames, missing, source, split)
    cfg = _protocol_config(preds, eval_config, video_threshold, segment_threshold, source)

    def rows(x):  # the split's videos, in split order
        return None if x is None else x[order]

    selected = SimpleNamespace(video_prob=rows(preds.video_prob), audio_prob=rows(preds.audio_prob), visual_prob=rows(preds.visual_prob),
                               a_prob=rows(preds.a_prob), v_prob=rows(preds.v_prob))
    result = score_outputs(selected, np.asarray(gt_audio)[kept], np.asarray(gt_visual)[kept], cfg, preds.classes,
                           lengths=rows(preds.lengths))
    result["split"] = split  # what the videos are (the split's csv, or the caller's name for them)
    result["skipped"] = absent
    result["thresholds"] = _thresholds(cfg)
    return result


def evaluate_annotated(
    predictions_path: str | os.PathLike,
    annotations: Annotations,
    split: str,
    *,
    video_threshold: float = 0.5,
    segment_threshold: float = 0.5,
    missing: str = "error",
    eval_config: EvalConfig | None = None,
) -> dict:
    """Score the predictions of split ``split`` of any annotation source.

    LLP-like sources (audio and visual truth apart): :func:`evaluate_predictions`, the benchmark's dict.
    AV-only sources (UnAV-100): the ``unav100-av`` F1 scores (:func:`ecma.evaluation.metrics_av.score_av_only`)
    and, under ``map``, UnAV-100's detection mAP of the events our segments form
    (:func:`ecma.evaluation.metrics_map.score_av_map`).
    """
    preds = read_predictions(predictions_path)
    if tuple(preds.classes) != tuple(annotations.classes):
        raise EcmaError(f"{predictions_path}: predicted classes ({len(preds.classes)}) are not the annotations' "
                        f"({len(annotations.classes)}); the model was trained on another dataset")
    filenames = annotations.split(split).filenames
    if not filenames:
        raise EcmaError(f"the {split} split lists no videos")
    gt_a, gt_v = annotations.truth(split, filenames, preds.audio_prob.shape[1], _own_lengths(preds, filenames))
    if not annotations.av_only:
        return evaluate_predictions(preds, filenames, gt_a, gt_v, video_threshold=video_threshold,
                                    segment_threshold=segment_threshold, missing=missing, eval_config=eval_config,
                                    source=str(predictions_path), split=split)
    from ecma.evaluation.metrics_av import score_av_predictions
    from ecma.evaluation.metrics_map import score_av_map
    from ecma.evaluation.protocols import binarize_outputs

    kept, order, absent = _predicted_videos(preds, filenames, missing, str(predictions_path), split)
    names = [filenames[i] for i in kept]
    lengths = None if preds.lengths is None else preds.lengths[order]
    cfg = _protocol_config(preds, eval_config, video_threshold, segment_threshold, str(predictions_path))

    def rows(x):
        return None if x is None else x[order]

    # the gating of eval.protocol (the video-level probability, or CoLeaF's modality-level ones), AV = A and V
    pred_a, pred_v = binarize_outputs(rows(preds.video_prob), rows(preds.a_prob), rows(preds.v_prob),
                                      rows(preds.audio_prob), rows(preds.visual_prob), cfg)
    pred_av = pred_a & pred_v
    result = score_av_predictions(pred_av, gt_a[kept], lengths=lengths, classes=preds.classes)
    durations = annotations.durations(split, names)
    scored = set(names)
    truth = [e for e in annotations.events(split) if e[0] in scored]
    result["map"] = score_av_map(names, rows(preds.video_prob), rows(preds.audio_prob), rows(preds.visual_prob), truth,
                                 lengths=lengths, durations=durations, classes=preds.classes, pred=pred_av)
    result["gating"] = cfg.protocol
    result["split"] = split
    result["skipped"] = absent
    result["thresholds"] = _thresholds(cfg)
    return result
