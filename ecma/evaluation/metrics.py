"""The AVVP benchmark's segment- and event-level F1 scores, vectorised over videos and classes.

The numbers are those of the benchmark's published evaluation (AVVP-ECCV20: ``eval`` in ``main_avvp.py``
with ``segment_level``, ``event_level``, ``extract_event`` and ``event_wise_metric`` from
``utils/eval_metrics.py``), computed without per-video Python loops. The rules, per video:

- Binarisation: the video-level prediction is ``video_prob >= video_threshold``; a segment prediction
  is ``prob >= segment_threshold``, kept only for the classes whose video-level prediction is on.
  Truth is ``gt[c, onset:offset] = 1`` from the eval csvs (see :func:`ecma.data.annotations.segment_truth`).
  Audio-visual prediction and truth are the products A * V.
- Segment level: per class TP/FP/FN counted over the T segments.
- Event level: the maximal runs of 1s of a class are its events. A predicted event is a TP if its IoU
  with some true event is >= 0.5, else an FP; a true event that no predicted event overlaps with
  IoU >= 0.5 is an FN. (With IoU >= 0.5 between 1-D runs, a predicted event can match at most one
  true event and vice versa, so this equals counting matched pairs; see :func:`event_counts`.)
- Per video and modality: F1 = 2TP / (2TP + FP + FN) for each class with TP + FP + FN > 0, averaged
  over those classes; a video where no class has any is scored 1.0 (all true negatives).
  ``event_av`` (the benchmark's "Event@AV", its ``f``) pools audio and visual TP/FP/FN per class
  before the F1.
- Variable-length videos (``lengths``): arrays are padded to the longest video's T, and segments at or
  beyond a video's own length are neither predicted nor true (zeroed before counting), so a prediction in
  the padding counts for nothing and events never run into it.
- Result: 100 x the mean over videos, for ``audio``, ``visual``, ``audio_visual`` and ``event_av``;
  ``type_av`` ("Type@AV") is the mean of the audio, visual and audio_visual results.

Quirks of the reference, checked against its code:

- It hard-codes T = 10 (``GT = np.zeros((25, 10))``, ``np.repeat(o, 10)``, ``extract_event`` scans
  indices 0..9). For T = 10 its ``extract_event`` returns exactly the maximal runs, including a run
  that touches the last segment and a lone 1 at index 9. Here T is taken from the arrays and events
  are the maximal runs of any length T, which is the same thing for T = 10; other T are an extension
  the reference cannot run.
- Truth rows with ``onset >= offset`` set nothing, ``offset > T`` is clipped to T by the slice, and
  ``onset >= T`` sets nothing (Python slicing); rows of videos outside the split are never looked at.
  Negative or fractional onsets (which the reference would wrap or truncate) are rejected when the
  csv is read (:func:`ecma.data.annotations.read_eval`).
- IoU >= 0.5 is compared as ``intersection >= 0.5 * union``; with whole segments that is exactly
  ``2 * intersection >= union``, which is what is computed here.
- Averages are taken with numpy sums rather than Python's left-to-right ``sum``; results agree with the
  reference to within float rounding (about 1e-13 on the 1,200 LLP test videos).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ecma.data.batching import mask_beyond_lengths

MODALITIES = ("audio", "visual", "audio_visual", "type_av", "event_av")


def default_classes(classes: Sequence[str] | None, c: int) -> Sequence[str]:
    """The class names for ``per_class``: those given (as many as C), else "0", "1", ... (the names belong to
    the dataset: pass them; no dataset's list is assumed)."""
    if classes is None:
        return [str(i) for i in range(c)]
    if len(classes) != c:
        raise ValueError(f"{len(classes)} class names for {c} classes")
    return classes


def check_lengths(lengths: np.ndarray | None, n: int, t: int) -> None:
    if lengths is None:
        return
    lengths = np.asarray(lengths)
    if lengths.shape != (n,) or (n and (lengths.min() < 1 or lengths.max() > t)):
        raise ValueError(f"lengths must be (N,) = ({n},) with values in [1, {t}], got shape {lengths.shape}")


def binarize(
    video_prob: np.ndarray,
    prob: np.ndarray,
    *,
    video_threshold: float = 0.5,
    segment_threshold: float = 0.5,
) -> np.ndarray:
    """(N, T, C) segment probabilities -> (N, C, T) bool predictions gated by the video-level decision."""
    video_on = np.asarray(video_prob) >= video_threshold  # (N, C)
    seg_on = np.asarray(prob) >= segment_threshold  # (N, T, C)
    return np.ascontiguousarray((seg_on & video_on[:, None, :]).transpose(0, 2, 1))


def segment_counts(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (video, class) TP, FP, FN over segments; ``pred``/``truth`` are (..., T) bool."""
    tp = np.count_nonzero(pred & truth, axis=-1)
    fp = np.count_nonzero(pred & ~truth, axis=-1)
    fn = np.count_nonzero(~pred & truth, axis=-1)
    return tp, fp, fn


def _runs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For (M, T) bool rows: run starts (M, T), the length of the run at each 1 (M, T), runs per row (M,)."""
    start = x.copy()
    start[:, 1:] &= ~x[:, :-1]
    # Runs numbered 1, 2, ... across the whole array; a row's first 1 is always a start, so no run spans rows.
    run_id = np.cumsum(start.ravel()).reshape(x.shape)
    lengths = np.bincount(run_id[x], minlength=1)
    length_at = np.where(x, lengths[run_id], 0)
    return start, length_at, np.count_nonzero(start, axis=1)


def event_counts(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (video, class) event TP, FP, FN; ``pred``/``truth`` are (..., T) bool.

    A predicted run and a true run overlap in one contiguous stretch, which is a run of ``pred & truth``;
    at the start of each such stretch we know the intersection (that run's length) and the lengths of
    the predicted and the true run, hence the IoU. As a predicted run matches at most one true run and
    vice versa when IoU >= 0.5 (two disjoint runs cannot each cover half of a third that separates
    them), TP = matched pairs, FP = predicted runs - TP, FN = true runs - TP: the reference's counts.
    """
    shape = pred.shape[:-1]
    t = pred.shape[-1]
    p = pred.reshape(-1, t)
    g = truth.reshape(-1, t)
    _, p_len, n_pred = _runs(p)
    _, g_len, n_true = _runs(g)
    both_start, inter_len, _ = _runs(p & g)
    rows, cols = np.nonzero(both_start)
    inter = inter_len[rows, cols]
    union = p_len[rows, cols] + g_len[rows, cols] - inter
    matched = 2 * inter >= union
    tp = np.bincount(rows[matched], minlength=p.shape[0])
    fp = n_pred - tp
    fn = n_true - tp
    return tp.reshape(shape), fp.reshape(shape), fn.reshape(shape)


def video_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """(N, C) counts -> (N,) mean F1 over the classes with TP + FP + FN > 0; 1.0 where there is none."""
    denom = 2 * tp + fp + fn
    scored = (tp + fp + fn) > 0
    f1 = np.where(scored, 2 * tp / np.maximum(denom, 1), 0.0)
    n_scored = np.count_nonzero(scored, axis=1)
    return np.where(n_scored > 0, f1.sum(axis=1) / np.maximum(n_scored, 1), 1.0)


def _class_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, classes: Sequence[str]) -> dict:
    """(N, C) counts -> {class: 100 x F1 of the counts summed over videos, or None if all are 0}."""
    tp, fp, fn = tp.sum(axis=0), fp.sum(axis=0), fn.sum(axis=0)
    out = {}
    for c, name in enumerate(classes):
        denom = 2 * tp[c] + fp[c] + fn[c]
        out[name] = None if denom == 0 else float(100.0 * 2 * tp[c] / denom)
    return out


def _level(counts, pred_a, pred_v, pred_av, gt_a, gt_v, gt_av, classes) -> tuple[dict, dict]:
    a = counts(pred_a, gt_a)
    v = counts(pred_v, gt_v)
    av = counts(pred_av, gt_av)
    pooled = tuple(x + y for x, y in zip(a, v))
    f_a, f_v, f_av, f_pool = (100.0 * np.mean(video_f1(*k)) for k in (a, v, av, pooled))
    summary = {
        "audio": float(f_a),
        "visual": float(f_v),
        "audio_visual": float(f_av),
        "type_av": float((f_av + f_a + f_v) / 3.0),  # the reference's order of terms
        "event_av": float(f_pool),
    }
    per_class = {
        "audio": _class_f1(*a, classes),
        "visual": _class_f1(*v, classes),
        "audio_visual": _class_f1(*av, classes),
        "event_av": _class_f1(*pooled, classes),
    }
    return summary, per_class


def score(
    video_prob: np.ndarray,
    audio_prob: np.ndarray,
    visual_prob: np.ndarray,
    gt_audio: np.ndarray,
    gt_visual: np.ndarray,
    *,
    video_threshold: float = 0.5,
    segment_threshold: float = 0.5,
    classes: Sequence[str] | None = None,
    lengths: np.ndarray | None = None,
) -> dict:
    """Benchmark scores of N videos.

    Shapes: ``video_prob`` (N, C); ``audio_prob``/``visual_prob`` (N, T, C); ``gt_audio``/``gt_visual``
    (N, C, T), 0/1. ``classes`` names the C classes for ``per_class`` (default: "0", "1", ...).
    ``lengths`` (N,): each video's own number of segments where videos differ (None: all T).

    Returns ``{"segment": {...}, "event": {...}, "per_class": {...}, "num_videos": N}`` where the
    segment and event dicts hold ``audio``, ``visual``, ``audio_visual``, ``type_av`` and ``event_av``
    (percent, as the benchmark prints them). ``per_class[level][modality][class]`` (level ``segment``
    or ``event``; modality ``audio``, ``visual``, ``audio_visual`` or ``event_av``) is 100 x the F1 of
    that class's TP/FP/FN summed over all N videos (micro over videos, one class at a time), or None
    when the class is neither true nor predicted anywhere; it is a diagnostic, not a benchmark number.
    """
    video_prob = np.asarray(video_prob)
    audio_prob = np.asarray(audio_prob)
    visual_prob = np.asarray(visual_prob)
    gt_audio = np.asarray(gt_audio)
    gt_visual = np.asarray(gt_visual)
    if video_prob.ndim != 2:
        raise ValueError(f"video_prob must be (N, C), got shape {video_prob.shape}")
    n, c = video_prob.shape
    if n == 0:
        raise ValueError("no videos to score")
    if audio_prob.ndim != 3 or audio_prob.shape[0] != n or audio_prob.shape[2] != c:
        raise ValueError(f"audio_prob must be (N, T, C) = ({n}, T, {c}), got {audio_prob.shape}")
    t = audio_prob.shape[1]
    if visual_prob.shape != audio_prob.shape:
        raise ValueError(f"visual_prob has shape {visual_prob.shape}, audio_prob {audio_prob.shape}")
    for name, gt in (("gt_audio", gt_audio), ("gt_visual", gt_visual)):
        if gt.shape != (n, c, t):
            raise ValueError(f"{name} must be (N, C, T) = ({n}, {c}, {t}), got {gt.shape}")
        if gt.size and not np.isin(gt, (0, 1)).all():
            raise ValueError(f"{name} must hold only 0 and 1")
    classes = default_classes(classes, c)
    check_lengths(lengths, n, t)

    thresholds = dict(video_threshold=video_threshold, segment_threshold=segment_threshold)
    pred_a = mask_beyond_lengths(binarize(video_prob, audio_prob, **thresholds), lengths, 2)
    pred_v = mask_beyond_lengths(binarize(video_prob, visual_prob, **thresholds), lengths, 2)
    gt_a = mask_beyond_lengths(gt_audio.astype(bool), lengths, 2)
    gt_v = mask_beyond_lengths(gt_visual.astype(bool), lengths, 2)
    args = (pred_a, pred_v, pred_a & pred_v, gt_a, gt_v, gt_a & gt_v, classes)
    seg, seg_class = _level(segment_counts, *args)
    ev, ev_class = _level(event_counts, *args)
    return {
        "segment": seg,
        "event": ev,
        "per_class": {"segment": seg_class, "event": ev_class},
        "num_videos": int(n),
    }
