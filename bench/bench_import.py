"""Import speed: all 11,849 LLP videos in VALOR's layout (generated files of the real shapes) into one shard.

    .venv/bin/python bench/bench_import.py [--n 11849] [--rss 1000,11849] [--rounds 2] [--format valor]
                                          [--workdir DIR] [--keep]

Generates ROOT/CLIP/features/<id>.npy (10, 768) and ROOT/CLAP/features/<id>.npy (64, 768) float32 (or HAN's
three folders with --format han) for the first N videos of LLP's split csvs (../shared/data/llp, or
$ECMA_LLP_ANNOTATIONS; made-up 11-character ids where absent), then times the command

    ecma import --format valor --root ROOT --annotations train.csv val.csv test.csv --output SHARD.h5 --quiet

as a fresh process (interpreter start-up included), and prints its peak RSS for the video counts of --rss,
each in its own process: memory should not grow with the number of videos. The feature files were just
written, so they are read from the page cache (as on a machine with the data set read once before).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

SPLITS = ("AVVP_train.csv", "AVVP_val_pd.csv", "AVVP_test_pd.csv")
# VmHWM, not getrusage's ru_maxrss: the latter survives fork + exec and would report the bench's own peak
WRAPPER = (
    "import re, sys\n"
    "from ecma.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
    "print('peak_rss_kb', hwm, file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def llp_filenames(n: int) -> list[str]:
    from ecma.data.annotations import read_split
    from ecma.data.classes import LLP_CLASSES

    folder = Path(os.environ.get("ECMA_LLP_ANNOTATIONS", REPO.parent / "shared" / "data" / "llp"))
    names: list[str] = []
    if all((folder / s).is_file() for s in SPLITS):
        for s in SPLITS:
            names += read_split(folder / s, LLP_CLASSES).filenames
    else:
        print(f"(no LLP csvs in {folder}: made-up names)")
    names += [f"gen{i:08d}_0_10" for i in range(max(0, n - len(names)))]
    return names[:n]


def run_import(fmt: str, root: Path, csvs: list[Path], output: Path) -> tuple[float, int, str]:
    """(seconds, peak RSS in MB, stderr) of one `ecma import` in a fresh process."""
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    argv = ["import", "--format", fmt, "--root", str(root), "--annotations", *map(str, csvs), "--output", str(output), "--quiet"]
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", WRAPPER, *argv], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"ecma import failed ({p.returncode}): {p.stderr}")
    rss = next(int(line.split()[1]) for line in p.stderr.splitlines() if line.startswith("peak_rss_kb"))
    return seconds, rss // 1024, p.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=11849)
    ap.add_argument("--rss", default="1000,11849", help="video counts whose peak RSS to compare")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--format", default="valor", choices=("valor", "han"))
    ap.add_argument("--workdir", help="where to generate (default: a temporary folder, deleted afterwards)")
    ap.add_argument("--keep", action="store_true", help="keep the generated tree (with --workdir: reuse it)")
    args = ap.parse_args()

    sys.path.insert(0, str(REPO))
    from ecma.data.names import youtube_id
    from feature_trees import LAYOUTS, make_feature_tree, write_split_csv

    work = Path(args.workdir or tempfile.mkdtemp(prefix="ecma-bench-import-"))
    root = work / args.format
    names = llp_filenames(args.n)
    ids = list(dict.fromkeys(youtube_id(f) for f in names))
    first_folder = next(iter(LAYOUTS[args.format]))
    if (root / first_folder).is_dir() and len(list((root / first_folder).iterdir())) >= len(ids):
        print(f"reusing {root}")
    else:
        t0 = time.perf_counter()
        make_feature_tree(root, args.format, ids)
        print(f"generated {len(ids)} videos in {args.format} layout under {root} in {time.perf_counter() - t0:.1f} s")
    size = sum(f.stat().st_size for folder in LAYOUTS[args.format] for f in (root / folder).iterdir())
    print(f"{size / 1e9:.2f} GB of feature files")
    counts = sorted({min(int(c), len(names)) for c in args.rss.split(",")} | {len(names)})
    csvs = {c: write_split_csv(work / f"videos-{c}.csv", names[:c]) for c in counts}

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    for r in range(args.rounds):
        seconds, rss, err = run_import(args.format, root, [csvs[len(names)]], work / "all.h5")
        last = [line for line in err.splitlines() if "imported" in line]
        print(f"round {r + 1}: {len(names)} videos in {seconds:.1f} s ({len(names) / seconds:.0f} videos/s), "
              f"peak RSS {rss} MB; {last[-1] if last else ''}")
    print(f"shard: {(work / 'all.h5').stat().st_size / 1e9:.2f} GB")
    for c in counts:
        seconds, rss, _ = run_import(args.format, root, [csvs[c]], work / f"rss-{c}.h5")
        print(f"{c} videos: {seconds:.1f} s, peak RSS {rss} MB")
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
