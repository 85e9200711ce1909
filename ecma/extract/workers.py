"""Decoding in worker processes, overlapping with encoding in the main process.

Workers import no torch (see :mod:`ecma.extract.transform`), so a pool starts in well under a second.
At most ``prefetch`` videos are decoded ahead of the consumer, so memory stays flat however many videos
there are. Results come back in input order. A worker that dies (a decoder crash on a hostile file) is
replaced; the videos it had in hand are retried one at a time so that only the culprit fails.
"""

from __future__ import annotations

import collections
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from ecma.errors import EcmaError
from ecma.extract.decode import DecodeSpec, decode_video
from ecma.extract.decoded import DecodedVideo
from ecma.extract.transform import ImageTransform

_SPEC: Optional[DecodeSpec] = None
_TRANSFORM: Optional[ImageTransform] = None


def _init(spec: DecodeSpec, transform: Optional[ImageTransform]) -> None:
    global _SPEC, _TRANSFORM
    _SPEC, _TRANSFORM = spec, transform


def _work(item: tuple[int, str, str]) -> DecodedVideo:
    return decode_video(*item, _SPEC, _TRANSFORM)


def decoded_batches(items: Iterable[tuple[int, str, str | Path]], spec: DecodeSpec, transform: Optional[ImageTransform],
                    workers: int, batch_videos: int, on_failure: Callable[[DecodedVideo], None]) -> Iterator[list[DecodedVideo]]:
    """Decoded videos in input order, ``batch_videos`` at a time (the last batch may be smaller), the next ones
    decoding in the workers while the caller encodes a batch; a video that fails to decode goes to
    ``on_failure`` and into no batch. Extraction and ``ecma parse`` both consume it."""
    prefetch = max(2 * max(workers, 1), batch_videos + workers)  # every worker busy while a batch encodes
    batch: list[DecodedVideo] = []
    for d in decode_stream(items, spec, transform, workers, prefetch=prefetch):
        if d.error is not None:
            on_failure(d)
            continue
        batch.append(d)
        if len(batch) >= batch_videos:
            yield batch
            batch = []
    if batch:
        yield batch


def decode_stream(items: Iterable[tuple[int, str, str | Path]], spec: DecodeSpec, transform: Optional[ImageTransform],
                  workers: int, prefetch: int = 8) -> Iterator[DecodedVideo]:
    """Decode (index, name, path) items, yielding DecodedVideo in input order."""
    items = [(i, n, str(p)) for i, n, p in items]
    if workers <= 0:
        for it in items:
            yield decode_video(*it, spec, transform)
        return
    ctx = mp.get_context("spawn")  # never fork a process that holds torch threads

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init, initargs=(spec, transform))

    pool = new_pool()
    any_ok = False  # a pool that never decoded anything and breaks again is broken itself, not a file
    pending: collections.deque = collections.deque()
    todo = collections.deque(items)
    try:
        while todo or pending:
            while todo and len(pending) < max(prefetch, workers):
                it = todo.popleft()
                pending.append((it, pool.submit(_work, it)))
            it, fut = pending.popleft()
            try:
                result = fut.result()
                any_ok = True
                yield result
            except BrokenProcessPool:
                # Every video in flight is lost with the pool; retry each alone to find the one that kills it.
                pool.shutdown(cancel_futures=True)
                suspects = [it] + [p[0] for p in pending]
                pending.clear()
                for s in suspects:
                    pool = new_pool()
                    try:
                        result = pool.submit(_work, s).result()
                        any_ok = True
                        yield result
                    except BrokenProcessPool:
                        pool.shutdown(cancel_futures=True)
                        if not any_ok:
                            raise EcmaError(
                                "extract: the decoding worker processes fail to start (run with workers: 0 to see "
                                "why; a script that calls extract_videos needs an `if __name__ == '__main__':` guard)"
                            ) from None
                        yield DecodedVideo(index=s[0], name=s[1], error=("decode", "the decoder crashed on this file"))
                        pool = None
                    if pool is not None:
                        pool.shutdown()
                pool = new_pool()
    finally:
        pool.shutdown(cancel_futures=True)
