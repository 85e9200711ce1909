"""What a video's annotation filename says: its YouTube id, and which shard it goes to.

Used by extraction, import and the workflow alike, so it sits at the bottom of the data layer.
"""

from __future__ import annotations

import hashlib
import re

_CLIP_SUFFIX = re.compile(r"^(?P<id>.+)_(?P<start>\d+(?:\.\d+)?)_(?P<end>\d+(?:\.\d+)?)$")


def youtube_id(filename: str) -> str:
    """``BjCEufrlXm4_20_30`` -> ``BjCEufrlXm4``, ``AP0061o0Nvk_101.8_111.8`` -> ``AP0061o0Nvk`` (five of LLP's
    names have fractional seconds); a name without the ``_<start>_<end>`` tail is returned as is."""
    m = _CLIP_SUFFIX.match(filename)
    return m.group("id") if m else filename


def shard_of(filename: str, n_shards: int) -> int:
    """Stable shard index of a video: adding videos never moves the old ones to another shard."""
    digest = hashlib.sha1(filename.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n_shards
