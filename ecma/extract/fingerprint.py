"""The feature fingerprint: everything that decides the numbers in a shard, as a JSON-able dict.

Two extractions with equal fingerprints give interchangeable features; shards with different ones are
never mixed (see :mod:`ecma.data.shards`).
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from typing import Optional

import ecma

FINGERPRINT_VERSION = 1


@lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file (cached per path, size and modification time: checkpoints are large)."""
    st = os.stat(path)
    return _sha256(os.path.abspath(path), st.st_size, st.st_mtime_ns)


def weights_id(pretrained: Optional[str], seed: int) -> dict:
    """How an encoder's weights were obtained: random init with its seed, a local file's sha256, or a tag."""
    if pretrained is None:
        return {"weights": "random-init", "seed": int(seed)}
    if os.path.isfile(pretrained):
        return {"weights": "file", "sha256": file_sha256(pretrained)}
    return {"weights": f"pretrained:{pretrained}"}


def extractor_fingerprint(cfg, *, visual: dict, audio: dict, precision: str) -> dict:
    """The fingerprint of a run with ExtractConfig ``cfg`` and the encoders' own descriptions."""
    return {
        "fingerprint_version": FINGERPRINT_VERSION,
        "ecma_version": ecma.__version__,
        "visual": visual,
        "audio": audio,
        "segment_seconds": float(cfg.segment_seconds),
        "n_segments": cfg.n_segments,
        "frames_per_segment": int(cfg.frames_per_segment),
        "sample_rate": int(cfg.sample_rate),
        "audio_mode": cfg.audio_mode,
        "normalize": bool(cfg.normalize),
        "dtype": cfg.dtype,
        # bf16 (extract.amp where the hardware has it) and float32 give slightly different numbers.
        "precision": precision,
    }
