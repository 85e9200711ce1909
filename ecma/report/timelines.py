"""Timelines of a few videos: predicted versus true events per second, audio and visual side by side.

Predictions are binarised with the benchmark's rule (:func:`ecma.evaluation.metrics.binarize`: a segment is on where
its probability reaches the segment threshold and the class's video-level probability the video
threshold), so the picture shows exactly what the metrics score.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # no display on clusters and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from ecma.data.annotation_sets import Annotations, LlpAnnotations  # noqa: E402
from ecma.errors import EcmaError  # noqa: E402
from ecma.evaluation.metrics import binarize  # noqa: E402
from ecma.evaluation.predictions import read_predictions  # noqa: E402
from ecma.io import atomic_path  # noqa: E402

TRUTH_COLOUR = "#c5cbd3"
COLOURS = {"audio": "#d1495b", "visual": "#00798c"}


@dataclass
class VideoTimeline:
    filename: str
    classes: list[str]
    truth: dict[str, np.ndarray]  # modality -> (C, T) bool
    predicted: dict[str, np.ndarray]  # modality -> (C, T) bool

    def shown_classes(self) -> list[int]:
        """Indices of the classes true or predicted in either modality."""
        on = np.zeros(len(self.classes), dtype=bool)
        for arrays in (self.truth, self.predicted):
            for a in arrays.values():
                on |= a.any(axis=1)
        return list(np.flatnonzero(on))


def timelines_of(
    predictions_path: str | os.PathLike,
    split_csv: str | os.PathLike,
    eval_audio_csv: str | os.PathLike,
    eval_visual_csv: str | os.PathLike,
    **kw,
) -> list[VideoTimeline]:
    """:func:`annotated_timelines` of an LLP-format split csv and its eval csvs."""
    classes = read_predictions(predictions_path).classes
    annotations = LlpAnnotations({str(split_csv): split_csv}, eval_audio_csv, eval_visual_csv, classes=tuple(classes))
    return annotated_timelines(predictions_path, annotations, str(split_csv), **kw)


def annotated_timelines(
    predictions_path: str | os.PathLike,
    annotations: Annotations,
    split: str,
    *,
    filenames: Sequence[str] | None = None,
    n_videos: int = 4,
    video_threshold: float = 0.5,
    segment_threshold: float = 0.5,
) -> list[VideoTimeline]:
    """The given videos, or the ``n_videos`` of the split with the most true event-seconds (split order on ties)."""
    preds = read_predictions(predictions_path)
    classes = preds.classes
    if tuple(classes) != tuple(annotations.classes):
        raise EcmaError(f"{predictions_path}: predicted classes are not the annotations' (another dataset's model?)")
    names = annotations.split(split).filenames
    index = {name: i for i, name in enumerate(preds.filenames)}
    candidates = [f for f in names if f in index]
    if filenames:
        unknown = [f for f in filenames if f not in index or f not in names]
        if unknown:
            raise EcmaError(f"{predictions_path}: no predictions on split {split} for {', '.join(unknown)}")
        candidates = list(filenames)
    if not candidates:
        raise EcmaError(f"{predictions_path}: no predictions for any video of split {split}")
    n_segments = preds.audio_prob.shape[1]
    truth = dict(zip(("audio", "visual"), (t.astype(bool) for t in annotations.truth(split, candidates, n_segments))))
    if not filenames:
        busy = truth["audio"].sum(axis=(1, 2)) + truth["visual"].sum(axis=(1, 2))
        order = np.argsort(-busy, kind="stable")[:n_videos]  # stable: split order among equals
        candidates = [candidates[i] for i in order]
        truth = {m: t[order] for m, t in truth.items()}
    rows = [index[f] for f in candidates]
    thresholds = dict(video_threshold=video_threshold, segment_threshold=segment_threshold)
    predicted = {
        "audio": binarize(preds.video_prob[rows], preds.audio_prob[rows], **thresholds),
        "visual": binarize(preds.video_prob[rows], preds.visual_prob[rows], **thresholds),
    }
    return [
        VideoTimeline(f, classes, {m: truth[m][i] for m in truth}, {m: predicted[m][i] for m in predicted})
        for i, f in enumerate(candidates)
    ]


def _draw(ax, video: VideoTimeline, modality: str, shown: list[int]) -> None:
    """One lane per shown class: truth as a wide grey band, the prediction as a narrow coloured bar in it."""
    n_segments = video.truth[modality].shape[1]
    for lane, c in enumerate(shown):
        for t in np.flatnonzero(video.truth[modality][c]):
            ax.add_patch(Rectangle((t, lane - 0.4), 1, 0.8, color=TRUTH_COLOUR, linewidth=0))
        for t in np.flatnonzero(video.predicted[modality][c]):
            ax.add_patch(Rectangle((t + 0.05, lane - 0.17), 0.9, 0.34, color=COLOURS[modality], linewidth=0))
    ax.set_xlim(0, n_segments)
    ax.set_ylim(len(shown) - 0.5, -0.5)
    ax.set_xticks(range(0, n_segments + 1, max(1, n_segments // 10)))
    ax.set_yticks(range(len(shown)), [video.classes[c].replace("_", " ") for c in shown], fontsize=8)
    ax.grid(axis="x", color="#eef0f3")
    ax.set_axisbelow(True)
    ax.tick_params(axis="x", labelsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def plot_timelines(videos: Sequence[VideoTimeline], path: str | os.PathLike, title: str = "") -> None:
    """One row per video, audio on the left and visual on the right, as one PNG."""
    if not videos:
        raise EcmaError(f"{path}: no videos to draw")
    lanes = [max(1, len(v.shown_classes())) for v in videos]
    fig, axes = plt.subplots(
        len(videos), 2, figsize=(11, 1.0 + sum(0.32 * n + 0.75 for n in lanes)), squeeze=False,
        gridspec_kw={"height_ratios": [n + 1.2 for n in lanes]},
    )
    for (ax_a, ax_v), video in zip(axes, videos):
        shown = video.shown_classes()
        for ax, modality in ((ax_a, "audio"), (ax_v, "visual")):
            _draw(ax, video, modality, shown)
            ax.set_title(f"{video.filename}: {modality}", loc="left", fontsize=9)
        ax_v.set_yticklabels([])
    for ax in axes[-1]:
        ax.set_xlabel("second", fontsize=9)
    handles = [Patch(color=TRUTH_COLOUR, label="true"), Patch(color=COLOURS["audio"], label="predicted (audio)"),
               Patch(color=COLOURS["visual"], label="predicted (visual)")]
    fig.legend(handles=handles, loc="upper right", ncols=3, frameon=False, fontsize=9)
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
