"""One writer per output: a job holds its output (a folder, or a file) for as long as it runs.

Snakemake's own lock guards a working directory against a second Snakemake, not against the jobs of a dead
one: after ``kill -9`` of Snakemake alone its jobs run on, and ``--unlock`` then ``--rerun-incomplete`` would
start a second trainer writing the same ``last.pt`` and ``model.pt``. So every job that writes an output over
time (training, extraction, import, parse) first takes that output's lock, ``.ecma-lock`` in the folder or
``.NAME.ecma-lock`` beside the file, holding the host, the process id and start time, and the command. A second
job that finds it held by a live process stops at once with one line naming that process.

A lock is stale, and taken over, when its process is gone: on the same host, no process has its pid, or the
pid now belongs to a process started at another time (a reused pid). A process on another host (a cluster
node sharing the file system) cannot be asked, so the holder touches its lock every ``HEARTBEAT_SECONDS``;
a lock from another host untouched for ``STALE_SECONDS`` (a lost node) is taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Optional

from ecma.errors import EcmaError

LOCK_NAME = ".ecma-lock"
HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 300.0  # ten missed heartbeats; generous for clock skew between nodes
WRITING_SECONDS = 5.0  # a lock without its holder's JSON this long after it was made was never finished


def lock_path(target: str | os.PathLike) -> Path:
    """Where the lock of ``target`` lives: inside a folder, beside a file."""
    target = Path(target)
    if target.is_dir() or not target.suffix:
        return target / LOCK_NAME
    return target.parent / f".{target.name}{LOCK_NAME}"


def process_start(pid: int) -> Optional[str]:
    """The start time of process ``pid`` in clock ticks since boot (Linux), None where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: count fields after its closing one
    return stat.rsplit(")", 1)[1].split()[19]


def _age(lock: Path) -> float:
    try:
        return time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return float("inf")


def _alive(holder: dict, lock: Path) -> bool:
    if "host" not in holder or "pid" not in holder:
        return _age(lock) < WRITING_SECONDS  # being written this instant, or left empty by a killed writer
    if holder["host"] != socket.gethostname():
        return _age(lock) < STALE_SECONDS
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        pass
    started = holder.get("started")
    return started is None or process_start(pid) in (None, started)


def _read(lock: Path) -> Optional[dict]:
    try:
        holder = json.loads(lock.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # half-written by a writer killed between create and write: stale
    return holder if isinstance(holder, dict) else {}


def _describe(holder: dict) -> str:
    if "pid" not in holder:
        return "a job taking the lock this instant"
    return (f"pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('since', '?')}: "
            f"{holder.get('command', '?')}")


class _Heartbeat(threading.Thread):
    """Touches the lock so that a job on another host can tell it is alive."""

    def __init__(self, lock: Path):
        super().__init__(name="ecma-lock-heartbeat", daemon=True)
        self.lock, self.stopped = lock, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(OSError):
                os.utime(self.lock)


@contextlib.contextmanager
def hold_output(target: str | os.PathLike, command: Optional[str] = None) -> Iterator[Path]:
    """Hold the lock of ``target`` while the block runs; an EcmaError naming the live holder if it is taken."""
    target = Path(target)
    lock = lock_path(target)
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": process_start(os.getpid()),
          "since": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
          "command": command or " ".join(["ecma", *sys.argv[1:2]])}
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read(lock)
            if holder is None:
                continue  # released in between: try again
            if _alive(holder, lock):
                stop = f" (kill {holder['pid']})" if "pid" in holder else ""
                raise EcmaError(f"{target}: in use by another job ({_describe(holder)}); wait for it to finish or "
                                f"stop it{stop}, then run again") from None
            # stale: move it aside atomically, so that of two jobs taking it over only one wins
            aside = lock.with_name(f"{lock.name}.stale-{os.getpid()}")
            try:
                os.replace(lock, aside)
            except FileNotFoundError:
                continue
            if _read(aside) != holder:  # another job took it over in between: put its lock back
                with contextlib.suppress(FileExistsError):
                    os.link(aside, lock)
            aside.unlink()
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    else:
        raise EcmaError(f"{target}: could not take its lock {lock} (another job keeps taking it)")
    heartbeat = _Heartbeat(lock)
    heartbeat.start()
    try:
        yield lock
    finally:
        heartbeat.stopped.set()
        if (_read(lock) or {}).get("pid") == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
