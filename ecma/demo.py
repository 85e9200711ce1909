"""The demo dataset: small synthetic videos in LLP's exact file formats, deterministic for a seed.

Each clip is 10 one-second segments of real H.264/AAC mp4 (written by the ``ffmpeg`` binary). Eight LLP
classes each have a visual signature (a filled square of a class colour at a class position) and an audio
signature (a pure tone at a class frequency). Per video, one to three classes occur, each audible only,
visible only, or both, in runs of two to six seconds; the runs are written to the eval csvs as segment-level
truth and their union to the split csvs as weak labels. Videos are stored as ``<id>.mp4`` with annotation
filenames ``<id>_0_10``, as raw LLP videos are.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ecma.errors import EcmaError

# class -> (RGB colour, square position (row, col) in a 3x3 grid, tone frequency in Hz)
DEMO_CLASSES: dict[str, tuple[tuple[int, int, int], tuple[int, int], float]] = {
    "Speech": ((230, 25, 25), (0, 0), 330.0),
    "Dog": ((25, 200, 25), (0, 2), 523.0),
    "Car": ((25, 60, 230), (2, 0), 784.0),
    "Cello": ((240, 220, 20), (2, 2), 1175.0),
    "Violin_fiddle": ((220, 30, 220), (1, 1), 1760.0),
    "Clapping": ((20, 220, 220), (0, 1), 2637.0),
    "Helicopter": ((250, 140, 20), (2, 1), 3951.0),
    "Fire_alarm": ((250, 250, 250), (1, 0), 5920.0),
}
SIZE = 96  # pixels, square frames
FPS = 8
SAMPLE_RATE = 16000
SEGMENTS = 10
BACKGROUND = (60, 60, 60)


@dataclass
class DemoVideo:
    filename: str  # annotation filename, <id>_0_<T>
    split: str
    audio: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # class -> [(onset, offset)], end exclusive
    visual: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    @property
    def video_id(self) -> str:
        return self.filename.rsplit("_", 2)[0]

    @property
    def labels(self) -> list[str]:
        return [c for c in DEMO_CLASSES if c in self.audio or c in self.visual]


@dataclass
class DemoDataset:
    root: Path
    videos_dir: Path
    videos: list[DemoVideo]
    csvs: dict[str, Path]


def _run(rng: np.random.Generator, duration: int) -> tuple[int, int]:
    length = int(rng.integers(2, 7))
    onset = int(rng.integers(0, duration - length + 1))
    return onset, onset + length


def plan_videos(n_train: int, n_val: int, n_test: int, seed: int, duration: int = SEGMENTS) -> list[DemoVideo]:
    """Which class is audible and visible when, per video: the dataset's truth, before any file exists."""
    rng = np.random.default_rng(seed)
    names = list(DEMO_CLASSES)
    videos = []
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        for _ in range(n):
            video = DemoVideo(f"demo{len(videos):07d}_0_{duration}", split)
            for c in rng.choice(names, size=int(rng.integers(1, 4)), replace=False):
                kind = rng.choice(["audio", "visual", "both"])
                if kind in ("audio", "both"):
                    video.audio[str(c)] = [_run(rng, duration)]
                if kind in ("visual", "both"):
                    # an audio-visual event is often, not always, in sync
                    video.visual[str(c)] = video.audio[str(c)] if kind == "both" and rng.random() < 0.6 else [_run(rng, duration)]
            videos.append(video)
    return videos


def _active(runs: dict[str, list[tuple[int, int]]], t: int) -> list[str]:
    return [c for c, rs in runs.items() if any(a <= t < b for a, b in rs)]


def render_frames(video: DemoVideo, duration: int = SEGMENTS) -> np.ndarray:
    """(duration * FPS, SIZE, SIZE, 3) uint8 frames."""
    frames = np.empty((duration * FPS, SIZE, SIZE, 3), np.uint8)
    cell = SIZE // 3
    for t in range(duration):
        frame = np.empty((SIZE, SIZE, 3), np.uint8)
        frame[:] = BACKGROUND
        for c in _active(video.visual, t):
            colour, (row, col), _ = DEMO_CLASSES[c]
            frame[row * cell + 3 : (row + 1) * cell - 3, col * cell + 3 : (col + 1) * cell - 3] = colour
        frames[t * FPS : (t + 1) * FPS] = frame
    return frames


def render_audio(video: DemoVideo, seed: int, duration: int = SEGMENTS) -> np.ndarray:
    """(duration * SAMPLE_RATE,) int16 mono: the class tones of the audible events over faint noise."""
    rng = np.random.default_rng([seed, int(video.filename[4:11])])
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10 ms ramps: no clicks at segment edges
    out = rng.normal(0.0, 0.01, duration * SAMPLE_RATE)
    for s in range(duration):
        for c in _active(video.audio, s):
            out[s * SAMPLE_RATE : (s + 1) * SAMPLE_RATE] += 0.25 * fade * np.sin(2 * np.pi * DEMO_CLASSES[c][2] * t)
    return (np.clip(out, -1.0, 1.0) * 32767).astype(np.int16)


def write_video(path: Path, frames: np.ndarray, audio: np.ndarray) -> None:
    """Encode frames and audio as H.264/AAC mp4 with the ffmpeg binary, bit-exact for the same input."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise EcmaError("ffmpeg not found: the demo dataset is written with it (Debian: apt-get install ffmpeg)")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "audio.wav"
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SAMPLE_RATE)
            w.writeframes(audio.tobytes())
        part = path.with_name(f".{path.name}.part.mp4")
        cmd = [
            ffmpeg, "-nostdin", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{SIZE}x{SIZE}", "-r", str(FPS), "-i", "-",
            "-i", str(wav),
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-threads", "1",
            "-c:a", "aac", "-b:a", "64k", "-shortest",
            "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
            str(part),
        ]
        proc = subprocess.run(cmd, input=frames.tobytes(), capture_output=True)
        if proc.returncode != 0:
            part.unlink(missing_ok=True)
            raise EcmaError(f"{path}: ffmpeg failed: {proc.stderr.decode(errors='replace').strip()[:300]}")
        os.replace(part, path)


def _write_tsv(path: Path, header: str, rows: list[str]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(header + "\n" + "".join(r + "\n" for r in rows))
    os.replace(tmp, path)


def write_annotations(root: Path, videos: list[DemoVideo]) -> dict[str, Path]:
    csvs = {
        "train": root / "AVVP_train.csv", "val": root / "AVVP_val_pd.csv", "test": root / "AVVP_test_pd.csv",
        "full": root / "AVVP_dataset_full.csv",
        "eval_audio": root / "AVVP_eval_audio.csv", "eval_visual": root / "AVVP_eval_visual.csv",
    }
    weak = {v.filename: f"{v.filename}\t{','.join(v.labels)}" for v in videos}
    for split in ("train", "val", "test"):
        _write_tsv(csvs[split], "filename\tevent_labels", [weak[v.filename] for v in videos if v.split == split])
    _write_tsv(csvs["full"], "filename\tevent_labels", list(weak.values()))
    for modality in ("audio", "visual"):
        rows = [
            f"{v.filename}\t{a}\t{b}\t{c}"
            for v in videos if v.split != "train"
            for c, runs in getattr(v, modality).items() for a, b in runs
        ]
        _write_tsv(csvs[f"eval_{modality}"], "filename\tonset\toffset\tevent_labels", rows)
    return csvs


def make_demo_dataset(
    out_dir: str | os.PathLike,
    *,
    n_train: int = 48,
    n_val: int = 16,
    n_test: int = 16,
    seed: int = 0,
    duration: int = SEGMENTS,
    progress: bool = True,
    workers: int = 2,
) -> DemoDataset:
    """Write ``out_dir/videos/<id>.mp4`` and the LLP-format csvs; existing identical videos are kept."""
    if min(n_train, n_val, n_test) < 1:
        raise EcmaError("the demo dataset needs at least one video in each of train, val and test")
    if duration < 6:
        raise EcmaError("demo videos need at least 6 seconds (events last 2 to 6 seconds)")
    root = Path(out_dir)
    videos_dir = root / "videos"
    videos_dir.mkdir(parents=True, exist_ok=True)
    videos = plan_videos(n_train, n_val, n_test, seed, duration)

    def make(video: DemoVideo) -> None:
        write_video(videos_dir / f"{video.video_id}.mp4", render_frames(video, duration), render_audio(video, seed, duration))

    with ThreadPoolExecutor(max_workers=workers) as pool:  # the work is in the ffmpeg processes
        list(tqdm(pool.map(make, videos), total=len(videos), desc="demo videos", unit="video", disable=not progress))
    csvs = write_annotations(root, videos)
    return DemoDataset(root, videos_dir, videos, csvs)
