"""Events from per-second probabilities, by the benchmark's rule (:func:`ecma.evaluation.metrics.binarize`).

A class is on in a video where its video-level probability reaches the video threshold; a second of an
on class is audible (visible) where its audio (visual) probability reaches the segment threshold, and
audio-visual where it is both. Maximal runs of on seconds are the events (adjacent seconds merge, as the
benchmark's event-level metric reads them). Confidence is the mean probability over the event's seconds;
for audio-visual seconds that probability is min(audio, visual): a second is audio-visual exactly where
that minimum reaches the segment threshold.

For a video parsed in several windows the video-level probability differs along the video; the gate is
then per second (:mod:`ecma.parse.windows`), a (T, C) array, and a (C,) one is the benchmark's case.

A file without an audio stream is encoded as silence, and one without a video stream as a black frame, so
that the model can run; but what it then says about the missing stream describes the stand-in, not the
video. So no event is claimed that needs a missing stream (:func:`claimable`): nothing heard (audio or
audio-visual) without sound, nothing seen (visual or audio-visual) without pictures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np

from ecma.evaluation.metrics import binarize

MODALITIES = ("audio", "visual", "audio_visual")
NEEDS = {"audio": ("audio",), "visual": ("visual",), "audio_visual": ("audio", "visual")}  # streams each needs


@dataclass
class Event:
    cls: str
    modality: str  # audio | visual | audio_visual
    onset: float  # seconds
    offset: float
    confidence: float

    def to_dict(self) -> dict:
        d = asdict(self)
        d["confidence"] = round(d["confidence"], 4)  # as the JSON's probabilities
        return {"class": d.pop("cls"), **d}


def runs(on: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True in a 1-D bool array, as (start, end) with end exclusive."""
    padded = np.concatenate([[False], np.asarray(on, bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2])]


def modality_probabilities(audio_prob: np.ndarray, visual_prob: np.ndarray) -> dict[str, np.ndarray]:
    """(T, C) probabilities per modality kind; audio-visual is the smaller of the two."""
    return {"audio": audio_prob, "visual": visual_prob, "audio_visual": np.minimum(audio_prob, visual_prob)}


def segment_decisions(audio_prob: np.ndarray, visual_prob: np.ndarray, video_gate: np.ndarray, *,
                      video_threshold: float, segment_threshold: float) -> dict[str, np.ndarray]:
    """(T, C) bool per modality kind. ``video_gate``: (C,) video probability or (T, C) per second."""
    t, c = audio_prob.shape
    gate = np.broadcast_to(np.asarray(video_gate, dtype=np.float64), (t, c))
    # binarize() takes (N, C) video and (N, T, C) segment arrays: one "video" per second carries a per-second gate
    def on(prob: np.ndarray) -> np.ndarray:
        return binarize(gate, prob[:, None, :], video_threshold=video_threshold,
                        segment_threshold=segment_threshold)[:, :, 0]

    audio, visual = on(audio_prob), on(visual_prob)
    return {"audio": audio, "visual": visual, "audio_visual": audio & visual}


def extract_events(audio_prob: np.ndarray, visual_prob: np.ndarray, video_gate: np.ndarray, classes: Sequence[str], *,
                   video_threshold: float = 0.5, segment_threshold: float = 0.5, segment_seconds: float = 1.0,
                   duration: Optional[float] = None) -> list[Event]:
    """Events of one video from (T, C) audio and visual probabilities; sorted by onset, class, modality.

    Onsets and offsets are segment bounds in seconds; an offset past ``duration`` (the last segment of a
    video that ends mid-second) is cut to the duration.
    """
    audio_prob, visual_prob = np.asarray(audio_prob, np.float64), np.asarray(visual_prob, np.float64)
    on = segment_decisions(audio_prob, visual_prob, video_gate, video_threshold=video_threshold,
                           segment_threshold=segment_threshold)
    probs = modality_probabilities(audio_prob, visual_prob)
    events = []
    for m in MODALITIES:
        for c, name in enumerate(classes):
            for s, e in runs(on[m][:, c]):
                offset = e * segment_seconds
                if duration is not None:
                    offset = min(offset, max(duration, s * segment_seconds))
                events.append(Event(name, m, round(s * segment_seconds, 6), round(offset, 6),
                                    float(probs[m][s:e, c].mean())))
    order = {m: i for i, m in enumerate(MODALITIES)}
    cls_order = {n: i for i, n in enumerate(classes)}
    events.sort(key=lambda ev: (ev.onset, cls_order[ev.cls], order[ev.modality]))
    return events


def missing_streams(flags: dict) -> list[str]:
    """The streams ('audio', 'visual') a decoded video's flags say its file does not have."""
    return [s for s in ("audio", "visual") if flags.get(f"{s}_missing")]


def claimable_modalities(missing: Sequence[str]) -> list[str]:
    """The modalities an event of a video without the ``missing`` streams can have."""
    return [m for m in MODALITIES if not set(NEEDS[m]) & set(missing)]


def claimable(events: Sequence[Event], missing: Sequence[str]) -> tuple[list[Event], dict[str, int]]:
    """(the events that need none of the ``missing`` streams, how many of each other modality were dropped)."""
    keep = set(claimable_modalities(missing))
    dropped: dict[str, int] = {}
    for e in events:
        if e.modality not in keep:
            dropped[e.modality] = dropped.get(e.modality, 0) + 1
    return [e for e in events if e.modality in keep], {m: dropped[m] for m in MODALITIES if m in dropped}
