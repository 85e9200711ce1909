"""Evaluation protocols: how probabilities become predictions, and which score selects a checkpoint.

``benchmark`` (the default, comparable across papers): HAN's evaluation, :func:`ecma.evaluation.metrics.score`:
a segment is on where its probability >= segment_threshold and the video-level probability >= video_threshold.

``coleaf``: CoLeaF's published evaluation (its main.py eval()), on the model's inference output (for the
CoLeaF backbone the fused passes, f P(with cross-attention) + (1 - f) P(without)):
  audio on at (t, c)  where audio_prob_tc >= s and a_prob_c >= th_a   (s = 0.25, th_a = 0.52)
  visual on at (t, c) where visual_prob_tc >= s and v_prob_c >= th_v  (th_v = 0.52)
gated by the modality-level probabilities, not the video-level one; then the benchmark's F1s.

Both also report, under ``modality_only``, CoLeaF's audible-only and visible-only metrics: audio predictions
A & ~V against audio truth GA & ~GV, visual V & ~A against GV & ~GA, and audio-visual A & V against
GA & GV (as CoLeaF computes them, its audio-visual term is the ordinary one).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ecma.config import EvalConfig
from ecma.data.batching import mask_beyond_lengths
from ecma.evaluation.metrics import _level, binarize, check_lengths, default_classes, event_counts, segment_counts

SELECT_KEYS = ("audio", "visual", "audio_visual", "type_av", "event_av")


def coleaf_binarize(modality_prob: np.ndarray, prob: np.ndarray, *, modality_threshold: float, segment_threshold: float) -> np.ndarray:
    """(N, T, C) segment probabilities -> (N, C, T) bool, gated by (N, C) modality-level probabilities."""
    return binarize(modality_prob, prob, video_threshold=modality_threshold, segment_threshold=segment_threshold)


def score_predictions(pred_a: np.ndarray, pred_v: np.ndarray, gt_audio: np.ndarray, gt_visual: np.ndarray,
                      classes: Sequence[str] | None = None, lengths: np.ndarray | None = None) -> dict:
    """The benchmark's F1s of binary (N, C, T) predictions, plus CoLeaF's audible-only/visible-only ones;
    ``lengths`` (N,): segments at or beyond a video's length are neither predicted nor true."""
    n, c, t = pred_a.shape
    classes = default_classes(classes, c)
    check_lengths(lengths, n, t)
    pred_a, pred_v = mask_beyond_lengths(pred_a, lengths, 2), mask_beyond_lengths(pred_v, lengths, 2)
    ga = mask_beyond_lengths(np.asarray(gt_audio).astype(bool), lengths, 2)
    gv = mask_beyond_lengths(np.asarray(gt_visual).astype(bool), lengths, 2)
    args = (pred_a, pred_v, pred_a & pred_v, ga, gv, ga & gv, classes)
    seg, seg_class = _level(segment_counts, *args)
    ev, ev_class = _level(event_counts, *args)
    only = (pred_a & ~pred_v, pred_v & ~pred_a, pred_a & pred_v, ga & ~gv, gv & ~ga, ga & gv, classes)
    return {
        "segment": seg,
        "event": ev,
        "per_class": {"segment": seg_class, "event": ev_class},
        "num_videos": int(pred_a.shape[0]),
        "modality_only": {"segment": _level(segment_counts, *only)[0], "event": _level(event_counts, *only)[0]},
    }


def binarize_outputs(video_prob, a_prob, v_prob, audio_prob, visual_prob, cfg: EvalConfig) -> tuple[np.ndarray, np.ndarray]:
    """(N, C, T) audio and visual predictions of the configured protocol; a_prob/v_prob (N, C) may be None
    for the benchmark protocol."""
    if cfg.protocol == "coleaf":
        if a_prob is None or v_prob is None:
            raise ValueError("the coleaf protocol needs the modality-level probabilities a_prob and v_prob")
        s = cfg.coleaf_segment_threshold
        return (coleaf_binarize(a_prob, audio_prob, modality_threshold=cfg.coleaf_audio_threshold, segment_threshold=s),
                coleaf_binarize(v_prob, visual_prob, modality_threshold=cfg.coleaf_visual_threshold, segment_threshold=s))
    th = dict(video_threshold=cfg.video_threshold, segment_threshold=cfg.segment_threshold)
    return binarize(video_prob, audio_prob, **th), binarize(video_prob, visual_prob, **th)


def score_outputs(out, gt_audio: np.ndarray, gt_visual: np.ndarray, cfg: EvalConfig, classes: Sequence[str] | None = None,
                  lengths: np.ndarray | None = None) -> dict:
    """Scores of a model's split outputs (:class:`ecma.evaluation.inference.SplitOutputs` or predictions) under
    cfg.protocol; ``lengths`` (N,) where videos differ in length."""
    pred_a, pred_v = binarize_outputs(out.video_prob, getattr(out, "a_prob", None), getattr(out, "v_prob", None),
                                      out.audio_prob, out.visual_prob, cfg)
    result = score_predictions(pred_a, pred_v, gt_audio, gt_visual, classes, lengths)
    result["protocol"] = cfg.protocol
    return result


def selection_score(metrics: dict, select: str) -> float:
    """The validation score model.pt is chosen by: segment Type@AV, segment AV F1 (audio_visual), or (average) the mean of the ten segment-
    and event-level metrics. CoLeaF selects by that average over its audible-only/visible-only metrics (its
    eval() returns those), so under the coleaf protocol the average is taken over ``modality_only``."""
    if select == "type_av":
        return float(metrics["segment"]["type_av"])
    if select == "audio_visual":  # AV-only datasets (UnAV-100): the one score their truth supports
        return float(metrics["segment"]["audio_visual"])
    if select == "average":
        source = metrics["modality_only"] if metrics.get("protocol") == "coleaf" else metrics
        return float(np.mean([source[level][k] for level in ("segment", "event") for k in SELECT_KEYS]))
    raise ValueError(f"unknown selection {select!r} (type_av, audio_visual, average)")
