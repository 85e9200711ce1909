"""What a published feature format is: its streams (folder, shape, conversion) and its fingerprint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

IMPORTER_VERSION = 1  # bump when the numbers an import writes change: shards of another version never mix


@dataclass(frozen=True)
class Stream:
    role: str  # the shard dataset it becomes: 'audio', 'visual' or 'visual_3d'
    folder: str  # under the root; files are <YouTube id>.npy
    shape: tuple[int, int]  # as published
    what: str  # the features, for the fingerprint
    convert: Optional[Callable[[np.ndarray], np.ndarray]] = None  # published array -> stored array
    conversion: Optional[str] = None  # what ``convert`` does, for the fingerprint


@dataclass(frozen=True)
class FeatureFormat:
    name: str
    streams: tuple[Stream, ...]
    frames_per_segment: int = 1  # visual rows per segment
    n_segments: int = 10

    def fingerprint(self) -> dict:
        """The shard fingerprint: an imported shard never mixes with extracted ones or other formats."""
        streams = {}
        for s in self.streams:
            d = {"folder": s.folder, "published_shape": list(s.shape), "features": s.what}
            if s.conversion:
                d["conversion"] = s.conversion
            streams[s.role] = d
        return {
            "source": "import",
            "format": self.name,
            "importer_version": IMPORTER_VERSION,
            "streams": streams,
            "n_segments": self.n_segments,
            "frames_per_segment": self.frames_per_segment,
            "dtype": "float32",
        }
