"""The demo dataset: small synthetic videos in LLP's exact file formats, deterministic for a seed.

Each clip is ``duration`` one-second segments of real H.264/AAC mp4 (96x96 pixels, 8 fps, 16 kHz mono),
encoded by the ``ffmpeg`` binary. Eight LLP classes each have a visual signature (a filled square of a
saturated class colour in a class cell of a 3x3 grid, on a grey background) and an audio signature (a pure
tone at a class frequency, the frequencies a fifth or more apart). Per video, one to three classes occur,
each audible only, visible only, or both, in one run of two to six seconds per modality; the runs are the
segment-level truth of the eval csvs, their union the weak label of the split csvs.

Naming, as raw LLP: videos are ``videos/<id>.mp4`` while the csvs say ``<id>_0_<duration>``, the id being 11
characters: ``demo`` + split (``tr``, ``va``, ``te``) + a 5-digit index, e.g. ``demotr00003_0_10``.
Every video is drawn from its own random stream (seed, split, index), so a bigger split adds videos and
leaves the others byte-identical.
"""

from __future__ import annotations

import os
import re
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
from ecma.io import atomic_path

# class -> (RGB colour, square's cell (row, col) in a 3x3 grid, tone frequency in Hz)
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
CELL = SIZE // 3
FPS = 8
SAMPLE_RATE = 16000
SEGMENTS = 10
BACKGROUND = (60, 60, 60)
TONE_AMPLITUDE = 0.25  # of full scale: three tones at once stay below clipping
NOISE_STD = 0.01  # a faint noise floor, so that silence is not digital zero

SPLITS = {"train": "tr", "val": "va", "test": "te"}
_DEMO_ID = re.compile(r"^demo(tr|va|te)\d{5}$")
MIN_DURATION = 6  # the longest event run


@dataclass
class DemoVideo:
    filename: str  # annotation filename, <id>_0_<duration>
    split: str
    audio: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # class -> [(onset, offset)], end exclusive
    visual: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    @property
    def video_id(self) -> str:
        return self.filename.rsplit("_", 2)[0]

    @property
    def labels(self) -> list[str]:
        """The weak label: every class audible or visible somewhere, in ``DEMO_CLASSES`` order."""
        return [c for c in DEMO_CLASSES if c in self.audio or c in self.visual]


@dataclass
class DemoDataset:
    root: Path
    videos_dir: Path
    videos: list[DemoVideo]
    csvs: dict[str, Path]  # train, val, test, full, eval_audio, eval_visual


def _rng(seed: int, split: str, index: int, stream: int) -> np.random.Generator:
    # stream 0 plans the events, stream 1 draws the audio noise: one video's draws never shift another's
    return np.random.default_rng([seed, list(SPLITS).index(split), index, stream])


def _run(rng: np.random.Generator, duration: int) -> tuple[int, int]:
    length = int(rng.integers(2, 7))
    onset = int(rng.integers(0, duration - length + 1))
    return onset, onset + length


def plan_video(split: str, index: int, seed: int, duration: int = SEGMENTS) -> DemoVideo:
    """Which class is audible and visible when in one video: its truth, before any file exists."""
    rng = _rng(seed, split, index, 0)
    video = DemoVideo(f"demo{SPLITS[split]}{index:05d}_0_{duration}", split)
    for c in rng.choice(list(DEMO_CLASSES), size=int(rng.integers(1, 4)), replace=False):
        c = str(c)
        kind = rng.choice(["audio", "visual", "both"])
        if kind in ("audio", "both"):
            video.audio[c] = [_run(rng, duration)]
        if kind in ("visual", "both"):
            # an audio-visual event is often, not always, seen and heard at the same seconds
            synced = kind == "both" and rng.random() < 0.6
            video.visual[c] = list(video.audio[c]) if synced else [_run(rng, duration)]
    return video


def plan_videos(n_train: int, n_val: int, n_test: int, seed: int, duration: int = SEGMENTS) -> list[DemoVideo]:
    """Every video's plan, train then val then test."""
    counts = {"train": n_train, "val": n_val, "test": n_test}
    return [plan_video(split, i, seed, duration) for split in SPLITS for i in range(counts[split])]


def _active(runs: dict[str, list[tuple[int, int]]], t: int) -> list[str]:
    return [c for c, rs in runs.items() if any(a <= t < b for a, b in rs)]


def render_frames(video: DemoVideo, duration: int = SEGMENTS) -> np.ndarray:
    """(duration * FPS, SIZE, SIZE, 3) uint8 frames: each second shows the squares of its visible classes."""
    frames = np.empty((duration * FPS, SIZE, SIZE, 3), np.uint8)
    for t in range(duration):
        frame = np.empty((SIZE, SIZE, 3), np.uint8)
        frame[:] = BACKGROUND
        for c in _active(video.visual, t):
            colour, (row, col), _ = DEMO_CLASSES[c]
            # a 3-pixel margin keeps neighbouring squares apart through the codec's chroma subsampling
            frame[row * CELL + 3 : (row + 1) * CELL - 3, col * CELL + 3 : (col + 1) * CELL - 3] = colour
        frames[t * FPS : (t + 1) * FPS] = frame
    return frames


def render_audio(video: DemoVideo, seed: int, duration: int = SEGMENTS) -> np.ndarray:
    """(duration * SAMPLE_RATE,) int16 mono: the class tones of the audible events over faint noise."""
    index = int(video.video_id[-5:])
    rng = _rng(seed, video.split, index, 1)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10 ms ramps: no clicks at segment edges
    out = rng.normal(0.0, NOISE_STD, duration * SAMPLE_RATE)
    for s in range(duration):
        for c in _active(video.audio, s):
            out[s * SAMPLE_RATE : (s + 1) * SAMPLE_RATE] += TONE_AMPLITUDE * fade * np.sin(2 * np.pi * DEMO_CLASSES[c][2] * t)
    return (np.clip(out, -1.0, 1.0) * 32767).astype(np.int16)


def _ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise EcmaError("ffmpeg not found on PATH: the demo videos are encoded with it (Debian: apt-get install ffmpeg)")
    return path


def write_video(path: Path, frames: np.ndarray, audio: np.ndarray) -> None:
    """Encode frames (piped raw) and audio as H.264/AAC mp4 with the ffmpeg binary, bit-exact for the same input."""
    ffmpeg = _ffmpeg()
    height, width = frames.shape[1:3]
    with tempfile.TemporaryDirectory(prefix="ecma-demo-") as tmp:
        # stdin carries the frames; the samples go through a WAV file (one pipe per process)
        wav = Path(tmp) / "audio.wav"
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SAMPLE_RATE)
            w.writeframes(audio.tobytes())
        part = path.with_name(f".{path.name}.part.mp4")
        cmd = [
            ffmpeg, "-nostdin", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(FPS), "-i", "-",
            "-i", str(wav),
            # one thread per encoder: x264's output then does not depend on the machine's core count
            "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p", "-threads", "1",
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
    with atomic_path(path) as tmp:
        tmp.write_text(header + "\n" + "".join(r + "\n" for r in rows))


def write_annotations(root: Path, videos: list[DemoVideo]) -> dict[str, Path]:
    """The six LLP csvs: weak labels of every split, segment truth (one row per run) of val and test."""
    csvs = {
        "train": root / "AVVP_train.csv", "val": root / "AVVP_val_pd.csv", "test": root / "AVVP_test_pd.csv",
        "full": root / "AVVP_dataset_full.csv",
        "eval_audio": root / "AVVP_eval_audio.csv", "eval_visual": root / "AVVP_eval_visual.csv",
    }
    weak = {v.filename: f"{v.filename}\t{','.join(v.labels)}" for v in videos}
    for split in SPLITS:
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


def _check_sizes(n_train: int, n_val: int, n_test: int, seed: int, duration: int) -> None:
    for name, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test), ("seed", seed), ("duration", duration)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise EcmaError(f"demo dataset: {name} must be a whole number, got {value!r}")
    if min(n_train, n_val, n_test) < 1:
        raise EcmaError(
            f"demo dataset: needs at least one video in each of train, val and test "
            f"(n_train={n_train}, n_val={n_val}, n_test={n_test})"
        )
    if max(n_train, n_val, n_test) > 99999:
        raise EcmaError("demo dataset: at most 99999 videos per split (the ids have 5 digits)")
    if seed < 0:
        raise EcmaError(f"demo dataset: seed must be >= 0, got {seed}")
    if duration < MIN_DURATION:
        raise EcmaError(f"demo dataset: duration must be at least {MIN_DURATION} seconds (the longest event), got {duration}")


def make_demo_dataset(
    out_dir: str | os.PathLike,
    *,
    n_train: int = 48,
    n_val: int = 16,
    n_test: int = 16,
    seed: int = 0,
    duration: int = SEGMENTS,
    progress: bool = True,
    workers: int | None = None,
) -> DemoDataset:
    """Write ``out_dir/videos/<id>.mp4`` and the six LLP csvs into ``out_dir``.

    Demo videos of an earlier, bigger run in the same folder are deleted (the workflow would find them
    without annotation rows); other files are left alone. ``workers`` ffmpeg processes run at once
    (default: the number of CPUs, at most 8).
    """
    _check_sizes(n_train, n_val, n_test, seed, duration)
    _ffmpeg()
    root = Path(out_dir)
    videos_dir = root / "videos"
    try:
        videos_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise EcmaError(f"{root}: cannot create the demo dataset's videos folder here (a file is in the way)") from None
    videos = plan_videos(n_train, n_val, n_test, seed, duration)
    planned = {f"{v.video_id}.mp4" for v in videos}
    for p in videos_dir.iterdir():
        if p.suffix == ".mp4" and _DEMO_ID.match(p.stem) and p.name not in planned:
            p.unlink()

    def make(video: DemoVideo) -> None:
        frames, audio = render_frames(video, duration), render_audio(video, seed, duration)
        write_video(videos_dir / f"{video.video_id}.mp4", frames, audio)

    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:  # threads suffice: the work is in the ffmpeg processes
        list(tqdm(pool.map(make, videos), total=len(videos), desc="demo videos", unit="video", disable=not progress))
    csvs = write_annotations(root, videos)
    return DemoDataset(root, videos_dir, videos, csvs)
