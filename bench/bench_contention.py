"""How `ecma` jobs fare on a shared machine: each workload alone, then beside 1 and 2 busy processes.

    .venv/bin/python bench/bench_contention.py                 # full: demo training, epoch, extraction
    .venv/bin/python bench/bench_contention.py --quick         # shorter workloads, 0 and 1 competitors
    .venv/bin/python bench/bench_contention.py --workloads demo --competitors 0,1 --repeats 2
    .venv/bin/python bench/bench_contention.py --settings new --try passive:OMP_WAIT_POLICY=PASSIVE --demo-threads 2

Workloads (each one whole process, timed from outside, its start-up included):
  demo     `ecma train` of the demo's CoLeaF variant with the demo's settings (config.yaml, datasets.demo:
           48 training videos, batch 8, 40 epochs; --quick: 8), on the demo's features (made once in
           --workdir by `ecma demo` and `ecma extract`, then reused)
  epoch    a 2,000-video LLP-shaped CoLeaF training epoch (bench/bench_train.py --variant coleaf
           --n-train 2000; --quick: 300)
  extract  `ecma extract` of 8 demo videos (--quick: 2) with the demo's encoders, into a fresh shard

Settings, run in turn for every workload and number of competitors:
  shipped  the code of --baseline (default: the last commit before the runtime defaults of
           ecma/runtime_env.py), exported with `git archive` into --workdir and put first on PYTHONPATH
  new      this checkout's code
  NAME     --try NAME:VAR=VALUE[,VAR=VALUE]: this checkout's code with those environment variables

A competitor is a plain CPU loop (`while True: pass`) in a process and session of its own (as a program
started elsewhere: where the kernel shares the CPUs between sessions first, autogroup, each gets a share
like the workload's), started just before the workload and killed just after it. Wall time is a monotonic
clock around the workload; CPU time is user + system of the workload's process and every process it waited
for (its decode workers included), from wait4. "/ alone": to the same setting's run without competitors;
"vs shipped": to shipped's run with as many competitors. Targets (issue 24): beside one competitor, wall
<= 2.2x and CPU <= 1.2x the run alone; beside two, wall <= 3.3x.

The children get this script's environment as it was at its start, with the variables that
ecma/runtime_env.py sets removed (so that the shell's values do not decide the comparison), plus the
setting's own. The load average (1 min) is printed before each run: figures taken with other work on the
machine compare the settings under that work, not the machine alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START_ENV = dict(os.environ)  # before anything imports ecma (which sets runtime defaults in os.environ)
REPO = Path(__file__).resolve().parent.parent
# The commit before ecma/runtime_env.py: what was shipped before issue 24.
DEFAULT_BASELINE = "a50ae65"
# What ecma/runtime_env.py may set, and what Snakemake sets per job: removed from the children's environment.
RUNTIME_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                "OPENBLAS_NUM_THREADS")
TARGETS = {1: (2.2, 1.2), 2: (3.3, None)}  # competitors: (wall ratio, CPU ratio) at most


@dataclasses.dataclass
class Setting:
    name: str
    code: Path  # the checkout whose ecma runs (first on PYTHONPATH)
    env: dict


@dataclasses.dataclass
class Run:
    workload: str
    setting: str
    competitors: int
    wall: float
    cpu: float
    load: float
    status: int


def log(msg: str) -> None:
    print(msg, flush=True)


def child_env(setting: Setting) -> dict:
    env = {k: v for k, v in START_ENV.items() if k not in RUNTIME_VARS}
    env["PYTHONPATH"] = str(setting.code)
    env.update(setting.env)
    return env


def export_baseline(rev: str, workdir: Path) -> Path:
    """The code of ``rev`` as files (git archive), made once per commit."""
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", f"{rev}^{{commit}}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    dest = workdir / f"baseline-{commit[:12]}"
    if not (dest / "ecma" / "__init__.py").is_file():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def ecma_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ecma.cli", *args]


def csv_names(path: Path) -> list[str]:
    """The video names (first column) of an LLP csv."""
    return [line.split("\t")[0] for line in path.read_text().splitlines()[1:] if line.strip()]


def demo_settings(code: Path) -> dict:
    """The settings of the demo's CoLeaF training (seed 0) as the config.yaml of ``code`` gives them."""
    return json.loads(_demo_settings_json(code))


@functools.cache
def _demo_settings_json(code: Path) -> str:
    return subprocess.run(
        [sys.executable, "-c",
         "import json, sys\nfrom ecma.config import load_workflow_config\n"
         "cfg = load_workflow_config(sys.argv[1]).for_dataset('demo', 'coleaf', 0)\n"
         "print(json.dumps(cfg.to_dict()))", str(code / "config.yaml")],
        # run in `code`: `python -c` puts the working directory first on sys.path, before PYTHONPATH
        cwd=str(code), env=child_env(Setting("settings", code, {})), check=True, capture_output=True, text=True).stdout


def prepare_demo(workdir: Path) -> Path:
    """The demo's videos, csvs and features (every video, named as the csvs name them), made once."""
    demo = workdir / "demo"
    done = demo / "features.ready"
    if done.is_file():
        return demo
    env = child_env(Setting("prep", REPO, {}))
    log(f"preparing the demo dataset and its features in {demo} (once) ...")
    subprocess.run(ecma_cmd("demo", "--config", str(REPO / "config.yaml"), "--dataset", "demo", "--output", str(demo),
                            "--quiet"), env=env, check=True)
    settings = json.dumps(demo_settings(REPO))
    names = [name for csv in ("AVVP_train.csv", "AVVP_val_pd.csv", "AVVP_test_pd.csv") for name in csv_names(demo / csv)]
    videos = [f"--videos={demo / 'videos' / (n.rsplit('_', 2)[0] + '.mp4')}" for n in names]
    subprocess.run(ecma_cmd("extract", "--quiet", "--settings", settings, *videos, *[f"--names={n}" for n in names],
                            "--output", str(demo / "features.h5")), env=env, check=True)
    done.write_text("ok\n")
    return demo


def workload_commands(args, demo: Path) -> dict:
    """workload -> function(setting, scratch dir) -> (argv, cwd)."""
    csvs = ["--train", str(demo / "AVVP_train.csv"), "--val", str(demo / "AVVP_val_pd.csv"),
            "--eval-audio", str(demo / "AVVP_eval_audio.csv"), "--eval-visual", str(demo / "AVVP_eval_visual.csv")]
    picked = csv_names(demo / "AVVP_train.csv")[:args.extract_videos]

    def demo_train(setting: Setting, scratch: Path):
        settings = demo_settings(setting.code)  # the shipped demo's settings for the shipped code
        settings["train"].update(epochs=args.demo_epochs, **({"threads": args.demo_threads} if args.demo_threads else {}))
        return ecma_cmd("train", "--quiet", "--settings", json.dumps(settings), "--variant", "coleaf",
                        "--features", str(demo / "features.h5"), *csvs, "--output-dir", str(scratch / "model"))

    def epoch(setting: Setting, scratch: Path):
        return [sys.executable, str(setting.code / "bench" / "bench_train.py"), "--variant", "coleaf",
                "--n-train", str(args.epoch_videos), "--output-dir", str(scratch / "epoch")]

    def extract(setting: Setting, scratch: Path):
        extract_only = json.dumps({"extract": demo_settings(setting.code)["extract"]})
        return ecma_cmd("extract", "--quiet", "--settings", extract_only,
                        *[f"--videos={demo / 'videos' / (n.rsplit('_', 2)[0] + '.mp4')}" for n in picked],
                        *[f"--names={n}" for n in picked], "--output", str(scratch / "shard.h5"))

    return {"demo": demo_train, "epoch": epoch, "extract": extract}


def start_competitors(n: int) -> list[subprocess.Popen]:
    """Busy loops, each in a session of its own: like a program started elsewhere (where the kernel shares the
    CPU between sessions first, autogroup, each such program gets a share like the workload's)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True) for _ in range(n)]


def stop_competitors(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.send_signal(signal.SIGKILL)
    for p in procs:
        p.wait()


def timed(argv: list[str], env: dict, cwd: Path, log_path: Path) -> tuple[float, float, int]:
    """(wall s, CPU s of the process and its waited-for descendants, exit status)."""
    with open(log_path, "w") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode


def run_one(workload: str, command, setting: Setting, competitors: int, workdir: Path) -> Run:
    scratch = Path(tempfile.mkdtemp(prefix=f"{workload}-{setting.name}-", dir=workdir))
    load = os.getloadavg()[0]
    procs = start_competitors(competitors)
    try:
        wall, cpu, status = timed(command(setting, scratch), child_env(setting), scratch, scratch / "log.txt")
    finally:
        stop_competitors(procs)
    if status != 0:
        log(f"  {workload} / {setting.name} failed (exit {status}); its log: {scratch / 'log.txt'}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    log(f"  {workload:8s} {setting.name:10s} competitors {competitors}: wall {wall:7.1f} s, CPU {cpu:7.1f} s "
        f"(load average before: {load:.2f})")
    return Run(workload, setting.name, competitors, wall, cpu, load, status)


def summary(runs: list[Run], settings: list[Setting], workloads: list[str], counts: list[int]) -> str:
    def med(xs):
        return statistics.median(xs) if xs else float("nan")

    lines = ["| workload | setting | competitors | wall s | CPU s | wall / alone | CPU / alone | target | wall vs shipped "
             "| runs | load before |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for w in workloads:
        for s in settings:
            alone = [r for r in runs if (r.workload, r.setting, r.competitors, r.status) == (w, s.name, 0, 0)]
            for n in counts:
                rs = [r for r in runs if (r.workload, r.setting, r.competitors, r.status) == (w, s.name, n, 0)]
                if not rs:
                    continue
                wall, cpu = med([r.wall for r in rs]), med([r.cpu for r in rs])
                ratio_w = wall / med([r.wall for r in alone]) if alone else float("nan")
                ratio_c = cpu / med([r.cpu for r in alone]) if alone else float("nan")
                verdict = ""
                if n in TARGETS and alone:
                    max_w, max_c = TARGETS[n]
                    ok = ratio_w <= max_w and (max_c is None or ratio_c <= max_c)
                    verdict = ("met" if ok else "not met") + f" (wall <= {max_w}x" + (f", CPU <= {max_c}x)" if max_c else ")")
                shipped = [r.wall for r in runs if (r.workload, r.setting, r.competitors, r.status) == (w, "shipped", n, 0)]
                vs_shipped = f"{wall / med(shipped):.2f}" if shipped and s.name != "shipped" else ""
                loads = ", ".join(f"{r.load:.1f}" for r in rs)
                lines.append(f"| {w} | {s.name} | {n} | {wall:.1f} | {cpu:.1f} | {ratio_w:.2f} | {ratio_c:.2f} | "
                             f"{verdict} | {vs_shipped} | {len(rs)} | {loads} |")
    return "\n".join(lines)


def parse_try(text: str) -> Setting:
    name, sep, assignments = text.partition(":")
    env = {}
    for item in filter(None, assignments.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise SystemExit(f"--try {text!r}: expected NAME:VAR=VALUE[,VAR=VALUE]")
        env[key] = value
    if not sep or not name:
        raise SystemExit(f"--try {text!r}: expected NAME:VAR=VALUE[,VAR=VALUE]")
    return Setting(name, REPO, env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="shorter workloads (demo 8 epochs, epoch 300 videos, extract 2 videos), 0 and 1 competitors")
    ap.add_argument("--workloads", default="demo,epoch,extract")
    ap.add_argument("--competitors", help="numbers of busy processes beside the workload (default 0,1,2; --quick 0,1)")
    ap.add_argument("--settings", default="shipped,new", help="which of shipped, new to run (comma-separated; '' for none)")
    ap.add_argument("--try", dest="tries", action="append", default=[], metavar="NAME:VAR=VALUE[,VAR=VALUE]",
                    help="also run this checkout with these environment variables (repeatable)")
    ap.add_argument("--baseline", default=DEFAULT_BASELINE, help="the commit run as 'shipped'")
    ap.add_argument("--repeats", type=int, default=1, help="runs of each cell (the median is reported)")
    ap.add_argument("--demo-epochs", type=int)
    ap.add_argument("--demo-threads", type=int, help="train.threads of the demo runs (default: the demo's config)")
    ap.add_argument("--epoch-videos", type=int)
    ap.add_argument("--extract-videos", type=int)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "ecma-bench-contention")
    args = ap.parse_args()
    args.demo_epochs = args.demo_epochs or (8 if args.quick else 40)
    args.epoch_videos = args.epoch_videos or (300 if args.quick else 2000)
    args.extract_videos = args.extract_videos or (2 if args.quick else 8)
    counts = [int(c) for c in (args.competitors or ("0,1" if args.quick else "0,1,2")).split(",")]
    if 0 not in counts:
        counts.insert(0, 0)  # the ratios need the run alone
    workloads = [w for w in args.workloads.split(",") if w]
    args.workdir.mkdir(parents=True, exist_ok=True)

    settings = []
    for name in filter(None, args.settings.split(",")):
        if name == "shipped":
            settings.append(Setting("shipped", export_baseline(args.baseline, args.workdir), {}))
        elif name == "new":
            settings.append(Setting("new", REPO, {}))
        else:
            raise SystemExit(f"--settings: unknown {name!r} (shipped, new; others with --try)")
    settings += [parse_try(t) for t in args.tries]

    demo = prepare_demo(args.workdir)
    commands = workload_commands(args, demo)
    unknown = set(workloads) - set(commands)
    if unknown:
        raise SystemExit(f"--workloads: unknown {', '.join(sorted(unknown))} ({', '.join(commands)})")
    log(f"{os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), load average now "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}; demo {args.demo_epochs} epochs, epoch "
        f"{args.epoch_videos} videos, extract {args.extract_videos} videos; {args.repeats} run(s) per cell")
    if os.getloadavg()[0] > 0.5:
        log("note: the machine is not idle (load average above 0.5): the figures compare the settings under this "
            "load; 'alone' means without the bench's competitors, not on an idle machine")
    runs = []
    for workload in workloads:
        for n in counts:
            for _ in range(args.repeats):
                for setting in settings:  # alternating: drift of the machine's speed hits every setting alike
                    runs.append(run_one(workload, commands[workload], setting, n, args.workdir))
    log("\n" + summary(runs, settings, workloads, counts))


if __name__ == "__main__":
    main()
