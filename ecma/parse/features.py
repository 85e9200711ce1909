"""Per-second features of videos of any length, in memory that does not grow with the length.

Each video is decoded in chunks of ``chunk_segments`` seconds (:func:`ecma.extract.workers.chunk_stream`),
the chunks are encoded ``batch_videos`` at a time by the extraction pipeline's encoders
(:func:`ecma.extract.pipeline.encode_streams`), and only the per-second features are kept for the whole
video (about 5 kB a second). A chunk is a whole number of the audio encoder's windows (10 s), so that the
windows, and so the features, are those of the whole video decoded at once; ``CHUNK_SECONDS`` of audio and
frames (~7 MB at 48 kHz and 224-pixel frames) are what one chunk holds.

A video that fails in any chunk (decoding or encoding) is reported once, with what was gathered of it
dropped: nothing of it reaches the caller.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np

from ecma.config import ExtractConfig
from ecma.extract.chunks import DecodedChunk
from ecma.extract.decode import DecodeSpec
from ecma.extract.pipeline import Encoders, encode_each, encode_streams
from ecma.extract.workers import chunk_stream
from ecma.parse.windows import pad_rows

CHUNK_SECONDS = 20.0  # decoded at a time: two 10-s audio windows


def chunk_segments(enc: Encoders, cfg: ExtractConfig, seconds: float = CHUNK_SECONDS) -> int:
    """Segments per chunk: the whole number of the audio encoder's windows nearest to ``seconds`` (at least one)."""
    per = enc.audio.segments_per_window if enc.audio.mode == "clip" else 1
    return per * max(1, round(seconds / (per * cfg.segment_seconds)))


def return_free_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; nothing elsewhere). A batch's
    encoder activations (~1 GB for 16 audio windows) are freed into the allocator's arenas, which keep them:
    trimmed, the RSS between batches of a 20-min parse rests at 1.7 GB instead of 2.0 GB (the peak, ~2.5-2.7
    GB, is the batch's own). Memory that grew with the length came from decord reading ahead
    (:meth:`ecma.extract.decode.VisualStream.frames`), not from here."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


@dataclass
class _Gathered:
    audio: list[np.ndarray] = field(default_factory=list)
    visual: list[np.ndarray] = field(default_factory=list)


def video_features(items: Iterable[tuple[int, str, str]], enc: Encoders, cfg: ExtractConfig, *, workers: int,
                   on_failure: Callable[[str, str, str], None], chunk: int | None = None
                   ) -> Iterator[tuple[DecodedChunk, np.ndarray, np.ndarray]]:
    """(last chunk: the video's ``n_segments`` and ``flags``; audio (T, Da); visual (T, Dv)) float32 features of
    each (index, name, path) item, in input order, every whole second kept; a video that cannot be read goes to
    ``on_failure(name, stage, reason)`` once and is not yielded. ``chunk``: segments per chunk (default
    :func:`chunk_segments`)."""
    chunk = chunk or chunk_segments(enc, cfg)
    spec = DecodeSpec(cfg.segment_seconds, None, cfg.frames_per_segment, cfg.sample_rate, enc.visual.image_size)
    ahead = max(1, -(-cfg.batch_videos // max(workers, 1)))  # every worker busy while a batch encodes
    gathered: dict[int, _Gathered] = {}
    failed: set[int] = set()

    def fail(c: DecodedChunk, stage: str, reason: str) -> None:
        if c.index not in failed:
            failed.add(c.index)
            gathered.pop(c.index, None)
            on_failure(c.name, stage, reason)

    def encode(batch: list[DecodedChunk]) -> Iterator[tuple[DecodedChunk, np.ndarray, np.ndarray]]:
        errors: list[tuple[str, str, str]] = []
        done = {id(c): f for c, f in encode_each(batch, enc, cfg, errors, encode=encode_streams)}
        reasons = iter(errors)
        for c in batch:
            if c.index in failed:
                continue
            if id(c) not in done:
                _, stage, reason = next(reasons)
                fail(c, stage, reason)
                continue
            a, v = done[id(c)]
            g = gathered.setdefault(c.index, _Gathered())
            g.audio.append(a)
            g.visual.append(v)
            if c.last:
                del gathered[c.index]
                yield (c, pad_rows(np.concatenate(g.audio), c.n_segments),
                       pad_rows(np.concatenate(g.visual), c.n_segments))
        return_free_memory()

    batch: list[DecodedChunk] = []
    for c in chunk_stream(items, spec, enc.visual.transform, chunk, workers, ahead):
        if c.error is not None:
            fail(c, *c.error)
            continue
        if c.index in failed:
            continue
        batch.append(c)
        if len(batch) >= cfg.batch_videos:
            yield from encode(batch)
            batch = []
    if batch:
        yield from encode(batch)
