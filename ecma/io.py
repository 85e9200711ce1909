"""Atomic output: write to a temporary name beside the target, rename on success.

A crash, a kill or an error mid-write then never leaves a truncated file under the final name, and
an older output of the same name stays intact until the new one is complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``target`` if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file owner-only; give it the permissions a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(target: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def remove_stale_temporaries(target: str | os.PathLike) -> list[Path]:
    """Delete what a killed writer of ``target`` left (its ``.NAME.*.tmp`` files); returns them.

    Each output has one writer at a time (Snakemake's lock; one job per output), so any such file
    found when a new write of the same target begins is debris of an earlier, interrupted one.
    """
    target = Path(target)
    stale = list(target.parent.glob(f".{glob_escape(target.name)}.*.tmp")) if target.parent.is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def content_id(path: str | os.PathLike) -> str:
    """A file's content identity: its size and the BLAKE2b digest of its bytes (``SIZE:HEX``).

    Hashing reads the file once, far cheaper than decoding it; a file copied over another under the
    same name therefore never keeps the old file's features.
    """
    h = hashlib.blake2b(digest_size=16)
    size = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
            size += len(block)
    return f"{size}:{h.hexdigest()}"
