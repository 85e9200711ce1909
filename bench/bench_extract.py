"""Feature extraction speed: ours (decode once in memory, batch across videos) against the published two-step way.

    .venv/bin/python bench/bench_extract.py [--n 8] [--videos DIR] [--visual ViT-B-32] [--device auto]
                                            [--rss 4,16] [--rounds 2] [--modes clip,segment] [--no-amp]
                                            [--profile native[,valor]]

Stages, in videos/s on the same videos and encoders (random-initialised unless configured):
  decode-only   decord decoding + resize and crop (open_clip's steps, torch-free) in the worker processes
  visual-only   normalisation and the image tower on the cropped frames (T x K per video)
  audio-only    the HTSAT tower on the decoded 48 kHz audio (clip mode)
  end-to-end    extract_videos into a fresh shard, audio in clip mode and in segment mode
  published     ffmpeg dumping 8 fps JPEGs to disk, then CLIP on 10 of them per video (PIL), then the audio
                loaded again with librosa at 48 kHz and CLAP on each 1-s segment, one video at a time, in
                float32 (ours follows extract.amp: bf16 where the hardware computes it natively; --no-amp)
Peak RSS of end-to-end runs over growing numbers of videos is printed too (each in a fresh process).

``--profile native,valor`` also extracts with ``extract.profile: valor`` (VALOR's recipe: ffmpeg's 8-fps
JPEGs through a pipe, librosa's audio path, the fusion HTSAT; always float32) in the same alternating
rounds, and prints its time per video against the native profile's (audio clip mode). The stages above
are measured for the first profile named.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def make_videos(folder: Path, n: int) -> list[Path]:
    from media import make_video

    return [make_video(folder / f"vid{i:04d}.mp4", seconds=10, size="320x240", fps=30, sample_rate=44100,
                       channels=2, pattern="testsrc2" if i % 2 else "rgbtestsrc") for i in range(n)]


def published_way(videos: list[Path], enc, work: Path) -> float:
    """The two-step pipeline of the published LLP features, with our encoders; returns seconds."""
    import librosa
    import numpy as np
    import torch
    from PIL import Image

    t0 = time.perf_counter()
    for v in videos:
        frames = work / v.stem
        frames.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(v), "-vf", "fps=8",
                        str(frames / "%05d.jpg")], check=True)
        jpgs = sorted(frames.glob("*.jpg"))
        picked = [jpgs[min(i * 8 + 4, len(jpgs) - 1)] for i in range(10)]
        images = torch.stack([enc.visual.preprocess(Image.open(p)) for p in picked])
        with torch.inference_mode():
            enc.visual.tower(images)
        with warnings.catch_warnings():  # librosa's audioread fallback warns on every mp4
            warnings.simplefilter("ignore")
            wav, _ = librosa.load(str(v), sr=48000, mono=True)
        wav = np.resize(wav, 10 * 48000).astype(np.float32)
        enc.audio.encode([wav])  # the caller passes a segment-mode encoder: 10 passes
    return time.perf_counter() - t0


def rss_run(videos: list[Path], out: Path, visual: str, device: str) -> tuple[float, float]:
    """Peak RSS (MiB) of a fresh process extracting ``videos``, and of its largest decoding worker.

    Workers are sampled from /proc (VmHWM): getrusage's figure for children would count the parent's
    pages at fork time, before the worker's exec."""
    code = (
        "import os, sys, resource, threading, time\n"
        "from ecma.config import ExtractConfig\nfrom ecma.extract import extract_videos\n"
        "peak = [0]\n"
        "def watch():\n"
        "    while True:\n"
        "        for pid in os.listdir('/proc'):\n"
        "            try:\n"
        "                status = open(f'/proc/{pid}/status').read()\n"
        "            except (OSError, ValueError):\n"
        "                continue\n"
        "            f = dict(l.split(':', 1) for l in status.splitlines() if ':' in l)\n"
        "            if f.get('PPid', '').strip() == str(os.getpid()) and 'VmHWM' in f:\n"
        "                peak[0] = max(peak[0], int(f['VmHWM'].split()[0]))\n"
        "        time.sleep(0.1)\n"
        "if __name__ == '__main__':\n"
        "    threading.Thread(target=watch, daemon=True).start()\n"
        f"    cfg = ExtractConfig(visual_model={visual!r}, device={device!r})\n"
        "    extract_videos(sys.argv[2:], sys.argv[1], cfg, progress=False)\n"
        "    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "    print(me, peak[0])\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(out), *map(str, videos)], capture_output=True, text=True,
                       check=True, cwd=REPO)
    me, kids = map(int, r.stdout.split()[-2:])
    return me / 1024, kids / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=8, help="videos to generate (10 s, 320x240, 30 fps, 44.1 kHz stereo)")
    ap.add_argument("--videos", help="use the videos of this folder instead")
    ap.add_argument("--visual", default="ViT-B-32", help="open_clip model (ViT-L-14-quickgelu for real size)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rss", default="4,16", help="video counts for the peak-RSS runs ('' to skip)")
    ap.add_argument("--no-published", action="store_true")
    ap.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                    help="ours in bf16 where the hardware has it (extract.amp; the published way is always float32)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of ours and the published way")
    ap.add_argument("--modes", default="clip,segment", help="audio modes of our end-to-end runs (native profile)")
    ap.add_argument("--profile", default="native", help="extraction profiles, comma-separated (native, valor)")
    args = ap.parse_args()
    profiles = [p for p in args.profile.split(",") if p]
    if not profiles or set(profiles) - {"native", "valor"}:
        ap.error("--profile takes native and/or valor")

    import numpy as np
    import ecma  # noqa: F401  before torch, which reads ecma's OpenMP settings when it loads (ecma/runtime_env.py)
    import torch

    from ecma.config import ExtractConfig
    from ecma.extract import extract_videos
    from ecma.extract.decode import DecodeSpec
    from ecma.extract.pipeline import build_encoders
    from ecma.extract.workers import decode_stream

    work = Path(tempfile.mkdtemp(prefix="bench_extract."))
    try:
        if args.videos:
            videos = sorted(p for p in Path(args.videos).iterdir() if p.suffix in (".mp4", ".mkv", ".webm"))
        else:
            videos = make_videos(work / "videos", args.n)
        n = len(videos)
        cfg = ExtractConfig(visual_model=args.visual, workers=args.workers, batch_videos=args.batch, device=args.device,
                            amp=args.amp, profile=profiles[0])
        enc = build_encoders(cfg)
        rows = []

        def rate(label: str, seconds: float) -> None:
            rows.append((label, n / seconds, seconds))
            print(f"  {label:<40} {n / seconds:8.2f} videos/s  ({seconds:.1f} s)", flush=True)

        spec = DecodeSpec(image_size=enc.visual.image_size, profile=cfg.profile)
        items = [(i, v.stem, v) for i, v in enumerate(videos)]
        list(decode_stream(items[:1], spec, enc.visual.transform, 0))  # warm caches
        t = time.perf_counter()
        decoded = list(decode_stream(items, spec, enc.visual.transform, args.workers, prefetch=2 * args.workers))
        rate(f"decode-only ({args.workers} workers, incl. start)", time.perf_counter() - t)
        images = np.concatenate([d.images for d in decoded])
        enc.visual.encode(images[:2])
        t = time.perf_counter()
        enc.visual.encode(images)
        rate(f"visual-only ({args.visual})", time.perf_counter() - t)
        t = time.perf_counter()
        for i in range(0, n, args.batch):
            enc.audio.encode([d.waveform for d in decoded[i : i + args.batch]])
        rate("audio-only (HTSAT-tiny" + (", fusion" if cfg.profile == "valor" else ", clip mode") + ")",
             time.perf_counter() - t)
        del decoded, images

        # Ours and the published way alternate, round after round: this virtual machine's speed drifts by
        # +-20% within minutes, so only runs made side by side are compared.
        # the published way: float32 encoders, ten audio passes per video (segment mode)
        native = dataclasses.replace(cfg, profile="native")
        seg = build_encoders(dataclasses.replace(native, audio_mode="segment", amp=False))
        modes = [m for m in args.modes.split(",") if m] if "native" in profiles else []
        runs = {m: dataclasses.replace(native, audio_mode=m) for m in modes}
        if "valor" in profiles:
            runs["valor"] = dataclasses.replace(cfg, profile="valor")
        ratios = {m: [] for m in modes}
        valor_ratios = []
        for r in range(args.rounds):
            ours = {}
            for mode, c in runs.items():
                build_encoders(c)
                t = time.perf_counter()
                rep = extract_videos(videos, work / f"e2e-{mode}-{r}.h5", c, progress=False)
                assert rep.extracted == n, rep
                ours[mode] = time.perf_counter() - t
                rate(f"round {r + 1}, " + ("valor profile" if mode == "valor" else f"ours (audio {mode} mode)"), ours[mode])
            if "valor" in ours and "clip" in ours:
                valor_ratios.append(ours["valor"] / ours["clip"])
            if not args.no_published and modes:
                pub = published_way(videos, seg, work / f"jpgs{r}")
                rate(f"round {r + 1}, published two-step way", pub)
                for mode in modes:
                    ratios[mode].append(pub / ours[mode])

        rss = []
        for k in [int(x) for x in args.rss.split(",") if x]:
            vids = [videos[i % n] for i in range(k)]
            links = work / f"rss{k}"
            links.mkdir()
            for i, v in enumerate(vids):  # distinct names so that every video is extracted
                (links / f"r{i:04d}{v.suffix}").symlink_to(v)
            main_mb, kids_mb = rss_run(sorted(links.iterdir()), work / f"rss{k}.h5", args.visual, args.device)
            rss.append((k, main_mb, kids_mb))
            print(f"  peak RSS with {k:4d} videos: main {main_mb:7.0f} MiB, largest worker {kids_mb:6.0f} MiB", flush=True)

        dev = torch.cuda.get_device_name() if enc.device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()})"
        print(f"\nmachine: {dev}, {torch.get_num_threads()} torch threads; {n} videos of 10 s; "
              f"visual {args.visual}, audio HTSAT-tiny, random init; workers {args.workers}, batch {args.batch}; "
              f"ours in {enc.precision}, the published way in float32")
        print(f"{'stage':<42} {'videos/s':>9} {'seconds':>8}")
        for label, r, s in rows:
            print(f"{label:<42} {r:9.2f} {s:8.1f}")
        if valor_ratios:
            print(f"valor profile's time per video / native's (audio clip mode, {'bf16' if build_encoders(native).precision == 'bf16' else 'float32'}), "
                  f"per round: {', '.join(f'{x:.2f}x' for x in valor_ratios)}; median {statistics.median(valor_ratios):.2f}x")
        for mode, rs in ratios.items():
            if rs:
                print(f"speed-up over the published way, audio {mode} mode, per round: "
                      f"{', '.join(f'{x:.1f}x' for x in rs)}; median {statistics.median(rs):.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
