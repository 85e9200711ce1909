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


def frame_times(n_segments: int, segment_seconds: float, k: int, first: int = 0) -> np.ndarray:
    """Times (s) of the K frames sampled in each segment from ``first`` to ``n_segments`` (exclusive): the
    middles of K equal parts of the segment."""
    seg = np.arange(first, n_segments, dtype=np.float64)[:, None]
    part = (np.arange(k, dtype=np.float64)[None, :] + 0.5) / k
    return ((seg + part) * segment_seconds).reshape(-1)


def frame_indices(starts: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the frame shown at each time, from the frames' presentation start times (any frame rate)."""
    idx = np.searchsorted(starts, times, side="right") - 1
    return np.clip(idx, 0, len(starts) - 1)


class VisualStream:
    """A file's video stream, open; its segments' frames are read a range of segments at a time, in order
    (:meth:`frames`), so that a long video's frames need never be in memory together. Raises on a file
    without a readable video stream."""

    def __init__(self, path: str, spec: DecodeSpec):
        import decord

        self.path, self.spec = path, spec
        self._reader = decord.VideoReader(path, num_threads=1)
        n = len(self._reader)
        if n == 0:
            raise ValueError("the video stream has no frames")
        ts = self._reader.get_frame_timestamp(np.arange(n))
        self._starts = ts[:, 0]
        self.duration = float(ts[-1, 1])
        self._h, self._w = self._reader[0].shape[:2]
        short = min(self._h, self._w)
        if short > 2 * spec.image_size:
            scale = 2 * spec.image_size / short
            del self._reader
            self._reader = decord.VideoReader(path, num_threads=1, width=int(round(self._w * scale / 2)) * 2,
                                              height=int(round(self._h * scale / 2)) * 2)
        self.n_present = segments_present(self.duration, spec.segment_seconds)
        if spec.n_segments is not None:
            self.n_present = min(self.n_present, spec.n_segments)

    def frames(self, first: int, stop: int, transform: Optional[ImageTransform]) -> np.ndarray:
        """(segments x K, H, W, 3) uint8 frames of segments [first, stop), cropped when a transform is given."""
        import decord

        times = frame_times(stop, self.spec.segment_seconds, self.spec.frames_per_segment, first)
        uniq, inverse = np.unique(frame_indices(self._starts, times), return_inverse=True)
        try:
            frames = self._reader.get_batch(list(map(int, uniq))).asnumpy()[inverse]
        except Exception as e:
            # decord 0.6 misreads the rows of frames of some small widths (16, 24, 48 and 72 px seen, a rotated
            # video's too): its frames come out with 4 "channels" of shifted rows and a batch fails. Asked for
            # twice the size, it scales them through a path without the fault: the same picture, the same
            # orientation and aspect (the encoder's transform resizes it anyway).
            if "size must exactly match" not in str(e):
                raise
            del self._reader
            self._reader = decord.VideoReader(self.path, num_threads=1, width=2 * int(self._w), height=2 * int(self._h))
            frames = self._reader.get_batch(list(map(int, uniq))).asnumpy()[inverse]
        # decord's decoding thread goes on decoding the frames after a batch, into a queue without bound, for
        # as long as nobody asks for more (dmlc/decord#157, #208): while a chunk is encoded it had decoded
        # ~1 GB of frames ahead, and a 20-min parse grew to 5.8 GB. A seek empties that queue and stops it;
        # the next batch seeks to its own frames, so they are unchanged (decoding costs ~30% more). A last
        # batch (extraction's only one) has no next: no seek.
        if stop < self.n_present:
            self._reader.seek(0)
        frames = np.ascontiguousarray(frames[..., :3])  # a guard: 3 channels whatever decord says
        return frames if transform is None else transform.crop(frames)


def _decode_visual(path: str, spec: DecodeSpec, transform: Optional[ImageTransform]):
    """(frames, cropped when a transform is given, of the present segments, duration s); raises on failure."""
    stream = VisualStream(path, spec)
    return stream.frames(0, stream.n_present, transform), stream.duration, stream.n_present


def black_images(spec: DecodeSpec, transform: Optional[ImageTransform], k: int = 1) -> np.ndarray:
    """K black frames: the stand-in for a missing video stream."""
    size = spec.image_size if transform is None else transform.size
    return np.zeros((k, size, size, 3), dtype=np.uint8)


def _decode_audio(path: str, spec: DecodeSpec) -> np.ndarray:
    import decord

    ar = decord.AudioReader(path, sample_rate=spec.sample_rate, mono=True)
    return np.ascontiguousarray(ar[:].asnumpy().reshape(-1), dtype=np.float32)


def file_problem(p: Path) -> Optional[tuple[str, str]]:
    """(stage, reason) when ``p`` cannot be opened at all, else None."""
    if not p.is_file():
        return ("open", f"file not found: {p}")
    if p.stat().st_size == 0:
        return ("open", "empty file (0 bytes)")
    return None


def stream_problem(e: BaseException, stream: str) -> Optional[tuple[str, str]]:
    """(stage, reason) of a failure to read the ``stream`` ('video' or 'audio'), or None when the file merely
    has no such stream (its features are then a black frame's or silence's)."""
    reason = one_line(e)
    if (_NO_VIDEO if stream == "video" else _NO_AUDIO) in reason.lower():
        return None
    return ("decode", f"{stream}: {reason}")


def video_flags(*, duration_audio: float, duration_visual: Optional[float], audio_missing: bool, visual_missing: bool,
                t: int, n_all: int, n_audio: int, n_visual: int) -> dict[str, Any]:
    """What a decoded video records about its streams: length, missing streams, trimmed and padded segments."""
    return {"duration_seconds": float(max(duration_audio, duration_visual or 0.0)), "audio_missing": audio_missing,
            "visual_missing": visual_missing, "trimmed_segments": max(0, n_all - t),
            "audio_padded_segments": 0 if audio_missing else t - n_audio,
            "visual_padded_segments": 0 if visual_missing else t - n_visual}


def decode_video(index: int, name: str, path: str | os.PathLike, spec: DecodeSpec,
                 transform: Optional[ImageTransform] = None) -> DecodedVideo:
    """Decode one file; never raises for a bad file (``error`` is set instead)."""
    out = DecodedVideo(index=index, name=name)
    p = Path(path)
    out.error = file_problem(p)
    if out.error is not None:
        return out
    if spec.profile == "valor":
        from ecma.extract.valor.decode import decode_valor_video

        return decode_valor_video(out, p)

    images = duration_v = None
    n_v = 0
    try:
        images, duration_v, n_v = _decode_visual(str(p), spec, transform)
    except Exception as e:  # decord raises its own and RuntimeError types
        out.error = stream_problem(e, "video")
        if out.error is not None:
            return out
    try:
        wav = _decode_audio(str(p), spec)
        if wav.size == 0:
            wav = None
    except Exception as e:
        out.error = stream_problem(e, "audio")
        if out.error is not None:
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
    audio_missing, visual_missing = wav is None, images is None
    if images is None:  # features of a black frame, repeated by the caller like any padding
        images, n_v = black_images(spec, transform, spec.frames_per_segment), 1
    if wav is None:  # features of silence
        wav, n_a = np.zeros(t * seg_samples, dtype=np.float32), t
    n_a = min(n_a, t)
    n_v = min(n_v, t)
    want = n_a * seg_samples
    wav = wav[:want] if wav.size >= want else np.concatenate([wav, np.zeros(want - wav.size, np.float32)])
    flags = video_flags(duration_audio=duration_a, duration_visual=duration_v, audio_missing=audio_missing,
                        visual_missing=visual_missing, t=t, n_all=n_all, n_audio=n_a, n_visual=n_v)
    out.n_segments, out.images, out.n_visual, out.waveform, out.n_audio, out.flags = t, images, n_v, wav, n_a, flags
    return out
