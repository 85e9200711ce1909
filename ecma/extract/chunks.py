"""One video decoded in chunks of whole segments, so that decoding a video of any length takes the memory of
one chunk: ``ecma parse`` reads films this way.

A chunk covers segments ``[first, first + chunk_segments)``: the frames of those of them that the video
stream has (:class:`ecma.extract.decode.VisualStream`, one reader kept open from chunk to chunk) and the
samples of those that the audio track has (:mod:`ecma.extract.audio_stream`, read on from where the last
chunk stopped). Concatenated, the chunks hold exactly what :func:`ecma.extract.decode.decode_video` gives
for the whole video with ``n_segments`` None (every whole second kept): the same frames, the same samples,
the same segment rule, and on the last chunk the same ``n_segments`` and ``flags``. What the caller pads is
padded as there: a stream with fewer segments than the video is padded, at feature level, by repeating its
last one; a missing video stream gives one black frame (in the first chunk), a missing audio track
silence. The audio encoder's windows must not straddle chunks: ``chunk_segments`` is a whole number of them.

A file that cannot be read gives a chunk with ``error`` set and no data; if that happens after some chunks,
the caller drops what it had of the video. Nothing here raises for a bad file, and nothing imports torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ecma.extract.audio_stream import open_audio
from ecma.extract.decode import (DecodedVideo, DecodeSpec, VisualStream, _decode_audio, black_images, file_problem,
                                 one_line, segments_present, stream_problem, video_flags)
from ecma.extract.transform import ImageTransform


@dataclass
class DecodedChunk(DecodedVideo):
    """Part of a decoded video: ``images`` are the frames of its ``n_visual`` segments from ``first`` on,
    ``waveform`` the samples of its ``n_audio`` segments from ``first`` on. ``n_segments`` and ``flags`` are
    the whole video's and are set on its ``last`` chunk only."""

    first: int = 0
    last: bool = False
    audio_reader: str = ""  # how the audio track was read: 'ffmpeg stream', or decord's whole track and why


def decode_chunks(index: int, name: str, path: str | os.PathLike, spec: DecodeSpec,
                  transform: Optional[ImageTransform], chunk_segments: int) -> Iterator[DecodedChunk]:
    """The chunks of one video, in order; the last has ``last`` set (an error chunk is also the last)."""
    if spec.n_segments is not None:
        raise ValueError("decoding in chunks keeps every segment: spec.n_segments must be None")
    if chunk_segments < 1:
        raise ValueError(f"chunk_segments must be at least 1, got {chunk_segments}")

    def failed(error: tuple[str, str]) -> DecodedChunk:
        return DecodedChunk(index=index, name=name, error=error, last=True)

    p = Path(path)
    problem = file_problem(p)
    if problem is not None:
        yield failed(problem)
        return
    visual = audio = None
    try:
        visual = VisualStream(str(p), spec)
    except Exception as e:  # decord raises its own and RuntimeError types
        problem = stream_problem(e, "video")
        if problem is not None:
            yield failed(problem)
            return
    try:
        audio = open_audio(str(p), spec.sample_rate, lambda q: _decode_audio(q, spec))
    except Exception as e:
        problem = stream_problem(e, "audio")
        if problem is not None:
            yield failed(problem)
            return
    try:
        yield from _chunks(index, name, spec, transform, chunk_segments, visual, audio)
    finally:
        if audio is not None:
            audio.close()


def _chunks(index, name, spec: DecodeSpec, transform, chunk_segments: int, visual: Optional[VisualStream],
            audio) -> Iterator[DecodedChunk]:
    seg = int(round(spec.segment_seconds * spec.sample_rate))
    k = spec.frames_per_segment
    size = spec.image_size if transform is None else transform.size
    no_frames = np.zeros((0, size, size, 3), np.uint8)
    n_v = visual.n_present if visual is not None else 0
    reader = ("none: no audio stream" if audio is None else "ffmpeg stream" if audio.fallback is None
              else f"decord whole track ({audio.fallback})")

    first, total = 0, 0  # the chunk's first segment; audio samples read so far
    carry = np.zeros(0, np.float32)  # samples read past the previous chunk
    audio_missing = audio is None
    audio_done = audio is None
    n_a = 0  # audio segments, known once the track has ended
    while True:
        stop = first + chunk_segments
        try:
            if visual is not None and first < n_v:
                images, n_visual = visual.frames(first, min(stop, n_v), transform), min(stop, n_v) - first
            elif visual is None and first == 0:  # no video stream: one black frame, repeated by the caller
                images, n_visual = black_images(spec, transform, k), 1
            else:
                images, n_visual = no_frames, 0
        except Exception as e:
            yield DecodedChunk(index=index, name=name, error=stream_problem(e, "video") or ("decode", "video: unreadable"),
                               last=True)
            return
        try:
            wav = carry
            if not audio_done:
                # read half a segment past the chunk: whether the track goes on to another segment
                # (segments_present counts a tail of half a segment or more) is then known, so that a
                # track ending at a chunk's end makes that chunk the last one, not an empty one after it
                want = chunk_segments * seg + seg // 2
                more = audio.read(want - carry.size)
                total += more.size
                wav = np.concatenate([carry, more]) if carry.size else more
                audio_done = wav.size < want or audio.at_end()
                if audio_done and total == 0:  # a track without samples is no track (as decode_video has it)
                    audio_missing = True
                elif audio_done:
                    n_a = segments_present(total / spec.sample_rate, spec.segment_seconds)
            wav, carry = wav[: chunk_segments * seg], wav[chunk_segments * seg :]
        except Exception as e:
            yield DecodedChunk(index=index, name=name, error=("decode", f"audio: {one_line(e)}"), last=True)
            return
        if visual is None and audio_missing:
            yield DecodedChunk(index=index, name=name, error=("decode", "neither a video nor an audio stream"), last=True)
            return
        # the video's segments: those of the longer stream (decode_video's T when n_segments is None)
        t = max(n_v, 0 if audio_missing else n_a) if audio_done else None
        if audio_missing:  # silence for the video's segments
            n_audio = max(0, min(stop, n_v) - first)
            wav = np.zeros(n_audio * seg, np.float32)
        else:
            n_audio = max(0, min(stop, n_a) - first) if audio_done else chunk_segments
            want = n_audio * seg
            wav = wav[:want] if wav.size >= want else np.concatenate([wav, np.zeros(want - wav.size, np.float32)])
        last = t is not None and stop >= t
        chunk = DecodedChunk(index=index, name=name, images=images, n_visual=n_visual, waveform=wav, n_audio=n_audio,
                             first=first, last=last, audio_reader=reader)
        if last:
            chunk.n_segments = t
            chunk.flags = video_flags(duration_audio=total / spec.sample_rate,
                                      duration_visual=None if visual is None else visual.duration,
                                      audio_missing=audio_missing, visual_missing=visual is None, t=t, n_all=t,
                                      n_audio=t if audio_missing else n_a, n_visual=1 if visual is None else n_v)
        yield chunk
        if last:
            return
        first = stop
