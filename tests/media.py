"""Tiny test videos made with the ffmpeg binary (Debian's), for the extraction tests and benchmark."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Optional

FFMPEG = shutil.which("ffmpeg")


def make_video(path: str | Path, *, seconds: float = 3.0, size: str = "64x48", fps: float = 10,
               audio: bool = True, video: bool = True, sample_rate: int = 16000, channels: int = 1,
               pattern: str = "testsrc2", rotate: Optional[int] = None, vfr: bool = False,
               vcodec: str = "libx264", extra: Optional[list[str]] = None) -> Path:
    """Write a video: a moving test pattern and/or a sine sweep whose pitch changes every second."""
    if FFMPEG is None:
        raise RuntimeError("ffmpeg not found")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [FFMPEG, "-hide_banner", "-loglevel", "error", "-y"]
    if video:
        cmd += ["-f", "lavfi", "-i", f"{pattern}=size={size}:rate={fps}:duration={seconds}"]
    if audio:
        # A pitch rising each second, so that 1-s segments differ.
        expr = "0.5*sin(2*PI*(220+110*floor(t))*t)"
        layout = "mono" if channels == 1 else "stereo"
        cmd += ["-f", "lavfi", "-i",
                f"aevalsrc={expr}|{expr}:s={sample_rate}:d={seconds}:c={layout}" if channels == 2
                else f"aevalsrc={expr}:s={sample_rate}:d={seconds}"]
    if video:
        if vfr:  # drop frames irregularly: variable frame rate
            cmd += ["-vf", "select='not(mod(n\\,3))+not(mod(n\\,7))'", "-vsync", "vfr"]
        cmd += ["-c:v", vcodec, "-pix_fmt", "yuv420p"]
    if audio:
        cmd += ["-c:a", "aac" if path.suffix in (".mp4", ".mov", ".mkv") else "libvorbis", "-ac", str(channels)]
    cmd += list(extra or []) + [str(path)]
    subprocess.run(cmd, check=True)
    if rotate is not None:  # rotation as container metadata, the way phones write it
        tmp = path.with_name("rot-" + path.name)
        subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-i", str(path), "-c", "copy",
                        "-metadata:s:v:0", f"rotate={rotate}", str(tmp)], check=True)
        tmp.replace(path)
    return path
