"""Running the ffmpeg binary as VALOR's code does, and reading what it says about the input's streams.

VALOR calls ffmpeg twice per video: ``ffmpeg -i VIDEO -y -r 8 %06d.jpg`` (its frames) and, through
librosa and audioread, ``ffmpeg -i VIDEO -f s16le -`` (its audio). Both run here with the same arguments,
writing to a pipe instead of files; what ffmpeg prints about the input (streams, sample rate, channels,
duration) is parsed from its log the way audioread parses it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Optional

FFMPEG = "ffmpeg"


@dataclass
class FfmpegRun:
    stdout: bytes
    log: str  # ffmpeg's stderr, decoded
    returncode: int

    @property
    def input_log(self) -> str:
        """The part of the log about the input file (before the first output or stream mapping)."""
        return re.split(r"\n(?:Output #|Stream mapping:)", self.log, maxsplit=1)[0]

    def has_stream(self, kind: str) -> bool:
        """Whether the input has a ``kind`` ('Video' or 'Audio') stream."""
        return re.search(rf"Stream #\d+:\d+.*?: {kind}:", self.input_log) is not None

    def reason(self) -> str:
        """A one-line reason for a failed run: ffmpeg's last message."""
        lines = [ln.strip() for ln in self.log.splitlines() if ln.strip()]
        return (lines[-1] if lines else f"ffmpeg exited with status {self.returncode}")[:300]

    def duration(self) -> Optional[float]:
        """The input's duration in seconds, as ffmpeg reports it (None when it does not)."""
        m = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", self.input_log)
        return None if m is None else int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def ffmpeg_binary() -> str:
    found = shutil.which(FFMPEG)
    if found is None:
        raise FileNotFoundError("the ffmpeg binary is not on PATH (the valor profile decodes with it, as VALOR does)")
    return found


def run_ffmpeg(args: list[str]) -> FfmpegRun:
    """``ffmpeg ARGS`` with no standard input (as audioread runs it), output and log captured."""
    proc = subprocess.run([ffmpeg_binary(), *args], stdin=subprocess.DEVNULL, capture_output=True)
    return FfmpegRun(proc.stdout, proc.stderr.decode("utf-8", "replace"), proc.returncode)


def audioread_stream_info(log: str) -> tuple[int, int]:
    """(sample rate, channels) of the input's audio as audioread's ffmpeg backend reads them from the log
    (``audioread/ffdec.py``: the first line naming 'audio:', lower-cased; 'stereo' is 2 channels, a layout
    such as '5.1' the sum of its numbers, anything else 1), so that samples are de-interleaved exactly as
    librosa did for VALOR, layouts audioread misreads included."""
    lines = [ln.strip().lower() for ln in log.splitlines()]
    parts = []
    for ln in lines:
        if "duration:" in ln:
            parts.append(ln)
        elif "audio:" in ln:
            parts.append(ln)
            break
    s = "".join(parts)
    m = re.search(r"(\d+) hz", s)
    rate = int(m.group(1)) if m else 0
    m = re.search(r"hz, ([^,]+),", s)
    if not m:
        return rate, 0
    mode = m.group(1)
    if mode == "stereo":
        return rate, 2
    numbers = re.match(r"(\d+)\.?(\d)?", mode)
    return rate, (sum(map(int, numbers.group().split("."))) if numbers else 1)
