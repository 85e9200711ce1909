"""UnAV-100's dense-localisation metric: mean average precision of AV events at temporal IoU thresholds.

Computed as the authors' evaluation does (``libs/utils/metrics.py`` of github.com/ttgeng233/UnAV, an
adaptation of ActivityNet's ``eval_detection.py``), written here without pandas:

- Truth: the annotated events of the split, with duplicates (same class, onset and offset within 1e-3 s)
  removed. Only classes with at least one true event are scored; predictions of other classes are ignored.
- Per class and threshold: predictions sorted by decreasing score (ties: later first, as their
  ``argsort()[::-1]``); each is a TP if, among the true events of its video and class not yet matched at that
  threshold, taken by decreasing tIoU, the first has tIoU >= threshold (a true event whose tIoU is below the
  threshold stops the search: FP); else FP. Precision/recall by cumulative sums, recall over the class's true
  events; AP is VOC 2011's interpolated area (precision made monotone from the right, summed over the recall
  steps). A class without predictions has AP 0.
- mAP at each threshold is the mean over the scored classes; thresholds 0.1, 0.2, ..., 0.9 (their
  ``tiou_thresholds = np.linspace(0.1, 0.9, 9)``, ``libs/datasets/unav100.py``).
- The headline is ``average``, the mean over all nine thresholds: what their evaluator returns and prints as
  "Average mAP" (``mAP.mean()`` in ``ANETdetection.evaluate``), and what ``ecma evaluate`` prints.
  ``average_0.5_0.9``, the mean over 0.5 ... 0.9 alone, is kept beside it in metrics.json; it is not their
  average.

Our detections come from segment predictions (:func:`detections_from_segments`): every maximal run of
positive segments of a class is one event, in seconds (clipped to the video's duration), scored by the mean
of the class's probability over the run's segments.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Optional, Sequence

import numpy as np

from ecma.data.segments import segment_runs

TIOU_THRESHOLDS = tuple(round(0.1 * k, 1) for k in range(1, 10))
DUPLICATE_TOLERANCE = 1e-3

Truth = tuple[str, int, float, float]  # (video, class, onset s, offset s)
Detection = tuple[str, int, float, float, float]  # (video, class, onset s, offset s, score)


def tiou(onset: float, offset: float, onsets: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Temporal IoU of one interval with many."""
    inter = np.clip(np.minimum(offset, offsets) - np.maximum(onset, onsets), 0.0, None)
    union = (offsets - onsets) + (offset - onset) - inter
    return inter / union


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC 2011 interpolated average precision of a precision/recall curve in rank order."""
    p = np.concatenate(([0.0], precision, [0.0]))
    r = np.concatenate(([0.0], recall, [1.0]))
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.flatnonzero(r[1:] != r[:-1]) + 1
    return float(np.sum((r[steps] - r[steps - 1]) * p[steps]))


def remove_duplicates(truth: Sequence[Truth], tol: float = DUPLICATE_TOLERANCE) -> list[Truth]:
    """The events of each video without repeats of the same class and times (within ``tol``)."""
    kept: list[Truth] = []
    by_video: dict[str, list[Truth]] = defaultdict(list)
    for event in truth:
        vid, c, on, off = event
        if not any(c == k[1] and abs(on - k[2]) <= tol and abs(off - k[3]) <= tol for k in by_video[vid]):
            by_video[vid].append(event)
            kept.append(event)
    return kept


def class_average_precision(truth: Sequence[Truth], detections: Sequence[Detection], thresholds=TIOU_THRESHOLDS) -> np.ndarray:
    """(K,) AP of one class at each threshold; ``truth`` and ``detections`` are of that class only."""
    thresholds = np.asarray(thresholds, dtype=np.float64)
    ap = np.zeros(len(thresholds))
    if not detections or not truth:
        return ap
    gt_by_video: dict[str, list[int]] = defaultdict(list)
    for j, event in enumerate(truth):
        gt_by_video[event[0]].append(j)
    onsets = np.array([e[2] for e in truth], dtype=np.float64)
    offsets = np.array([e[3] for e in truth], dtype=np.float64)
    scores = np.array([d[4] for d in detections], dtype=np.float64)
    order = np.argsort(scores, kind="stable")[::-1]
    matched = np.zeros((len(thresholds), len(truth)), dtype=bool)
    tp = np.zeros((len(thresholds), len(detections)))
    for rank, i in enumerate(order):
        vid, _, on, off, _ = detections[i]
        candidates = np.array(gt_by_video.get(vid, []), dtype=np.int64)
        if candidates.size == 0:
            continue
        overlap = tiou(on, off, onsets[candidates], offsets[candidates])
        idx = np.argsort(overlap, kind="stable")[::-1]  # as their tiou_arr.argsort()[::-1]
        by_overlap, overlap = candidates[idx], overlap[idx]
        for k, thr in enumerate(thresholds):
            for j, o in zip(by_overlap, overlap):
                if o < thr:
                    break
                if matched[k, j]:
                    continue
                matched[k, j] = True
                tp[k, rank] = 1.0
                break
    tp_cum = np.cumsum(tp, axis=1)
    fp_cum = np.cumsum(1.0 - tp, axis=1)
    recall = tp_cum / len(truth)
    precision = tp_cum / (tp_cum + fp_cum)
    for k in range(len(thresholds)):
        ap[k] = interpolated_ap(precision[k], recall[k])
    return ap


def mean_average_precision(
    truth: Sequence[Truth],
    detections: Sequence[Detection],
    *,
    thresholds: Sequence[float] = TIOU_THRESHOLDS,
    classes: Optional[Sequence[str]] = None,
) -> dict:
    """mAP (percent) of ``detections`` against ``truth`` at each tIoU threshold, and their mean.

    Returns ``{"protocol": "unav100-map", "map": {"0.5": ..., ...}, "average": ..., "average_0.5_0.9": ...,
    "per_class": {class: [AP at each threshold]}, "num_classes": K}``: ``average`` is the mean over every
    threshold given (0.1 ... 0.9 by default, UnAV's average and our headline), ``average_0.5_0.9`` over those
    from 0.5; classes are those with a true event (named by ``classes[index]`` where given).
    """
    truth = remove_duplicates(truth)
    scored = sorted({e[1] for e in truth})
    gt_of: dict[int, list[Truth]] = defaultdict(list)
    det_of: dict[int, list[Detection]] = defaultdict(list)
    for e in truth:
        gt_of[e[1]].append(e)
    for d in detections:
        det_of[d[1]].append(d)
    ap = np.zeros((len(thresholds), len(scored)))
    for col, c in enumerate(scored):
        ap[:, col] = class_average_precision(gt_of[c], det_of[c], thresholds)
    per_threshold = ap.mean(axis=1) if scored else np.zeros(len(thresholds))
    name = (lambda c: classes[c]) if classes is not None else str
    return {
        "protocol": "unav100-map",
        "map": {f"{t:.1f}": float(100 * m) for t, m in zip(thresholds, per_threshold)},
        "average": float(100 * per_threshold.mean()),  # the headline: UnAV's code averages all nine thresholds
        # the mean over tIoU 0.5 ... 0.9 alone, kept beside it (not UnAV's average)
        "average_0.5_0.9": float(100 * np.mean([m for t, m in zip(thresholds, per_threshold) if t >= 0.5 - 1e-9] or [0.0])),
        "per_class": {name(c): [float(100 * x) for x in ap[:, col]] for col, c in enumerate(scored)},
        "num_classes": len(scored),
    }


def detections_from_segments(
    filenames: Sequence[str],
    pred: np.ndarray,
    prob: np.ndarray,
    *,
    lengths: Optional[np.ndarray] = None,
    durations: Optional[Sequence[float]] = None,
    segment_seconds: float = 1.0,
) -> list[Detection]:
    """Events from (N, C, T) bool segment predictions, each scored by the mean of ``prob`` (N, T, C) over its
    segments; segments at or past ``lengths[n]`` are ignored, offsets clipped to ``durations[n]``."""
    pred = np.asarray(pred, dtype=bool)
    prob = np.asarray(prob, dtype=np.float64)
    n, c, t = pred.shape
    out: list[Detection] = []
    for i, vid in enumerate(filenames):
        length = t if lengths is None else int(lengths[i])
        for k in range(c):
            for start, end in segment_runs(pred[i, k, :length]):
                offset = end * segment_seconds
                if durations is not None:
                    offset = min(offset, float(durations[i]))
                out.append((vid, k, start * segment_seconds, offset, float(prob[i, start:end, k].mean())))
    return out


def score_av_map(
    filenames: Sequence[str],
    video_prob: np.ndarray,
    audio_prob: np.ndarray,
    visual_prob: np.ndarray,
    truth: Sequence[Truth],
    *,
    lengths: Optional[np.ndarray] = None,
    durations: Optional[Sequence[float]] = None,
    video_threshold: float = 0.5,
    segment_threshold: float = 0.5,
    segment_seconds: float = 1.0,
    thresholds: Sequence[float] = TIOU_THRESHOLDS,
    classes: Optional[Sequence[str]] = None,
    pred: Optional[np.ndarray] = None,
) -> dict:
    """UnAV-100's mAP of our AV predictions: AV segments binarised as in
    :func:`ecma.evaluation.metrics_av.score_av_only` (or ``pred``, (N, C, T) bool, binarised by the caller's
    protocol), runs scored by the mean of audio x visual probability (the chance it is heard and seen) over the
    run."""
    from ecma.evaluation.metrics import binarize

    if pred is None:
        t = dict(video_threshold=video_threshold, segment_threshold=segment_threshold)
        pred = binarize(video_prob, audio_prob, **t) & binarize(video_prob, visual_prob, **t)
    prob = np.asarray(audio_prob, dtype=np.float64) * np.asarray(visual_prob, dtype=np.float64)
    detections = detections_from_segments(filenames, pred, prob, lengths=lengths, durations=durations,
                                          segment_seconds=segment_seconds)
    return mean_average_precision(truth, detections, thresholds=thresholds, classes=classes)
