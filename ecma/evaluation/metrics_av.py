"""The AVVP F1 scores for a dataset whose events are all audio-visual (UnAV-100): protocol ``unav100-av``.

UnAV-100 annotates only events that are heard and seen at once, so its truth for the audio and for the
visual stream is the same set of AV events, and audio-only or visual-only sounds/sights are simply not
annotated. What can be scored is therefore the audio-visual result alone: ``segment.audio_visual`` and
``event.audio_visual`` (the "AV (Seg)" / "AV (Evn)" columns CoLeaF and E-CMANet report for UnAV-100).
Audio, visual, Type@AV and Event@AV would count correct single-modality detections as errors, so they are
not returned.

The rules are the LLP benchmark's (:mod:`ecma.evaluation.metrics`): the AV prediction of a segment is
``audio >= segment_threshold and visual >= segment_threshold`` for a class whose video-level probability is
``>= video_threshold``; segment level counts TP/FP/FN over segments; event level matches maximal runs at
IoU >= 0.5; per video, F1 is averaged over the classes with any TP/FP/FN (a video with none scores 1.0), and
the result is 100 x the mean over videos. Videos of different lengths come padded with their ``lengths``:
segments at or past a video's length are neither predicted nor true.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ecma.evaluation.metrics import _class_f1, binarize, event_counts, segment_counts, video_f1

PROTOCOL = "unav100-av"


def valid_segments(lengths: Optional[np.ndarray], n: int, t: int) -> np.ndarray:
    """(N, 1, T) bool: True for the segments inside each video (all of them without ``lengths``)."""
    if lengths is None:
        return np.ones((n, 1, t), dtype=bool)
    lengths = np.asarray(lengths)
    if lengths.shape != (n,) or (lengths < 0).any() or (lengths > t).any():
        raise ValueError(f"lengths must be (N,) = ({n},) with 0 <= length <= T = {t}, got {lengths!r}")
    return (np.arange(t)[None, :] < lengths[:, None])[:, None, :]


def score_av_only(
    video_prob: np.ndarray,
    audio_prob: np.ndarray,
    visual_prob: np.ndarray,
    gt_av: np.ndarray,
    *,
    lengths: Optional[np.ndarray] = None,
    video_threshold: float = 0.5,
    segment_threshold: float = 0.5,
    classes: Optional[Sequence[str]] = None,
) -> dict:
    """Segment- and event-level AV F1 of N videos (percent).

    Shapes: ``video_prob`` (N, C); ``audio_prob``/``visual_prob`` (N, T, C); ``gt_av`` (N, C, T) 0/1;
    ``lengths`` (N,) real segments per video (padding past them is ignored). Returns
    ``{"protocol": "unav100-av", "segment": {"audio_visual": F}, "event": {"audio_visual": F},
    "per_class": {level: {"audio_visual": {class: F or None}}}, "num_videos": N}``.
    """
    video_prob, audio_prob, visual_prob, gt_av = (np.asarray(x) for x in (video_prob, audio_prob, visual_prob, gt_av))
    if video_prob.ndim != 2 or video_prob.shape[0] == 0:
        raise ValueError(f"video_prob must be (N, C) with N >= 1, got shape {video_prob.shape}")
    n, c = video_prob.shape
    if audio_prob.ndim != 3 or audio_prob.shape[0] != n or audio_prob.shape[2] != c or visual_prob.shape != audio_prob.shape:
        raise ValueError(f"audio_prob and visual_prob must be (N, T, C) = ({n}, T, {c}), got {audio_prob.shape}, {visual_prob.shape}")
    t = audio_prob.shape[1]
    if gt_av.shape != (n, c, t):
        raise ValueError(f"gt_av must be (N, C, T) = ({n}, {c}, {t}), got {gt_av.shape}")
    if gt_av.size and not np.isin(gt_av, (0, 1)).all():
        raise ValueError("gt_av must hold only 0 and 1")
    classes = [str(i) for i in range(c)] if classes is None else list(classes)
    if len(classes) != c:
        raise ValueError(f"{len(classes)} class names for {c} classes")

    thresholds = dict(video_threshold=video_threshold, segment_threshold=segment_threshold)
    pred = binarize(video_prob, audio_prob, **thresholds) & binarize(video_prob, visual_prob, **thresholds)
    return score_av_predictions(pred, gt_av, lengths=lengths, classes=classes)


def score_av_predictions(pred_av: np.ndarray, gt_av: np.ndarray, *, lengths: Optional[np.ndarray] = None,
                         classes: Optional[Sequence[str]] = None) -> dict:
    """:func:`score_av_only` of AV predictions already binarised ((N, C, T) bool, by any protocol's gating)."""
    pred_av, gt_av = np.asarray(pred_av, dtype=bool), np.asarray(gt_av)
    n, c, t = pred_av.shape
    if gt_av.shape != (n, c, t):
        raise ValueError(f"gt_av must be (N, C, T) = ({n}, {c}, {t}), got {gt_av.shape}")
    classes = [str(i) for i in range(c)] if classes is None else list(classes)
    inside = valid_segments(lengths, n, t)
    pred = pred_av & inside
    truth = gt_av.astype(bool) & inside
    out = {"protocol": PROTOCOL, "segment": {}, "event": {}, "per_class": {}, "num_videos": int(n)}
    for level, counts in (("segment", segment_counts), ("event", event_counts)):
        k = counts(pred, truth)
        out[level]["audio_visual"] = float(100.0 * np.mean(video_f1(*k)))
        out["per_class"][level] = {"audio_visual": _class_f1(*k, classes)}
    return out
