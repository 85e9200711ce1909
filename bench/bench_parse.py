"""Speed of ``ecma parse``: one 10-s video end to end, and the per-video cost in a batch; with ``--minutes``,
peak memory and time of parsing one long video.

    .venv/bin/python bench/bench_parse.py [--visual ViT-B-32] [--batch 50] [--device auto] [--no-amp]
    .venv/bin/python bench/bench_parse.py --minutes 1 20 120 [--code PATH] [--work DIR]

For an image tower (``--visual``; HTSAT-tiny for audio; random init, the fingerprint says so), a checkpoint of
the default E-CMA size (d_model 256, 4 layers; untrained: the timing does not depend on the weights) is
written with that extractor's fingerprint, then:
  cold one     ``ecma parse`` on one 10-s video in a fresh process: imports, encoders built, model loaded,
               decoding worker started, outputs written: what a user waits for
  warm one     parse_videos on one video in a process that has already built the encoders (median of
               ``--repeats``)
  batch        parse_videos on ``--batch`` videos (10-s, 320x240, 30 fps, 44.1 kHz stereo) in one call, warm:
               wall time / videos is the per-video cost
  extraction   (``--compare-extract``) extract_videos on the same batch with the same extractor
  outputs      writing NAME.json, NAME.html and NAME.png for one video (part of every figure above)

``--minutes M...``: for each M, one generated M-minute video (the batch's format: 320x240, 30 fps H.264,
44.1 kHz stereo AAC; kept in ``--work`` for the next run) parsed by ``ecma parse`` in a fresh process, of the
checkout ``--code`` (default: this one; another checkout gives the figures before a change). Printed: wall
time, time per minute of video, the parse process's own peak RSS (``ru_maxrss`` from ``wait4``) and the peak
of the summed RSS of it and its children (decoding workers, ffmpeg), sampled every 0.1 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def make_videos(folder: Path, n: int) -> list[Path]:
    from media import make_video

    return [make_video(folder / f"vid{i:04d}.mp4", seconds=10, size="320x240", fps=30, sample_rate=44100,
                       channels=2, pattern="testsrc2" if i % 2 else "rgbtestsrc") for i in range(n)]


def make_long_video(path: Path, minutes: float) -> Path:
    """An M-minute video in the batch's format; a pitch that changes every second, so that seconds differ."""
    from media import make_video

    if not path.is_file():
        tmp = path.with_name("tmp-" + path.name)
        make_video(tmp, seconds=60 * minutes, size="320x240", fps=30, sample_rate=44100, channels=2)
        tmp.replace(path)
    return path


def tree_rss(pid: int) -> int:
    """Summed VmRSS (bytes) of ``pid`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = dict(line.split(":", 1) for line in (d / "status").read_text().splitlines() if ":" in line)
        except OSError:
            continue
        p = int(d.name)
        children.setdefault(int(fields["PPid"]), []).append(p)
        rss[p] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total


def parse_long(code: Path, ckpt: Path, video: Path, out: Path) -> tuple[float, int, int]:
    """(wall s, own peak RSS, peak summed RSS of the process tree) of ``ecma parse`` on one video; the sampled
    RSS over time goes to OUT/rss.tsv."""
    import threading

    env = {**os.environ, "PYTHONPATH": str(code)}
    t0 = time.perf_counter()
    # run from the checkout: `python -m` puts the working folder first on sys.path, before PYTHONPATH
    proc = subprocess.Popen([sys.executable, "-m", "ecma.cli", "parse", "--checkpoint", str(ckpt), str(video),
                             "--output-dir", str(out), "--quiet"], env=env, cwd=code)
    peak, trace = [0], []

    def sample() -> None:
        while proc.returncode is None:
            rss = tree_rss(proc.pid)
            peak[0] = max(peak[0], rss)
            trace.append(f"{time.perf_counter() - t0:.1f}\t{rss / 1e9:.3f}")
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    sampler.join()
    out.mkdir(parents=True, exist_ok=True)
    (out / "rss.tsv").write_text("seconds\ttree RSS GB\n" + "\n".join(trace) + "\n")
    if proc.returncode != 0:
        raise SystemExit(f"ecma parse exited with {proc.returncode} on {video}")
    return wall, usage.ru_maxrss * 1024, peak[0]


def long_videos(args) -> None:
    import torch

    work = Path(args.work or tempfile.mkdtemp(prefix="bench-parse-long-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    code = Path(args.code).resolve() if args.code else REPO
    commit = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", str(code), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    ckpt = work / f"model-{args.visual}.pt"
    if not ckpt.is_file():
        write_checkpoint(ckpt, args.visual, args.device, not args.no_amp)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; "
          f"visual {args.visual}, audio HTSAT-tiny (random init); code {code} at {commit}{' (modified)' if dirty else ''}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    print("| video | wall | per minute of video | parse process peak RSS | process tree peak RSS | load average before, after |")
    print("|---|---|---|---|---|---|", flush=True)
    for minutes in args.minutes:
        video = make_long_video(work / f"long-{minutes:g}min.mp4", minutes)
        before = os.getloadavg()[0]
        wall, own, tree = parse_long(code, ckpt, video, work / f"out-{minutes:g}min")
        print(f"| {minutes:g} min | {wall:.0f} s | {wall / minutes:.1f} s | {own / 1e9:.2f} GB | {tree / 1e9:.2f} GB | "
              f"{before:.1f}, {os.getloadavg()[0]:.1f} |", flush=True)


def write_checkpoint(path: Path, visual: str, device: str, amp: bool) -> None:
    from ecma.config import EcmaConfig, ExtractConfig, ModelConfig
    from ecma.data.classes import LLP_CLASSES
    from ecma.extract.pipeline import build_encoders, fingerprint_of
    from ecma.models.factory import build_network
    from ecma.models.checkpoint import save_checkpoint

    ex = ExtractConfig(visual_model=visual, device=device, amp=amp)
    enc = build_encoders(ex)
    cfg = EcmaConfig(model=ModelConfig(audio_dim=enc.audio.dim, visual_dim=enc.visual.dim), extract=ex)
    save_checkpoint(path, build_network(cfg).eval(), cfg, classes=LLP_CLASSES,
                    fingerprint=fingerprint_of(ex, enc))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--visual", default="ViT-B-32")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--no-amp", action="store_true")
    ap.add_argument("--repeats", type=int, default=5, help="runs of the warm one-video parse")
    ap.add_argument("--compare-extract", action="store_true",
                    help="also extract the batch into a shard with the same extractor (this VM's speed drifts: the "
                         "difference to parse is only meaningful within one run)")
    ap.add_argument("--minutes", type=float, nargs="+",
                    help="instead: peak memory and time of parsing one generated video of each length (minutes)")
    ap.add_argument("--code", help="with --minutes: the ecma checkout whose `ecma parse` runs (default: this one)")
    ap.add_argument("--work", help="with --minutes: folder for the videos, checkpoint and outputs (kept between runs)")
    args = ap.parse_args()
    if args.minutes:
        return long_videos(args)

    import torch

    from ecma.parse import parse_videos

    work = Path(tempfile.mkdtemp(prefix="bench-parse-"))
    videos = make_videos(work / "videos", max(args.batch, 1))
    ckpt = work / "model.pt"
    write_checkpoint(ckpt, args.visual, args.device, not args.no_amp)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; visual {args.visual}, audio HTSAT-tiny (random init); "
          f"amp {not args.no_amp}; load average {os.getloadavg()[0]:.1f}", flush=True)

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ecma.cli", "parse", "--checkpoint", str(ckpt), str(videos[0]),
                    "--output-dir", str(work / "cold"), "--quiet"], check=True, env=env, cwd=REPO)
    cold = time.perf_counter() - t0
    print(f"cold one (fresh process, end to end): {cold:.1f} s", flush=True)

    parse_videos(ckpt, videos[:1], work / "warmup", progress=False)  # encoders built and cached
    warm = []
    for _ in range(args.repeats):  # this shared VM's speed drifts: the median of a few
        t0 = time.perf_counter()
        parse_videos(ckpt, videos[:1], work / "warm", progress=False)
        warm.append(time.perf_counter() - t0)
    print(f"warm one: median {statistics.median(warm):.2f} s, min {min(warm):.2f} s of {len(warm)}", flush=True)

    t0 = time.perf_counter()
    report = parse_videos(ckpt, videos[: args.batch], work / "batch", progress=True)
    batch = time.perf_counter() - t0
    assert len(report.parsed) == args.batch and not report.failed
    print(f"batch of {args.batch}: {batch:.1f} s, {batch / args.batch:.2f} s per video "
          f"({args.batch / batch:.2f} videos/s)", flush=True)

    import json

    from ecma.io import write_json
    if args.compare_extract:
        from ecma.extract import extract_videos
        from ecma.models.checkpoint import load_model

        ex = dataclasses.replace(load_model(ckpt)[1].extract, n_segments=None)  # every second, as parse reads them
        t0 = time.perf_counter()
        extract_videos(videos[: args.batch], work / "shard.h5", ex, progress=False)
        extract = time.perf_counter() - t0
        print(f"extraction alone, same batch: {extract:.1f} s, {extract / args.batch:.2f} s per video; parse adds "
              f"{(batch - extract) / args.batch:.2f} s per video", flush=True)

    from ecma.parse.page import write_page
    from ecma.parse.timeline_png import plot_timeline

    record = json.loads((work / "warm" / "vid0000.json").read_text())
    t0 = time.perf_counter()
    for _ in range(5):
        write_json(work / "o.json", record)
        write_page(work / "o.html", record, str(videos[0]))
        plot_timeline(record, work / "o.png")
    print(f"outputs (json + html + png) per video: {(time.perf_counter() - t0) / 5:.2f} s", flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}; work folder: {work}")


if __name__ == "__main__":
    main()
