"""Where a number came from: package version, git commit, host, time."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

from ecma import __version__
from ecma.data.shards import now_iso


def git_commit() -> str | None:
    """The commit of the checkout the package runs from, with '+dirty' for local changes; None outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10)
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def provenance(**extra) -> dict:
    return {
        "ecma_version": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "host": platform.node(),
        "created_at": now_iso(),
        **extra,
    }
