"""``NAME.json``: what a parse found in one video, with how it was found (the page and the PNG read it).

Schema (``format`` ``ecma-parse/1``)::

    {"format": "ecma-parse/1",
     "video": {"name", "path", "duration_seconds", "n_segments", "segment_seconds", "flags"},
     "classes": [...],
     "events": [{"class", "modality": "audio"|"visual"|"audio_visual", "onset", "offset", "confidence"}],
     "probabilities": {"audio": {class: [p per second]}, "visual": {...},
                       "video_gate": {class: [video-level p per second]}, "video": {class: p}},
     "thresholds": {"video", "segment"},
     "windowing": {"mode": single|padded|windows|whole, "window_segments", "stride_segments",
                   "window_starts", "padded_segments", "video_segments", "window_source"},
     "provenance": {"checkpoint", "checkpoint_sha256", "fingerprint", "ecma_version", "variant",
                    "precision", "created_at"}}
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ecma.parse.events import Event
from ecma.parse.windows import VideoProbabilities

FORMAT = "ecma-parse/1"
DECIMALS = 4  # probabilities to 1e-4: the page cannot show more, and the file stays small


def _per_class(prob: np.ndarray, classes: Sequence[str]) -> dict[str, list[float]]:
    return {c: [round(float(x), DECIMALS) for x in prob[:, i]] for i, c in enumerate(classes)}


def build_record(*, name: str, path: str, duration: float, segment_seconds: float, flags: dict,
                 classes: Sequence[str], probs: VideoProbabilities, events: Sequence[Event],
                 thresholds: dict, window_source: str, provenance: dict) -> dict:
    return {
        "format": FORMAT,
        "video": {"name": name, "path": path, "duration_seconds": round(float(duration), 3),
                  "n_segments": int(probs.plan.n_segments), "segment_seconds": float(segment_seconds),
                  "flags": {k: (v.item() if hasattr(v, "item") else v) for k, v in flags.items()}},
        "classes": list(classes),
        "events": [e.to_dict() for e in events],
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
