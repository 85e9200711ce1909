"""``NAME.json``: what a parse found in one video, with how it was found (the page and the PNG read it).

Schema (``format`` ``ecma-parse/2``)::

    {"format": "ecma-parse/2",
     "video": {"name", "path", "duration_seconds", "n_segments", "segment_seconds", "flags"},
     "classes": [...],
     "events": [{"class", "modality": "audio"|"visual"|"audio_visual", "onset", "offset", "confidence"}],
     "suppressed": {"missing_streams": ["audio"|"visual"], "modalities": [...], "events": {modality: count}},
     "probabilities": {"audio": {class: [p per second]}, "visual": {...},
                       "video_gate": {class: [video-level p per second]}, "video": {class: p}},
     "thresholds": {"video", "segment"},
     "windowing": {"mode": single|padded|windows|whole, "window_segments", "stride_segments",
                   "window_starts", "padded_segments", "video_segments", "window_source"},
     "provenance": {"checkpoint", "checkpoint_sha256", "fingerprint", "ecma_version", "variant",
                    "precision", "audio_reader", "created_at"}}

``suppressed``: a file without an audio (video) stream is encoded as silence (a black frame), and no event
that needs the missing stream is claimed (:func:`ecma.parse.events.claimable`): ``modalities`` are those
left out, ``events`` how many of each the thresholds gave and were dropped. The probabilities are kept as
the model gave them. Version 1 had no ``suppressed`` and kept those events.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ecma.parse.events import MODALITIES, Event, claimable, claimable_modalities, missing_streams
from ecma.parse.windows import VideoProbabilities

FORMAT = "ecma-parse/2"
DECIMALS = 4  # probabilities to 1e-4: the page cannot show more, and the file stays small


def _per_class(prob: np.ndarray, classes: Sequence[str]) -> dict[str, list[float]]:
    return {c: [round(float(x), DECIMALS) for x in prob[:, i]] for i, c in enumerate(classes)}


def build_record(*, name: str, path: str, duration: float, segment_seconds: float, flags: dict,
                 classes: Sequence[str], probs: VideoProbabilities, events: Sequence[Event],
                 thresholds: dict, window_source: str, provenance: dict) -> dict:
    """The record of one video; events that need a stream the file does not have are dropped and counted."""
    missing = missing_streams(flags)
    events, dropped = claimable(events, missing)
    return {
        "format": FORMAT,
        "video": {"name": name, "path": path, "duration_seconds": round(float(duration), 3),
                  "n_segments": int(probs.plan.n_segments), "segment_seconds": float(segment_seconds),
                  "flags": {k: (v.item() if hasattr(v, "item") else v) for k, v in flags.items()}},
        "classes": list(classes),
        "events": [e.to_dict() for e in events],
        "suppressed": {"missing_streams": missing,
                       "modalities": [m for m in MODALITIES if m not in claimable_modalities(missing)],
                       "events": dropped},
        "probabilities": {
            "audio": _per_class(probs.audio, classes),
            "visual": _per_class(probs.visual, classes),
            "video_gate": _per_class(probs.video_gate, classes),
            "video": {c: round(float(p), DECIMALS) for c, p in zip(classes, probs.video)},
        },
        "thresholds": {"video": float(thresholds["video"]), "segment": float(thresholds["segment"])},
        "windowing": {**probs.plan.describe(), "window_source": window_source},
        "provenance": provenance,
    }


def lanes(record: dict) -> list[tuple[str, str]]:
    """(class, modality) of every lane a timeline shows: those with an event, by first onset."""
    first: dict[tuple[str, str], float] = {}
    for e in record["events"]:
        first.setdefault((e["class"], e["modality"]), e["onset"])
    kinds = {"audio": 0, "visual": 1, "audio_visual": 2}
    cls_order = {c: i for i, c in enumerate(record["classes"])}
    by_class = {}
    for (c, _), onset in first.items():
        by_class[c] = min(onset, by_class.get(c, onset))
    return sorted(first, key=lambda k: (by_class[k[0]], cls_order[k[0]], kinds[k[1]]))


def lane_probabilities(record: dict, cls: str, modality: str) -> list[float]:
    """Per-second probability shown in a lane (audio-visual: the smaller of audio and visual)."""
    p = record["probabilities"]
    if modality == "audio_visual":
        return [min(a, v) for a, v in zip(p["audio"][cls], p["visual"][cls])]
    return list(p[modality][cls])


_MISSING_WORDS = {"audio": ("audio", "heard", "silence"), "visual": ("video", "seen", "a black frame")}


def missing_stream_notes(record: dict) -> list[tuple[str, str, str]]:
    """(stream, short sentence, long sentence) per stream the video's file does not have, for its page, the
    index and the PNG."""
    sup = record.get("suppressed") or {}
    dropped = sum((sup.get("events") or {}).values())
    notes = []
    for stream in sup.get("missing_streams", []):
        kind, verb, stand_in = _MISSING_WORDS[stream]
        short = f"no {kind} stream: nothing is reported as {verb}"
        long = (f"This file has no {kind} stream, so no event is reported as {verb} ({stream} or audio-visual): the "
                f"model ran on {stand_in} in its place, and what it gave for that is not about this video.")
        if dropped:
            long += f" {dropped} such event{'s' if dropped != 1 else ''} {'were' if dropped != 1 else 'was'} left out."
        notes.append((stream, short, long))
    return notes
