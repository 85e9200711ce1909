"""Decode one video file into what the encoders need: one (or K) frames per segment and a 48 kHz mono track.

Runs in decoding worker processes (see :mod:`ecma.extract.workers`), so everything here is plain data
in, plain data out, and nothing imports torch: a worker starts in a fraction of a second. A file that
cannot be read gives a :class:`DecodedVideo` with ``error`` set instead of raising: one bad video must
never cost the others.

Segments: segment ``i`` covers ``[i * L, (i + 1) * L)`` seconds (``L`` = ``segment_seconds``). A stream
*has* segment ``i`` when the segment's middle lies inside it, so a 9.98-s LLP clip has 10 segments and a
3.4-s clip has 3. ``T`` is ``n_segments`` when set, else the number of segments of the longer stream;
a stream with fewer segments is padded by repeating its last one (at feature level, by the caller), and
segments beyond ``T`` are trimmed. Both are recorded in ``flags``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ecma.extract.decoded import DecodedVideo, one_line
from ecma.extract.transform import ImageTransform

_NO_AUDIO = "can't find audio stream"
_NO_VIDEO = "cannot find video stream"


@dataclass(frozen=True)
class DecodeSpec:
    """What to decode; the same for every video of a run."""

    segment_seconds: float = 1.0
    n_segments: Optional[int] = 10
    frames_per_segment: int = 1
    sample_rate: int = 48000
    # The encoder's input side (224 for ViT-L-14); frames larger than twice this are decoded at reduced
    # size (short side 2x the input), which keeps the encoder's own resize in charge of the final pixels.
    image_size: int = 224
    # native: the settings above; valor: VALOR's recipe, which fixes them (ecma.extract.valor.decode)
    profile: str = "native"


def segments_present(duration: float, segment_seconds: float) -> int:
    """Segments whose middle lies inside a stream of ``duration`` seconds (at least 1 if it is not empty)."""
    if duration <= 0:
        return 0
    return max(1, math.floor(duration / segment_seconds + 0.5))


def frame_times(n_segments: int, segment_seconds: float, k: int) -> np.ndarray:
    """Times (s) of the K frames sampled in each segment: the middles of K equal parts of the segment."""
    seg = np.arange(n_segments, dtype=np.float64)[:, None]
    part = (np.arange(k, dtype=np.float64)[None, :] + 0.5) / k
    return ((seg + part) * segment_seconds).reshape(-1)


def frame_indices(starts: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the frame shown at each time, from the frames' presentation start times (any frame rate)."""
    idx = np.searchsorted(starts, times, side="right") - 1
    return np.clip(idx, 0, len(starts) - 1)


def _decode_visual(path: str, spec: DecodeSpec, transform: Optional[ImageTransform]):
    """(frames, cropped when a transform is given, of the present segments, duration s); raises on failure."""
    import decord

    vr = decord.VideoReader(path, num_threads=1)
    n = len(vr)
    if n == 0:
        raise ValueError("the video stream has no frames")
    ts = vr.get_frame_timestamp(np.arange(n))
    duration = float(ts[-1, 1])
    h, w = vr[0].shape[:2]
    short = min(h, w)
    if short > 2 * spec.image_size:
        scale = 2 * spec.image_size / short
        del vr
        vr = decord.VideoReader(
            path, num_threads=1, width=int(round(w * scale / 2)) * 2, height=int(round(h * scale / 2)) * 2
        )
    n_present = segments_present(duration, spec.segment_seconds)
    if spec.n_segments is not None:
        n_present = min(n_present, spec.n_segments)
    times = frame_times(n_present, spec.segment_seconds, spec.frames_per_segment)
    idx = frame_indices(ts[:, 0], times)
    uniq, inverse = np.unique(idx, return_inverse=True)
    try:
        frames = vr.get_batch(list(map(int, uniq))).asnumpy()[inverse]  # (n_present*K, H, W, C) uint8
    except Exception as e:
        # decord 0.6 cannot batch-decode videos with rotation metadata (its rotated frames come out with a
        # wrong size); decoding at the stored, unrotated size works, so rotation is then ignored.
        if "size must exactly match" not in str(e):
            raise
        del vr
        vr = decord.VideoReader(path, num_threads=1, width=int(h), height=int(w))
        frames = vr.get_batch(list(map(int, uniq))).asnumpy()[inverse]
    frames = np.ascontiguousarray(frames[..., :3])  # decord gives 4 channels for rotated videos
    return (frames if transform is None else transform.crop(frames)), duration, n_present


def black_images(spec: DecodeSpec, transform: Optional[ImageTransform], k: int = 1) -> np.ndarray:
    """K black frames: the stand-in for a missing video stream."""
    size = spec.image_size if transform is None else transform.size
    return np.zeros((k, size, size, 3), dtype=np.uint8)


def _decode_audio(path: str, spec: DecodeSpec) -> np.ndarray:
    import decord

    ar = decord.AudioReader(path, sample_rate=spec.sample_rate, mono=True)
    return np.ascontiguousarray(ar[:].asnumpy().reshape(-1), dtype=np.float32)


def decode_video(index: int, name: str, path: str | os.PathLike, spec: DecodeSpec,
                 transform: Optional[ImageTransform] = None) -> DecodedVideo:
    """Decode one file; never raises for a bad file (``error`` is set instead)."""
    out = DecodedVideo(index=index, name=name)
    p = Path(path)
    if not p.is_file():
        out.error = ("open", f"file not found: {p}")
        return out
    if p.stat().st_size == 0:
        out.error = ("open", "empty file (0 bytes)")
        return out
    if spec.profile == "valor":
        from ecma.extract.valor.decode import decode_valor_video

        return decode_valor_video(out, p)

    images = duration_v = None
    n_v = 0
    try:
        images, duration_v, n_v = _decode_visual(str(p), spec, transform)
    except Exception as e:  # decord raises its own and RuntimeError types
        reason = one_line(e)
        if _NO_VIDEO not in reason.lower():
            out.error = ("decode", f"video: {reason}")
            return out
    try:
        wav = _decode_audio(str(p), spec)
        if wav.size == 0:
            wav = None
    except Exception as e:
        reason = one_line(e)
        if _NO_AUDIO not in reason.lower():
            out.error = ("decode", f"audio: {reason}")
            return out
        wav = None
    if images is None and wav is None:
        out.error = ("decode", "neither a video nor an audio stream")
        return out

    seg_samples = int(round(spec.segment_seconds * spec.sample_rate))
    duration_a = 0.0 if wav is None else wav.size / spec.sample_rate
    n_a = segments_present(duration_a, spec.segment_seconds)
    # Segments the longer stream has, before trimming: what decides T when n_segments is not set.
    n_v_all = segments_present(duration_v or 0.0, spec.segment_seconds)
    n_all = max(n_a, n_v_all)
    t = spec.n_segments if spec.n_segments is not None else n_all
    flags: dict[str, Any] = {
        "duration_seconds": float(max(duration_a, duration_v or 0.0)),
        "audio_missing": wav is None,
        "visual_missing": images is None,
        "trimmed_segments": max(0, n_all - t),
    }
    if images is None:  # features of a black frame, repeated by the caller like any padding
        images, n_v = black_images(spec, transform, spec.frames_per_segment), 1
    if wav is None:  # features of silence
        wav, n_a = np.zeros(t * seg_samples, dtype=np.float32), t
    n_a = min(n_a, t)
    n_v = min(n_v, t)
    want = n_a * seg_samples
    wav = wav[:want] if wav.size >= want else np.concatenate([wav, np.zeros(want - wav.size, np.float32)])
    flags["audio_padded_segments"] = 0 if flags["audio_missing"] else t - n_a
    flags["visual_padded_segments"] = 0 if flags["visual_missing"] else t - n_v
    out.n_segments, out.images, out.n_visual, out.waveform, out.n_audio, out.flags = t, images, n_v, wav, n_a, flags
    return out
