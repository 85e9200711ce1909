"""Decoding in worker processes, overlapping with encoding in the main process.

Workers import no torch (see :mod:`ecma.extract.transform`), so a pool starts in well under a second.
At most ``prefetch`` videos are decoded ahead of the consumer, so memory stays flat however many videos
there are. Results come back in input order. A worker that dies (a decoder crash on a hostile file) is
replaced; the videos it had in hand are retried one at a time so that only the culprit fails.

:func:`chunk_stream` does the same for videos decoded in chunks (:mod:`ecma.extract.chunks`): a chunk of a
long video is decoded while the one before is encoded, and memory is bounded in chunks, not videos.
"""

from __future__ import annotations

import collections
import multiprocessing as mp
import os
import queue
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from ecma.errors import EcmaError
from ecma.extract.chunks import DecodedChunk, decode_chunks
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


_START_FAILED = (
    "the decoding worker processes fail to start (run with workers: 0 to see why; a script that calls "
    "extract_videos or parse_videos needs an `if __name__ == '__main__':` guard)")


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
                            raise EcmaError(f"extract: {_START_FAILED}") from None
                        yield DecodedVideo(index=s[0], name=s[1], error=("decode", "the decoder crashed on this file"))
                        pool = None
                    if pool is not None:
                        pool.shutdown()
                pool = new_pool()
    finally:
        pool.shutdown(cancel_futures=True)


# --- videos in chunks ------------------------------------------------------------------------------------
_READY = "ready"


def _serve_chunks(tasks, out, spec: DecodeSpec, transform: Optional[ImageTransform], chunk_segments: int,
                  ahead: int) -> None:
    """A decoding process: (index, name, path) items from ``tasks`` (None: stop), each video's chunks in order
    to ``out``, with up to ``ahead`` chunks decoded before the consumer takes them."""
    out.send(_READY)
    ready: queue.Queue = queue.Queue(maxsize=ahead)

    def send() -> None:
        while (chunk := ready.get()) is not None:
            try:
                out.send(chunk)
            except OSError:  # the consumer has gone (it stopped early): so has the reason to decode
                os._exit(0)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    while (item := tasks.recv()) is not None:
        for chunk in decode_chunks(*item, spec, transform, chunk_segments):
            ready.put(chunk)
    ready.put(None)
    sender.join()


class _ChunkWorker:
    """One decoding process and its two pipes: videos in, chunks out."""

    def __init__(self, ctx, spec, transform, chunk_segments: int, ahead: int):
        task_r, self._tasks = ctx.Pipe(duplex=False)
        self._out, out_w = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_serve_chunks, args=(task_r, out_w, spec, transform, chunk_segments, ahead),
                                 daemon=True)
        self._proc.start()
        task_r.close()  # the child holds its own ends: when it dies, reading ``_out`` ends in EOFError
        out_w.close()
        self.started = False

    def send(self, item) -> None:
        self._tasks.send(item)

    def receive(self) -> DecodedChunk:
        """The next chunk; EOFError if the process died (before it started, ``started`` is still False)."""
        if not self.started:
            if self._out.recv() != _READY:
                raise EOFError("the decoding process did not start")
            self.started = True
        return self._out.recv()

    def stop(self) -> None:
        try:
            self._tasks.send(None)
        except (OSError, ValueError):
            pass
        self._tasks.close()
        self._out.close()  # a process blocked on sending a chunk nobody takes gets an error and ends
        self._proc.join(timeout=2)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()


def chunk_stream(items: Iterable[tuple[int, str, str | Path]], spec: DecodeSpec, transform: Optional[ImageTransform],
                 chunk_segments: int, workers: int, ahead: int = 2) -> Iterator[DecodedChunk]:
    """The chunks of each video (:func:`ecma.extract.chunks.decode_chunks`), video after video in input
    order. With ``workers`` > 0, video i is decoded in process i mod ``workers``, each process up to ``ahead``
    chunks ahead of the consumer and on to its next video, so that decoding overlaps encoding. A process that
    dies fails the video it was decoding (one error chunk) and is replaced for the videos after it."""
    items = [(i, n, str(p)) for i, n, p in items]
    if workers <= 0:
        for it in items:
            yield from decode_chunks(*it, spec, transform, chunk_segments)
        return
    ctx = mp.get_context("spawn")  # never fork a process that holds torch threads
    n = min(workers, len(items))

    def start(first: int) -> _ChunkWorker:
        """A process for videos first, first + n, ...: the first two are queued (it starts the second while
        the first is consumed); one more is queued each time a video is done."""
        w = _ChunkWorker(ctx, spec, transform, chunk_segments, ahead)
        for it in items[first : first + 2 * n : n]:
            w.send(it)
        return w

    pool: list[Optional[_ChunkWorker]] = [None] * n
    try:
        for slot in range(n):
            pool[slot] = start(slot)
        for j, it in enumerate(items):
            w = pool[j % n]
            while True:
                try:
                    chunk = w.receive()
                except (EOFError, OSError):
                    if not w.started:
                        raise EcmaError(_START_FAILED) from None
                    w.stop()
                    pool[j % n] = start(j + n)
                    yield DecodedChunk(index=it[0], name=it[1], error=("decode", "the decoder crashed on this file"),
                                       last=True)
                    break
                yield chunk
                if chunk.last:
                    if j + 2 * n < len(items):
                        w.send(items[j + 2 * n])
                    break
    finally:
        for w in pool:
            if w is not None:
                w.stop()
