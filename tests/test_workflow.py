"""The Snakemake workflow: lint and format, the config schema against ecma.config, the DAG, bad input
stopping before any job, which jobs rerun after what change, and (slow) the whole demo DAG for real.

Snakemake runs on the repository's Snakefile with a temporary working directory (``-d``), so the tests
never touch the repository's results/ or .snakemake/. The rerun tests put a stub ``ecma`` first on the
PATH: it records every call and writes placeholder outputs, so that they check Snakemake's decisions in
seconds; the slow tests run the real command.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
import types
import typing
from pathlib import Path

import pytest
import yaml

from ecma import config as C
from ecma import registry
from ecma.data.names import shard_of

REPO = Path(__file__).resolve().parent.parent
SNAKEFILE = REPO / "Snakefile"
RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
SECTIONS = C.section_classes()
# run where Snakemake runs (the Snakefile's localrules), not queued on a cluster
LOCAL_RULES = ("fetch_weights", "summarize_seeds", "main_metrics", "nothing_predicted", "ablation",
               "per_class_chart", "timelines", "run_summary", "sweep_select", "sweep_summarize", "sweep_page")
# rules made from another by `use rule PARENT as NAME with:` (NAME -> PARENT): they keep its directives
DERIVED_RULES = {"sweep_final": "sweep_trial", "sweep_predict": "predict_split", "sweep_evaluate": "evaluate_split",
                 "sweep_summarize": "summarize_seeds", "extract_new_videos": "extract_shard"}
RULES = ("demo_dataset", "extract_shard", "import_shard", "train_variant", "predict_split", "evaluate_split",
         "parse_demo_videos", "parse_new_videos", "sweep_trial", *LOCAL_RULES,
         *(r for r in DERIVED_RULES if r not in LOCAL_RULES))
GPU_RULES = ("extract_shard", "extract_new_videos", "train_variant", "parse_new_videos", "sweep_trial", "sweep_final")


@functools.cache
def failing_scontrol_dir() -> str:
    """A folder holding a ``scontrol`` that fails at once.

    The SLURM executor plugin runs ``scontrol show config`` whenever Snakemake loads it, on every run;
    where SLURM is installed but no controller answers (CI outside the cluster test), that costs 10 s.
    """
    folder = Path(tempfile.mkdtemp(prefix="ecma-no-slurm-"))
    (folder / "scontrol").write_text("#!/bin/sh\nexit 1\n")
    (folder / "scontrol").chmod(0o755)
    return str(folder)


def run_snakemake(workdir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir), "--cores", "2", *args]
    env = dict(os.environ if env is None else env)
    env["PATH"] = f"{failing_scontrol_dir()}{os.pathsep}{env['PATH']}"
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)


def output_of(p: subprocess.CompletedProcess) -> str:
    return p.stdout + p.stderr


def job_counts(p: subprocess.CompletedProcess) -> dict[str, int]:
    """The 'Job stats' table of a (dry) run: rule -> number of jobs."""
    text = output_of(p)
    assert "Job stats:" in text, text[-3000:]
    table = text.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


# ---------------------------------------------------------------------------------------------------
# A small dataset in LLP's file formats, with empty video files (the stub never decodes them)


def write_split(path: Path, names: list[str]) -> None:
    path.write_text("filename\tevent_labels\n" + "".join(f"{n}\tSpeech,Dog\n" for n in names))


def write_eval(path: Path, names: list[str], label: str) -> None:
    path.write_text("filename\tonset\toffset\tevent_labels\n" + "".join(f"{n}\t0\t4\t{label}\n" for n in names))


def make_dataset(root: Path, splits: dict[str, list[str]], touch_videos: bool = True) -> Path:
    (root / "videos").mkdir(parents=True, exist_ok=True)
    write_split(root / "AVVP_train.csv", splits["train"])
    write_split(root / "AVVP_val_pd.csv", splits["val"])
    write_split(root / "AVVP_test_pd.csv", splits["test"])
    scored = splits["val"] + splits["test"]
    write_eval(root / "AVVP_eval_audio.csv", scored, "Speech")
    write_eval(root / "AVVP_eval_visual.csv", scored, "Dog")
    if touch_videos:
        for names in splits.values():
            for n in names:
                (root / "videos" / f"{n}.mp4").write_bytes(b"")
    return root


def names_in_shard(prefix: str, shard: int, n_shards: int, count: int, *, start: int = 0, llp: bool = False) -> list[str]:
    """``count`` video names that fall into ``shard``, found by trying prefix0, prefix1, ... (from ``start``);
    with ``llp``, LLP-style names: the prefix and number as an 11-character id, then ``_0_10``."""
    out, i = [], start
    while len(out) < count:
        name = f"{prefix}{i:0{11 - len(prefix)}d}_0_10" if llp else f"{prefix}{i}"
        if shard_of(name, n_shards) == shard:
            out.append(name)
        i += 1
    return out


def write_config(workdir: Path, datasets: dict, **sections) -> Path:
    cfg = {"datasets": datasets, "variants": ["ecma", "han"], "main_variant": "ecma", **sections}
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


# ---------------------------------------------------------------------------------------------------
# The stub `ecma`: records each call as JSON and writes every output the rule declares


STUB = """\
#!{python}
import json, os, sys
from pathlib import Path

argv = sys.argv[1:]
with open(os.environ["ECMA_STUB_LOG"], "a") as log:
    log.write(json.dumps(argv) + "\\n")
if "ECMA_STUB_ENV_LOG" in os.environ:  # the environment each job got
    with open(os.environ["ECMA_STUB_ENV_LOG"], "a") as log:
        log.write(json.dumps({{"argv": argv, "env": dict(os.environ)}}) + "\\n")

def opt(name):
    return argv[argv.index(name) + 1]

def write(path, text="stub"):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)

cmd = argv[0]
hold = os.environ.get("ECMA_STUB_HOLD")
if hold and cmd == "train":  # a long job: started, then waits until the test lets it finish
    import time
    Path(hold + ".started-" + opt("--variant")).write_text("")
    while not Path(hold).exists():
        time.sleep(0.05)
if cmd == "extract":
    write(opt("--output"))
    write(opt("--output") + ".failures.tsv", "filename\\terror\\n")
elif cmd == "train":
    for name in ("model.pt", "history.csv", "history.json", "curves.png"):
        write(Path(opt("--output-dir")) / name)
elif cmd == "predict":
    write(opt("--output"))
elif cmd == "evaluate":
    write(opt("--output"), json.dumps({{"segment": {{}}, "event": {{}}}}))
elif cmd == "ablation":
    write(opt("--output-md"))
    write(opt("--output-json"), "{{}}")
    if "--output-html" in argv:
        write(opt("--output-html"))
elif cmd == "parse":
    write(Path(opt("--output-dir")) / "index.html")
elif cmd == "sweep-select":  # chooses trial $ECMA_STUB_CHOOSE (default: the first given), named by its folder
    trials = [a.split("=", 2)[1:] for a in argv if a.startswith("--trials=")]
    pick = os.environ.get("ECMA_STUB_CHOOSE", trials[0][0])
    folder = Path(next(d for i, d in trials if i == pick)).name
    settings = {{k: json.loads(v) for k, v in (kv.split("=", 1) for kv in folder.split(","))}}
    write(opt("--output-table"), "trial\\n" + "".join(i + "\\n" for i, _ in trials))
    write(opt("--output-best"), json.dumps({{"sweep": opt("--name"), "trial": int(pick), "settings": settings}}))
elif cmd == "sweep-page":
    write(opt("--output"))
elif cmd in ("summarize", "baseline", "per-class-chart", "timelines", "run-summary", "import"):
    write(opt("--output"))
    if cmd == "import":
        write(opt("--output") + ".failures.tsv", "filename\\terror\\n")
else:
    sys.exit(f"stub ecma: unexpected command {{cmd}}")
"""


def run_label(variant: str, seed_dir: str) -> str:
    """'ecma' for seed 0 (the default single seed), 'ecma/seed1' for another."""
    seed = Path(seed_dir).name.removeprefix("seed-")
    return variant if seed == "0" else f"{variant}/seed{seed}"


@pytest.fixture
def stub_env(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "ecma"
    stub.write_text(STUB.format(python=sys.executable))
    stub.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", ECMA_STUB_LOG=str(log))

    def calls() -> list[tuple[str, str]]:
        """(command, what) of every call since the last look; what: shard index, variant, split..."""
        if not log.exists():
            return []
        out = []
        calls.argvs = [json.loads(line) for line in log.read_text().splitlines()]
        for argv in calls.argvs:
            if argv[0] == "extract":
                out.append(("extract", Path(argv[argv.index("--output") + 1]).stem.removeprefix("shard-")))
            elif argv[0] == "train":
                out.append(("train", run_label(argv[argv.index("--variant") + 1], argv[argv.index("--output-dir") + 1])))
            elif argv[0] in ("predict", "evaluate"):
                output = Path(argv[argv.index("--output") + 1])  # .../{variant}/seed-{seed}/{split}.h5
                out.append((argv[0], run_label(output.parent.parent.name, str(output.parent)) + f"-{output.stem}"))
            else:
                out.append((argv[0], ""))
        log.unlink()
        return sorted(out)

    return env, calls


# ---------------------------------------------------------------------------------------------------
# Lint, format, files


def test_snakemake_lint_reports_nothing(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    p = run_snakemake(tmp_path, "--lint")
    assert p.returncode == 0, output_of(p)
    assert "Lints for" not in output_of(p)


def test_snakefmt_leaves_the_files_unchanged():
    snakefmt = Path(sys.executable).with_name("snakefmt")
    assert snakefmt.exists(), "snakefmt is a test dependency (pip install -e .[test])"
    p = subprocess.run([str(snakefmt), "--check", str(SNAKEFILE), *map(str, RULE_FILES)], capture_output=True, text=True)
    assert p.returncode == 0, output_of(p)


def test_every_rule_declares_log_benchmark_threads_resources_and_env():
    text = "\n".join(f.read_text() for f in RULE_FILES)
    blocks = re.split(r"^(?=(?:rule|checkpoint) \w+:|use rule \w+ as \w+ with:)", text, flags=re.M)[1:]
    names = [re.match(r"(?:rule|checkpoint|use rule \w+ as) (\w+)", b).group(1) for b in blocks]
    assert sorted(names) == sorted(RULES)
    blocks = dict(zip(names, blocks))
    for name, block in blocks.items():
        if name in DERIVED_RULES:  # the parent's directives, its own files
            parent = DERIVED_RULES[name]
            assert block.startswith(f"use rule {parent} as {name} with:"), block[:80]
            assert "log:" in block and "benchmark:" in block, f"rule {name} would share {parent}'s log"
            block = blocks[parent]
        for directive in ("log:", "benchmark:", "threads:", "resources:", "mem_mb=", "runtime=", "conda:", "shell:"):
            assert directive in block, f"rule {name} lacks {directive}"
        gpu = "gpu=" in block
        assert gpu == (name in GPU_RULES), f"rule {name}: gpu resource {gpu}"
    local = re.search(r"^localrules:\n((?:    \w+,\n)+)", SNAKEFILE.read_text(), re.M).group(1).split()
    assert sorted(n.rstrip(",") for n in local) == sorted(LOCAL_RULES)
    derived = re.findall(r"^use rule (\w+) as (\w+) with:\n((?:    .*\n|\n)+?)(?=\S)", text, flags=re.M)
    assert {new: old for old, new, _ in derived} == DERIVED_RULES
    for old, new, block in derived:  # its own outputs, log and benchmark: never the same files as its parent's
        for directive in ("output:", "log:", "benchmark:"):
            assert f"    {directive}" in block, f"rule {new} lacks its own {directive}"


def pyproject_dependencies() -> list[str]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_conda_envs_parse_and_name_every_dependency_of_pyproject():
    envs = sorted((REPO / "envs").glob("*.yaml"))
    assert envs, "no envs/*.yaml"
    for env_file in envs:
        env = yaml.safe_load(env_file.read_text())
        assert env["channels"][0] == "conda-forge", env_file
        conda = [d for d in env["dependencies"] if isinstance(d, str)]
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
        assert any(re.fullmatch(r"python=3\.11(\.\*)?", d) for d in conda), conda
        # pinned: every conda and pip package has an exact version
        assert all(re.fullmatch(r"[\w.-]+=[\w.*]+", d) for d in conda), conda
        packages = [d.split("#")[0].strip() for d in pip if not d.startswith("-e")]
        assert all(re.fullmatch(r"[\w.-]+==[\w.]+", d) for d in packages), packages
        pinned = {normalise(d.split("==")[0]): d.split("==")[1] for d in packages}
        for dep in pyproject_dependencies():
            name = normalise(re.match(r"[A-Za-z0-9_.-]+", dep).group(0))
            assert name in pinned, f"{env_file.name} lacks {name} (pyproject.toml: {dep})"
            exact = re.search(r"==([\w.]+)", dep)
            if exact:
                assert pinned[name] == exact.group(1), f"{env_file.name}: {name}=={pinned[name]}, pyproject.toml: {dep}"
        # the package itself, from the repository the Snakefile points ECMA_ROOT at
        assert "-e ${ECMA_ROOT}" in pip
    assert 'os.environ.setdefault("ECMA_ROOT", workflow.basedir)' in SNAKEFILE.read_text()


def test_rules_use_an_existing_conda_env():
    common = (REPO / "workflow" / "rules" / "common.smk").read_text()
    env = re.search(r'^ENV = "(.+)"$', common, re.M).group(1)
    assert (REPO / "workflow" / "rules" / env).resolve() == (REPO / "envs" / "ecma.yaml").resolve()


def test_profiles_parse():
    default = yaml.safe_load((REPO / "workflow/profiles/default/config.yaml").read_text())
    assert default["cores"] and default["rerun-incomplete"] is True and default["keep-going"] is False
    assert "executor" not in default and "software-deployment-method" not in default
    slurm = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    assert slurm["executor"] == "slurm" and slurm["jobs"] > 0
    # the scheduler squeeze of the test cluster stays in the test-only profile
    assert not {"slurm-status-command", "slurm-no-account"} & set(slurm)
    for rule in ("extract_shard", "train_variant", "sweep_trial", "sweep_final"):
        res = slurm["set-resources"][rule]
        assert res["gpu"] >= 1 and res["mem_mb"] > 0 and res["runtime"] > 0
    for rule in slurm["set-resources"]:
        assert rule in RULES or rule in DERIVED_RULES, rule
    for new, old in DERIVED_RULES.items():  # a derived rule runs where its parent runs
        assert slurm["set-resources"].get(new) == slurm["set-resources"].get(old), new
    text = (REPO / "workflow/profiles/slurm/config.yaml").read_text()
    assert "slurm_partition" in text and "slurm_account" in text


# ---------------------------------------------------------------------------------------------------
# The schema mirrors ecma/config.py, and config.yaml holds the package defaults


def expected_property(tp) -> dict:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = expected_property([a for a in args if a is not type(None)][0])
        if "enum" in inner:
            return {"enum": inner["enum"] + [None]}
        return {"type": [inner["type"], "null"]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is list:
        return {"type": "array", "items": expected_property(args[0])}
    return {"type": {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object"}[tp]}


def check_section(schema: dict, cls: type, with_defaults: bool, skip: tuple = ()) -> None:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    assert schema["type"] in ("object", ["object", "null"]) and schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(fields), cls.__name__
    for name, f in fields.items():
        if name in skip:
            continue
        prop = schema["properties"][name]
        kind = f.metadata.get("registered")  # a backbone, a variant or a feature format: the registry's names
        want = {"enum": list(registry.names(kind))} if kind else expected_property(hints[name])
        got = {k: prop[k] for k in ("type", "enum", "items") if k in prop}
        assert got == want, f"{cls.__name__}.{name}: schema {got}, dataclass {want}"
        if with_defaults:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            assert "default" in prop and prop["default"] == default and type(prop["default"]) is type(default), (
                f"{cls.__name__}.{name}: schema default {prop.get('default')!r}, dataclass {default!r}"
            )
        else:
            assert "default" not in prop, f"{cls.__name__}.{name}: an override must not have a default"


def test_schema_mirrors_the_config_dataclasses():
    defs = SCHEMA["$defs"]
    top = SCHEMA["properties"]
    assert set(top) == set(SECTIONS) | {"datasets", "variants", "main_variant", "parse", "sweeps"}
    check_section(defs["parse"], C.ParseConfig, with_defaults=False)
    assert top["sweeps"]["additionalProperties"] == {"$ref": "#/$defs/sweep"} and top["sweeps"]["default"] == {}
    check_section(defs["sweep"], C.SweepConfig, with_defaults=True, skip=("settings",))
    check_section(defs["sweep_range"], C.SweepRange, with_defaults=False)
    assert defs["sweep"]["properties"]["settings"]["additionalProperties"]["anyOf"][1] == {"$ref": "#/$defs/sweep_range"}
    assert SCHEMA["additionalProperties"] is False
    for name, cls in SECTIONS.items():
        assert top[name]["$ref"] == f"#/$defs/{name}" and top[name]["default"] == {}
        check_section(defs[name], cls, with_defaults=True)
        check_section(defs[f"{name}_override"], cls, with_defaults=False)
    check_section(defs["dataset"], C.DatasetConfig, with_defaults=True, skip=("demo", "overrides", "features"))
    check_section(defs["features"], C.FeaturesConfig, with_defaults=False)
    # null-able objects carry no defaults (validate() would fill them into the null); ecma.config fills them
    check_section(defs["demo"], C.DemoConfig, with_defaults=False)
    assert defs["dataset"]["properties"]["demo"] == {"$ref": "#/$defs/demo", "default": None}
    overrides = defs["dataset"]["properties"]["overrides"]["properties"]
    assert {k: v["$ref"] for k, v in overrides.items()} == {n: f"#/$defs/{n}_override" for n in SECTIONS}
    assert top["variants"]["items"]["enum"] == list(registry.names("variants"))
    assert top["variants"]["default"] == list(C.default_variants())
    assert top["main_variant"]["enum"] == list(registry.names("variants"))


def test_the_committed_schema_is_the_one_the_dataclasses_generate():
    from ecma.config.schema import schema_text

    committed = (REPO / "workflow" / "schemas" / "config.schema.yaml").read_text()
    assert committed == schema_text(), "regenerate: python -m ecma.config.schema > workflow/schemas/config.schema.yaml"


def test_the_schema_carries_the_bounds_of_the_dataclasses():
    defs = SCHEMA["$defs"]
    assert defs["train"]["properties"]["epochs"]["minimum"] == 1
    assert defs["train"]["properties"]["ema_alpha"]["exclusiveMaximum"] == 1.0
    assert defs["extract"]["properties"]["segment_seconds"]["exclusiveMinimum"] == 0.0
    assert defs["train_override"]["properties"]["lr"]["exclusiveMinimum"] == 0.0  # overrides too


def test_config_yaml_sections_hold_the_package_defaults():
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    defaults = C.EcmaConfig().to_dict()
    for name in SECTIONS:
        assert cfg[name] == defaults[name], name
    wf = C.workflow_config_from_dict(cfg)
    assert set(wf.datasets) == {"llp", "llp_valor", "llp_han", "unav100", "demo", "unav_demo"} and wf.variants == list(C.default_variants()) and wf.main_variant == "ecma"
    demo = wf.for_dataset("demo")
    assert wf.datasets["demo"].demo is not None and wf.datasets["demo"].n_shards == 2
    # ViT-B-32 gives 512-d visual features, HTSAT-tiny 768-d audio features
    assert (demo.extract.visual_model, demo.model.visual_dim, demo.model.audio_dim) == ("ViT-B-32", 512, 768)
    assert demo.extract.visual_pretrained is None and demo.extract.audio_checkpoint is None
    llp = wf.for_dataset("llp")
    assert (llp.extract.visual_model, llp.extract.visual_pretrained) == ("ViT-L-14-quickgelu", "openai")
    assert wf.datasets["llp"].n_shards == 16


# ---------------------------------------------------------------------------------------------------
# The DAG, and bad input stopping before any job runs


def test_dry_run_of_the_demo_metrics(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    p = run_snakemake(tmp_path, "-n", "results/demo/metrics.json")
    assert p.returncode == 0, output_of(p)
    # before the demo data exist, the checkpoint hides the per-shard inputs but not the shard count
    # the main variant, once per seed of the demo (three)
    assert job_counts(p) == {
        "demo_dataset": 1, "extract_shard": 2, "train_variant": 3, "predict_split": 3, "evaluate_split": 3,
        "summarize_seeds": 1, "main_metrics": 1,
    }
    p = run_snakemake(tmp_path, "-n")  # the default target: metrics, ablation and report of every demo dataset
    assert p.returncode == 0, output_of(p)
    # demo: 4 variants x 3 seeds, extracted, parsed, charted; unav_demo: 4 variants x 1 seed, imported, no
    # videos to parse and no audio/visual split to chart
    assert job_counts(p) == {
        "all": 1, "demo_dataset": 2, "extract_shard": 2, "import_shard": 2, "train_variant": 4 * 3 + 4,
        "predict_split": 16, "evaluate_split": 16, "summarize_seeds": 2, "main_metrics": 2, "nothing_predicted": 2,
        "ablation": 2, "per_class_chart": 1, "timelines": 2, "run_summary": 2, "parse_demo_videos": 1,
    }
    assert not (tmp_path / "results" / "demo" / "data").exists()


def resources_of(p: subprocess.CompletedProcess, rule: str) -> list[str]:
    """The 'resources:' lines of a dry run's jobs of one rule."""
    jobs = output_of(p).split("rule ")[1:]
    return [re.search(r"resources: (.*)", j).group(1) for j in jobs if j.startswith(f"{rule}:")]


def test_gpu_resources_follow_the_device_setting(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    p = run_snakemake(tmp_path, "-n", "results/demo/models/ecma/seed-0/model.pt")
    assert p.returncode == 0, output_of(p)
    for rule in ("extract_shard", "train_variant"):
        assert resources_of(p, rule) and all("gpu=0" in r for r in resources_of(p, rule)), rule
    (tmp_path / "gpu.yaml").write_text(yaml.safe_dump({"extract": {"device": "cuda"}, "train": {"device": "cuda:1"}}))
    p = run_snakemake(tmp_path, "-n", "results/demo/models/ecma/seed-0/model.pt", "--configfile", "config.yaml", "gpu.yaml")
    assert p.returncode == 0, output_of(p)
    for rule in ("extract_shard", "train_variant"):
        assert resources_of(p, rule) and all("gpu=1" in r for r in resources_of(p, rule)), rule
    # a profile's set-resources wins over the rule's default
    p = run_snakemake(tmp_path, "-n", "results/demo/models/ecma/seed-0/model.pt", "--set-resources", "train_variant:gpu=2")
    assert [("gpu=2" in r) for r in resources_of(p, "train_variant")] == [True]


def run_with_config(tmp_path: Path, cfg: dict, target: str = "results/demo/metrics.json") -> subprocess.CompletedProcess:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return run_snakemake(tmp_path, target)


def repo_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def assert_stopped_before_any_job(tmp_path: Path, p: subprocess.CompletedProcess, *words: str) -> None:
    text = output_of(p)
    assert p.returncode != 0, text
    for w in words:
        assert w in text, f"{w!r} not in:\n{text[-3000:]}"
    assert "jobid:" not in text, "a job was started"
    assert not (tmp_path / "results").exists(), "something was written"
    # paths left out: a checkout or temporary folder whose name holds "error" is not an error line
    errors = [line for line in p.stderr.splitlines()
              if "error" in line.replace(str(REPO), "").replace(str(tmp_path), "").lower()]
    assert len(errors) == 1 and errors[0].startswith("ecma: error: "), p.stderr[-3000:]
    assert "properties" not in text and "Traceback" not in text, "a schema dump or a traceback"


def test_a_value_of_the_wrong_type_is_one_line_naming_key_and_value(tmp_path):
    cfg = repo_config()
    cfg["train"]["epochs"] = "many"
    p = run_with_config(tmp_path, cfg)
    assert_stopped_before_any_job(tmp_path, p, "config: train.epochs must be an integer, got 'many'")


def test_a_value_out_of_its_bounds_is_one_line_naming_key_and_value(tmp_path):
    for section, key, value, message in [
        ("train", "epochs", 0, "train.epochs must be >= 1, got 0"),
        ("eval", "batch_size", 0, "eval.batch_size must be >= 1, got 0"),
        ("train", "device", "gpu", "train.device must be auto, cpu, cuda or cuda:N, got 'gpu'"),
        ("extract", "segment_seconds", -1, "extract.segment_seconds must be > 0, got -1.0"),
    ]:
        cfg = repo_config()
        cfg[section][key] = value
        p = run_with_config(tmp_path, cfg)
        assert_stopped_before_any_job(tmp_path, p, f"config: {message}")


def test_an_unknown_key_is_one_line_naming_its_path(tmp_path):
    cfg = repo_config()
    cfg["model"]["d_modle"] = 64
    p = run_with_config(tmp_path, cfg)
    assert_stopped_before_any_job(tmp_path, p, "unknown key model.d_modle")
    cfg = repo_config()
    cfg["trian"] = {"epochs": 3}
    p = run_with_config(tmp_path, cfg)
    assert_stopped_before_any_job(tmp_path, p, "unknown key 'trian'")
    cfg = repo_config()
    cfg["datasets"]["demo"]["n_shard"] = 3
    p = run_with_config(tmp_path, cfg)
    assert_stopped_before_any_job(tmp_path, p, "unknown key datasets.demo.n_shard")
    cfg = repo_config()
    cfg["datasets"]["demo"]["overrides"]["train"]["epoch"] = 3  # a typo inside a dataset's overrides
    p = run_with_config(tmp_path, cfg)
    assert_stopped_before_any_job(tmp_path, p, "unknown key datasets.demo.overrides.train.epoch")
    cfg = repo_config()
    cfg["datasets"]["demo"]["overrides"]["train"]["epochs"] = -1
    p = run_with_config(tmp_path, cfg)
    assert_stopped_before_any_job(tmp_path, p, "datasets.demo.overrides.train.epochs must be >= 1, got -1")
    cfg = repo_config()
    cfg["datasets"]["demo"]["demo"]["n_trian"] = 3
    p = run_with_config(tmp_path, cfg)
    assert_stopped_before_any_job(tmp_path, p, "unknown key datasets.demo.demo.n_trian")


def test_schema_errors_the_package_does_not_catch_are_one_line_too():
    from ecma.config.schema import schema_error_line

    dump = ("Error validating config file.\nValidationError: 'x' is not of type 'integer'\n\nFailed validating "
            "'type' in schema['properties']['train']:\n    {'type': 'object', 'properties': {...}}\n\n"
            "On instance['train']['epochs']:\n    'x'")
    assert schema_error_line(Exception(dump)) == "config: 'x' is not of type 'integer' (at ['train']['epochs'])"


def test_an_unknown_variant_stops_before_any_job(tmp_path):
    cfg = repo_config()
    cfg["variants"] = ["ecma", "no_emma"]
    p = run_with_config(tmp_path, cfg)
    assert_stopped_before_any_job(tmp_path, p, "unknown variant 'no_emma' in variants")
    cfg = repo_config()
    cfg["variants"], cfg["main_variant"] = ["ecma", "han"], "no_cma"
    p = run_with_config(tmp_path, cfg)
    assert_stopped_before_any_job(tmp_path, p, "main_variant 'no_cma' is not one of the variants")


def test_a_value_the_package_refuses_stops_with_its_one_line_message(tmp_path):
    cfg = repo_config()
    cfg["datasets"]["demo"]["overrides"]["model"]["num_heads"] = 3  # 128 is not divisible by 3
    p = run_with_config(tmp_path, cfg)
    assert_stopped_before_any_job(tmp_path, p, "config (dataset demo): model.d_model must be divisible by model.num_heads")


def small_dataset_config(tmp_path: Path, n_shards: int = 3) -> dict:
    return {"mine": {"annotations": "data", "videos": "data/videos", "n_shards": n_shards, "random_encoders": True}}


def test_a_missing_video_folder_stops_before_any_job(tmp_path):
    make_dataset(tmp_path / "data", {"train": ["a1", "a2"], "val": ["b1"], "test": ["c1"]}, touch_videos=False)
    (tmp_path / "data" / "videos").rmdir()
    write_config(tmp_path, small_dataset_config(tmp_path))
    p = run_snakemake(tmp_path, "results/mine/metrics.json")
    assert_stopped_before_any_job(tmp_path, p, "data/videos: video folder of dataset 'mine' not found")


def test_annotation_rows_and_videos_must_match(tmp_path):
    make_dataset(tmp_path / "data", {"train": ["a1", "a2"], "val": ["b1"], "test": ["c1"]})
    write_config(tmp_path, small_dataset_config(tmp_path))
    (tmp_path / "data" / "videos" / "a2.mp4").unlink()
    p = run_snakemake(tmp_path, "results/mine/metrics.json")
    assert_stopped_before_any_job(tmp_path, p, "1 annotated video(s) not found: a2")
    (tmp_path / "data" / "videos" / "a2.mp4").write_bytes(b"")
    (tmp_path / "data" / "videos" / "stray.mp4").write_bytes(b"")
    p = run_snakemake(tmp_path, "results/mine/metrics.json")
    assert_stopped_before_any_job(tmp_path, p, "1 video(s) have no annotation row: stray.mp4")


def shell_commands(p: subprocess.CompletedProcess) -> list[list[str]]:
    """The `ecma` commands of a dry run with -p, as argv lists (the log redirection dropped)."""
    out = []
    for line in output_of(p).splitlines():
        if line.startswith("Shell command: ecma "):
            command = line.removeprefix("Shell command: ").split(" > ")[0]
            out.append(shlex.split(command)[1:])
    return out


def test_every_command_the_rules_run_is_one_the_cli_accepts(tmp_path):
    from ecma.cli import build_parser

    make_dataset(tmp_path / "data", {"train": ["a1", "a2"], "val": ["b1"], "test": ["c1"]})
    write_config(tmp_path, {**small_dataset_config(tmp_path, 2), "demo": {"demo": {}}},
                 parse={"videos": "data/videos", "dataset": "mine"})
    targets = [f"results/mine/{r}" for r in ("metrics.json", "ablation.html", "report/per_class.png",
                                             "report/timelines.png", "report/run.html")] + ["results/parse/index.html"]
    p = run_snakemake(tmp_path, "-n", "-p", *targets, "results/demo/data")
    assert p.returncode == 0, output_of(p)
    commands = shell_commands(p)
    assert sorted({c[0] for c in commands}) == [
        "ablation", "baseline", "demo", "evaluate", "extract", "parse", "per-class-chart", "predict",
        "run-summary", "summarize", "timelines", "train"]
    parser = build_parser()
    for argv in commands:
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"ecma refuses: {' '.join(argv)}")
        # every setting comes on the command line; no job reads a config file written while parsing
        assert getattr(args, "config", None) is None, argv
        if argv[0] in ("extract", "train", "evaluate"):
            assert args.dataset is None and json.loads(args.settings), argv
        if argv[0] == "extract":
            assert len(args.videos) == len(args.names) and args.prune, argv
        if argv[0] == "train":  # every section the training job reads, the backbone's own losses included
            assert set(json.loads(args.settings)) == {"model", "loss", "pseudo", "coleaf", "train", "eval", "extract"}, argv
        if argv[0] == "ablation":  # the dataset decides whether the paper's figures are shown (LLP only)
            assert args.dataset == "mine", argv


def test_the_unav_commands_name_the_json_and_the_split(tmp_path):
    from ecma.cli import build_parser

    from ecma.data.unav_demo import make_unav_demo

    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    # the demo checkpoint's output, made beforehand, so that the dry run sees every job
    make_unav_demo(tmp_path / "results" / "unav_demo" / "data", n_train=4, n_val=2, n_test=2)
    p = run_snakemake(tmp_path, "-n", "-p", "results/unav_demo/metrics.json", "results/unav_demo/report/timelines.png",
                      "results/unav_demo/ablation.md")
    assert p.returncode == 0, output_of(p)
    parser = build_parser()
    commands = {argv[0]: parser.parse_args(argv) for argv in shell_commands(p)}
    json_path = "results/unav_demo/data/unav100_annotations.json"
    assert commands["import"].format == "unav100" and commands["import"].annotations == [json_path]
    for name in ("train", "predict", "evaluate", "baseline", "timelines"):
        args = commands[name]
        assert args.annotations == json_path, name
        assert getattr(args, "split", None) is None and getattr(args, "eval_audio", None) is None, name
    assert commands["evaluate"].subset == "test" and commands["predict"].subset == "test"


# ---------------------------------------------------------------------------------------------------
# Which jobs rerun after what change (stub ecma: Snakemake's decisions only)


def test_reruns_touch_only_what_changed(tmp_path, stub_env):
    env, calls = stub_env
    n_shards = 3
    splits = {
        "train": names_in_shard("t0-", 0, n_shards, 2) + names_in_shard("t1-", 1, n_shards, 2)
        + names_in_shard("t2-", 2, n_shards, 2),
        "val": names_in_shard("v", 0, n_shards, 1) + names_in_shard("v", 2, n_shards, 1),
        "test": names_in_shard("s", 1, n_shards, 2),
    }
    data = make_dataset(tmp_path / "data", splits)
    write_config(tmp_path, small_dataset_config(tmp_path, n_shards))
    targets = ["results/mine/metrics.json", "results/mine/ablation.md"]
    everything_after_features = [
        ("ablation", ""), ("evaluate", "ecma-test"), ("evaluate", "han-test"), ("predict", "ecma-test"),
        ("predict", "han-test"), ("summarize", ""), ("train", "ecma"), ("train", "han"),
    ]

    p = run_snakemake(tmp_path, *targets, env=env)
    assert p.returncode == 0, output_of(p)
    assert calls() == sorted([("baseline", ""), ("extract", "0"), ("extract", "1"), ("extract", "2")] + everything_after_features)
    shards = [tmp_path / f"results/mine/features/shard-{i}.h5" for i in range(n_shards)]
    assert all(s.is_file() and Path(f"{s}.failures.tsv").is_file() for s in shards)

    p = run_snakemake(tmp_path, *targets, env=env)
    assert p.returncode == 0 and calls() == [], output_of(p)

    # a new training video (with its row) in shard 1 reruns that shard only, and everything after it
    new = names_in_shard("new", 1, n_shards, 1)
    write_split(data / "AVVP_train.csv", splits["train"] + new)
    (data / "videos" / f"{new[0]}.mp4").write_bytes(b"")
    p = run_snakemake(tmp_path, *targets, env=env)
    assert p.returncode == 0, output_of(p)
    assert calls() == sorted([("extract", "1")] + everything_after_features)

    # an extraction setting re-extracts every shard
    extra = tmp_path / "extract.yaml"
    extra.write_text(yaml.safe_dump({"extract": {"frames_per_segment": 2}}))
    p = run_snakemake(tmp_path, *targets, "--configfile", "config.yaml", str(extra), env=env)
    assert p.returncode == 0, output_of(p)
    assert calls() == sorted([("extract", "0"), ("extract", "1"), ("extract", "2")] + everything_after_features)
    extract_settings = [json.loads(a[a.index("--settings") + 1]) for a in calls.argvs if a[0] == "extract"]
    assert [s["extract"]["frames_per_segment"] for s in extract_settings] == [2, 2, 2]  # what the jobs read
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump({**yaml.safe_load((tmp_path / "config.yaml").read_text()), "extract": {"frames_per_segment": 2}})
    )

    # a training setting retrains every variant without re-extracting
    before = [s.stat().st_mtime_ns for s in shards]
    extra.write_text(yaml.safe_dump({"train": {"lr": 0.001}}))
    p = run_snakemake(tmp_path, *targets, "--configfile", "config.yaml", str(extra), env=env)
    assert p.returncode == 0, output_of(p)
    assert calls() == sorted(everything_after_features)
    assert [s.stat().st_mtime_ns for s in shards] == before

    # an evaluation threshold re-scores, and retrains: validation with it picks each model's best epoch
    extra.write_text(yaml.safe_dump({"train": {"lr": 0.001}, "eval": {"segment_threshold": 0.4}}))
    p = run_snakemake(tmp_path, *targets, "--configfile", "config.yaml", str(extra), env=env)
    assert p.returncode == 0, output_of(p)
    assert calls() == sorted(everything_after_features)



def another_runtime_value(section: str, key: str):
    """A valid value other than the default for each runtime setting (ecma.config.runtime_setting)."""
    if key == "device":
        return "cpu"
    default = getattr(getattr(C.EcmaConfig(), section), key)
    return 1 if default is None else default + 1


RUNTIME_SETTINGS = [(name, key) for name, cls in C.section_classes().items() for key in C.runtime_keys(cls)]


def test_the_runtime_settings_are_the_ones_named_in_the_issue():
    assert sorted(RUNTIME_SETTINGS) == sorted([
        ("extract", "batch_videos"), ("extract", "workers"), ("extract", "device"),
        ("train", "threads"), ("train", "device"), ("eval", "batch_size")])


@pytest.fixture(scope="module")
def finished_stub_run(tmp_path_factory):
    """A small dataset run to the end once with the stub (module-scoped: each runtime test copies it)."""
    root = tmp_path_factory.mktemp("runtime")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    (bin_dir / "ecma").write_text(STUB.format(python=sys.executable))
    (bin_dir / "ecma").chmod(0o755)
    make_dataset(root / "data", {"train": ["a1", "a2", "-a3_0_10"], "val": ["b1"], "test": ["c1"]})
    write_config(root, small_dataset_config(root, 2))
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", ECMA_STUB_LOG=str(root / "calls.jsonl"))
    p = run_snakemake(root, "results/mine/metrics.json", "results/mine/ablation.md", env=env)
    assert p.returncode == 0, output_of(p)
    return root, env


@pytest.mark.parametrize("section,key", RUNTIME_SETTINGS)
def test_a_runtime_setting_reruns_nothing_yet_reaches_the_jobs(section, key, finished_stub_run, tmp_path):
    root, env = finished_stub_run
    work = tmp_path / "work"
    shutil.copytree(root, work, symlinks=True)
    env = dict(env, ECMA_STUB_LOG=str(work / "calls.jsonl"))
    (work / "calls.jsonl").unlink(missing_ok=True)
    targets = ["results/mine/metrics.json", "results/mine/ablation.md"]
    value = another_runtime_value(section, key)
    write_config(work, small_dataset_config(work, 2), **{section: {key: value}})
    p = run_snakemake(work, *targets, env=env)
    assert p.returncode == 0, output_of(p)
    assert "Nothing to be done" in output_of(p) and not (work / "calls.jsonl").exists(), output_of(p)
    # the jobs that use it are given the new value when they do run
    forced = {"extract": ["extract_shard"], "train": ["train_variant", "predict_split"],
              "eval": ["train_variant", "predict_split"]}[section]
    p = run_snakemake(work, "-n", "-p", *targets, "--forcerun", *forced, env=env)
    assert p.returncode == 0, output_of(p)
    seen = []
    for argv in shell_commands(p):
        if "--runtime" in argv:
            seen.append(json.loads(argv[argv.index("--runtime") + 1])[section][key])
        elif argv[0] == "predict" and section in ("train", "eval"):
            flag = {"device": "--device", "batch_size": "--batch-size"}.get(key)
            if flag:
                seen.append(type(value)(argv[argv.index(flag) + 1]))
    assert seen and all(v == value for v in seen), (seen, value)


@pytest.mark.parametrize("user", [{}, {"GOMP_SPINCOUNT": "77"}, {"OMP_WAIT_POLICY": "ACTIVE"}])
def test_every_job_gets_the_runtime_defaults_or_the_users_values(user, tmp_path):
    """ecma/runtime_env.py's defaults reach every `ecma` that Snakemake starts, though Snakemake is started
    without them (the Snakefile imports ecma, which sets them in Snakemake's process), and a user's own
    wait setting reaches the jobs instead; OMP_NUM_THREADS is each job's `threads`, as Snakemake sets it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ecma").write_text(STUB.format(python=sys.executable))
    (bin_dir / "ecma").chmod(0o755)
    make_dataset(tmp_path / "data", {"train": ["a1", "a2"], "val": ["b1"], "test": ["c1"]})
    write_config(tmp_path, small_dataset_config(tmp_path, 2), train={"threads": 1})
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    env.update(user, PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", ECMA_STUB_LOG=str(tmp_path / "calls.jsonl"),
               ECMA_STUB_ENV_LOG=str(tmp_path / "env.jsonl"))
    p = run_snakemake(tmp_path, "results/mine/metrics.json", "results/mine/ablation.md", env=env)
    assert p.returncode == 0, output_of(p)
    jobs = [json.loads(line) for line in (tmp_path / "env.jsonl").read_text().splitlines()]
    assert {job["argv"][0] for job in jobs} >= {"extract", "train", "predict", "evaluate", "summarize", "ablation"}
    expected = user or {"GOMP_SPINCOUNT": "1000"}
    for job in jobs:
        got = {k: job["env"].get(k) for k in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
        assert got == {"GOMP_SPINCOUNT": None, "OMP_WAIT_POLICY": None, **expected}, job["argv"]
    threads = {job["argv"][0]: job["env"]["OMP_NUM_THREADS"] for job in jobs}
    # extract: workers + 1 (2 + 1, capped at --cores 2); train: train.threads; summarize: 1
    assert (threads["extract"], threads["train"], threads["summarize"]) == ("2", "1", "1"), threads


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` but Snakemake's own bookkeeping (.snakemake/), with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".snakemake" not in p.parts and "bin" not in p.parts and p.name != "calls.jsonl"}


def test_a_dry_run_or_a_refused_second_run_changes_nothing_of_a_running_one(tmp_path, stub_env):
    import time

    env, calls = stub_env
    hold = tmp_path / "let-train-finish"
    env = dict(env, ECMA_STUB_HOLD=str(hold))
    make_dataset(tmp_path / "data", {"train": ["a1", "a2"], "val": ["b1"], "test": ["c1"]})
    write_config(tmp_path, small_dataset_config(tmp_path, 2))
    targets = ["results/mine/metrics.json", "results/mine/ablation.md"]
    first = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(tmp_path), "--cores", "2", *targets],
        cwd=tmp_path, env={**env, "PATH": f"{failing_scontrol_dir()}{os.pathsep}{env['PATH']}"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not any(Path(f"{hold}.started-{v}").exists() for v in ("ecma", "han")):
            assert first.poll() is None and time.monotonic() < deadline, first.stdout.read() if first.poll() is not None else "timeout"
            time.sleep(0.1)
        before = tree_bytes(tmp_path)
        # a user edits the config (3 epochs, another extractor) while the first run trains
        write_config(tmp_path, small_dataset_config(tmp_path, 2), train={"epochs": 3}, extract={"frames_per_segment": 4})
        dry = run_snakemake(tmp_path, "-n", *targets, env=env)
        assert dry.returncode == 0, output_of(dry)
        second = run_snakemake(tmp_path, *targets, env=env)
        assert second.returncode != 0 and "cannot be locked" in output_of(second), output_of(second)
        after = tree_bytes(tmp_path)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        assert changed == ["config.yaml"], changed  # only the user's own edit
    finally:
        hold.write_text("")
        out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out[-3000:]
    calls()
    for argv in calls.argvs:
        if argv[0] in ("train", "extract", "evaluate"):
            settings = json.loads(argv[argv.index("--settings") + 1])
            if argv[0] == "train":
                assert settings["train"]["epochs"] == C.TrainConfig().epochs, argv  # the default: the settings the first run was started with
            if argv[0] == "extract":
                assert settings["extract"]["frames_per_segment"] == 1, argv


def test_a_video_in_two_splits_stops_before_any_job_unless_allowed(tmp_path, stub_env):
    env, calls = stub_env
    make_dataset(tmp_path / "data", {"train": ["a1", "a2", "c1"], "val": ["b1"], "test": ["c1"]})
    write_config(tmp_path, small_dataset_config(tmp_path, 2))
    p = run_snakemake(tmp_path, "results/mine/metrics.json", env=env)
    assert_stopped_before_any_job(
        tmp_path, p, "c1: listed in data/AVVP_train.csv and in data/AVVP_test_pd.csv",
        "allow_split_overlap: true",
    )
    assert calls() == []
    cfg = small_dataset_config(tmp_path, 2)
    cfg["mine"]["allow_split_overlap"] = True
    write_config(tmp_path, cfg)
    p = run_snakemake(tmp_path, "results/mine/metrics.json", env=env)
    assert p.returncode == 0, output_of(p)
    assert ("train", "ecma") in calls()


# ---------------------------------------------------------------------------------------------------
# The real train, predict, evaluate and ablation commands on random features (extraction stubbed)


FAKE_EXTRACT = """\
#!{python}
# `ecma extract` writes random features for the shard's videos; every other command is the real one.
import sys
import zlib

import numpy as np

from ecma.cli import main

argv = sys.argv[1:]
if argv[0] != "extract":
    sys.exit(main(argv))
from pathlib import Path

from ecma.cli import build_parser
from ecma.data.shards import FeatureShard

args = build_parser().parse_args(argv)
names = args.names
output = Path(args.output)
with FeatureShard(output, "w") as shard:
    shard.fingerprint = {{"visual_model": "random", "audio_model": "random"}}
    for name in names:
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        shard.write(name, rng.normal(size=(10, {audio_dim})), rng.normal(size=(10, {visual_dim})))
Path(f"{{output}}.failures.tsv").write_text("filename\\terror\\n")
"""


@pytest.mark.slow
def test_the_real_commands_from_shards_to_metrics_and_a_retrain(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    model = {"audio_dim": 16, "visual_dim": 8, "d_model": 16, "num_layers": 1, "num_heads": 2, "d_ff": 32}
    (bin_dir / "ecma").write_text(FAKE_EXTRACT.format(python=sys.executable, audio_dim=16, visual_dim=8))
    (bin_dir / "ecma").chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    splits = {"train": [f"t{i}" for i in range(8)], "val": ["v0", "v1"], "test": ["s0", "s1", "s2"]}
    data = make_dataset(tmp_path / "data", splits)
    write_config(tmp_path, small_dataset_config(tmp_path, 2), model=model, train={"epochs": 2, "batch_size": 4, "threads": 1})
    targets = ["results/mine/metrics.json", "results/mine/ablation.md"]
    p = run_snakemake(tmp_path, *targets, env=env)
    assert p.returncode == 0, output_of(p)[-5000:]
    results = tmp_path / "results" / "mine"
    metrics = json.loads((results / "metrics.json").read_text())
    assert metrics["num_videos"] == 3 and set(metrics["segment"]) == {"audio", "visual", "audio_visual", "type_av", "event_av"}
    assert list(json.loads((results / "ablation.json").read_text())["variants"]) == ["ecma", "han"]
    history = json.loads((results / "models" / "ecma" / "seed-0" / "history.json").read_text())
    assert len(history) == 2

    # a new training video: its shard and every model are redone, and the models see it
    write_split(data / "AVVP_train.csv", splits["train"] + ["t8"])
    (data / "videos" / "t8.mp4").write_bytes(b"")
    model_mtime = (results / "models" / "ecma" / "seed-0" / "model.pt").stat().st_mtime_ns
    p = run_snakemake(tmp_path, *targets, env=env)
    assert p.returncode == 0, output_of(p)[-5000:]
    assert (results / "models" / "ecma" / "seed-0" / "model.pt").stat().st_mtime_ns > model_mtime
    assert len(json.loads((results / "models" / "ecma" / "seed-0" / "history.json").read_text())) == 2


# ---------------------------------------------------------------------------------------------------
# The real thing (slow): the demo DAG, and incremental extraction of a real-style dataset


# ViT-S-32 (384-d), the smallest open_clip ViT, random: what is under test is the DAG around the encoders
# (ViT-B-32 cost these tests ~8 s more per extraction job)
SMALL_MODEL = {"audio_dim": 768, "visual_dim": 384, "d_model": 32, "num_layers": 1, "num_heads": 2, "d_ff": 64}
SMALL_EXTRACT = {"visual_model": "ViT-S-32", "visual_pretrained": None, "audio_checkpoint": None, "workers": 1}
SMALL_TRAIN = {"epochs": 2, "batch_size": 8, "threads": 2}


@pytest.mark.slow
def test_demo_dag_end_to_end(tmp_path):
    cfg = {
        "datasets": {
            "demo": {
                "demo": {"n_train": 12, "n_val": 4, "n_test": 4, "seed": 0},
                "n_shards": 2, "random_encoders": True,
                "overrides": {"extract": SMALL_EXTRACT, "model": SMALL_MODEL, "train": SMALL_TRAIN},
            }
        },
        "variants": ["ecma", "han"],
        "main_variant": "ecma",
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    p = run_snakemake(tmp_path)
    assert p.returncode == 0, output_of(p)[-5000:]
    results = tmp_path / "results" / "demo"
    metrics = json.loads((results / "metrics.json").read_text())
    assert metrics == json.loads((results / "metrics" / "ecma" / "test.json").read_text())
    assert metrics["num_videos"] == 4
    for level in ("segment", "event"):
        assert set(metrics[level]) == {"audio", "visual", "audio_visual", "type_av", "event_av"}
        assert all(0.0 <= v <= 100.0 for v in metrics[level].values())
    ablation = json.loads((results / "ablation.json").read_text())
    assert list(ablation["variants"]) == ["ecma", "han"]
    assert ablation["variants"]["ecma"]["segment"] == metrics["segment"]
    rows = [line for line in (results / "ablation.md").read_text().splitlines() if line.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows[1:]] == ["ecma", "han", "*nothing predicted*"]
    for made in ("ablation.html", "report/per_class.png", "report/timelines.png", "report/run.html"):
        assert (results / made).stat().st_size > 0, made
    # the demo parses its first test videos with its main model
    index = (results / "parsed" / "index.html").read_text()
    parsed = sorted((results / "parsed").glob("*.json"))
    assert len(parsed) == 3 and all(p.stem in index for p in parsed)
    assert all((results / "parsed" / f"{p.stem}.{ext}").stat().st_size > 0 for p in parsed for ext in ("html", "png"))
    for variant in ("ecma", "han"):
        assert (results / "models" / variant / "seed-0" / "curves.png").stat().st_size > 0
    for rule_dir in ("extract", "train", "predict", "evaluate"):
        assert list((results / "benchmarks" / rule_dir).glob("*.tsv")), rule_dir
    p = run_snakemake(tmp_path, "--report", "report.html")
    assert p.returncode == 0, output_of(p)[-3000:]
    assert (tmp_path / "report.html").stat().st_size > 0


UNAV_MODEL = {"audio_dim": 128, "visual_dim": 2048, "num_classes": 8, "d_model": 32, "num_layers": 1, "num_heads": 2, "d_ff": 64}


@pytest.mark.slow
def test_unav_demo_dag_end_to_end_on_both_backbones(tmp_path):
    """The UnAV-format demo: generated features and JSON -> import -> both backbones -> AV-only metrics."""
    cfg = {
        "datasets": {
            "unav_demo": {
                "demo": {"format": "unav100", "n_train": 8, "n_val": 4, "n_test": 4, "seed": 0, "n_parse": 0},
                "n_shards": 2,
                "overrides": {"model": UNAV_MODEL, "train": {**SMALL_TRAIN, "select": "audio_visual"},
                              "coleaf": {"noise_ratios": None}},
            }
        },
        "variants": ["ecma", "han_ecma"],
        "main_variant": "ecma",
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    p = run_snakemake(tmp_path)
    assert p.returncode == 0, output_of(p)[-5000:]
    counts = job_counts(p)
    assert counts["import_shard"] == 2 and counts["train_variant"] == 2 and "extract_shard" not in counts
    assert "parse_demo_videos" not in counts and "per_class_chart" not in counts  # no videos, no A/V split
    results = tmp_path / "results" / "unav_demo"
    metrics = json.loads((results / "metrics.json").read_text())
    assert metrics["protocol"] == "unav100-av" and metrics["num_videos"] == 4
    assert set(metrics["segment"]) == set(metrics["event"]) == {"audio_visual"}
    assert set(metrics["map"]["map"]) == {f"0.{k}" for k in range(1, 10)}
    ablation = json.loads((results / "ablation.json").read_text())
    assert list(ablation["variants"]) == ["ecma", "han_ecma"]
    assert set(ablation["variants"]["han_ecma"]["segment"]) == {"audio_visual"}
    assert ablation["baseline"]["segment"]["audio_visual"] == 0.0  # every generated test video has an event
    for made in ("ablation.html", "report/timelines.png", "report/run.html"):
        assert (results / made).stat().st_size > 0, made
    # the model carries the JSON's classes, in label_id order
    from ecma.data.unav_demo import UNAV_DEMO_CLASSES
    from ecma.models.checkpoint import load_model

    classes = load_model(results / "models" / "han_ecma" / "seed-0" / "model.pt")[2]["classes"]
    assert list(classes) == [UNAV_DEMO_CLASSES[k] for k in sorted(UNAV_DEMO_CLASSES)]


def test_unav_datasets_refuse_type_av_selection_and_llp_noise_ratios(tmp_path):
    cfg = repo_config()
    cfg["datasets"]["unav_demo"]["overrides"]["train"]["select"] = "type_av"
    p = run_with_config(tmp_path, cfg, "results/unav_demo/metrics.json")
    assert_stopped_before_any_job(tmp_path, p, "datasets.unav_demo", "train.select: audio_visual")
    cfg = repo_config()
    del cfg["datasets"]["unav_demo"]["overrides"]["coleaf"]
    p = run_with_config(tmp_path, cfg, "results/unav_demo/metrics.json")
    assert_stopped_before_any_job(tmp_path, p, "datasets.unav_demo", "coleaf.noise_ratios", "num_classes is 8")


def shard_extracted_at(path: Path) -> dict[str, str]:
    import h5py

    with h5py.File(path, "r") as f:
        return {name: str(f[name].attrs["extracted_at"]) for name in f}


@pytest.mark.slow
def test_incremental_extraction_of_a_real_style_dataset(tmp_path):
    import time

    from ecma.data.demo import make_demo_dataset

    data = tmp_path / "data"
    make_demo_dataset(data, n_train=8, n_val=4, n_test=4, seed=0, progress=False)
    extra = tmp_path / "extra"
    make_demo_dataset(extra, n_train=2, n_val=1, n_test=1, seed=1, progress=False)
    cfg = {
        "datasets": {
            "mine": {
                "annotations": "data", "videos": "data/videos", "n_shards": 2, "random_encoders": True,
                "overrides": {"extract": SMALL_EXTRACT, "model": SMALL_MODEL, "train": SMALL_TRAIN},
            }
        },
        "variants": ["ecma"],
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    target = "results/mine/metrics.json"
    p = run_snakemake(tmp_path, target)
    assert p.returncode == 0, output_of(p)[-5000:]
    shards = [tmp_path / f"results/mine/features/shard-{i}.h5" for i in range(2)]
    model = tmp_path / "results/mine/models/ecma/seed-0/model.pt"
    first = [shard_extracted_at(s) for s in shards]
    mtimes = [s.stat().st_mtime_ns for s in shards]
    model_mtime = model.stat().st_mtime_ns

    # add one new training video, renamed so that it falls into shard 0 with its row
    row = (extra / "AVVP_train.csv").read_text().splitlines()[1]
    stem = row.split("\t")[0].rsplit("_", 2)[0]  # the video is stored as <id>.mp4, the row says <id>_0_10
    video = extra / "videos" / f"{stem}.mp4"
    stem_new = next(f"added{i}_{stem}" for i in range(100) if shard_of(row.split("\t")[0].replace(stem, f"added{i}_{stem}", 1), 2) == 0)
    name = row.split("\t")[0].replace(stem, stem_new, 1)  # the new video's annotation filename
    shutil.copy(video, data / "videos" / f"{stem_new}{video.suffix}")
    train_csv = data / "AVVP_train.csv"
    train_csv.write_text(train_csv.read_text().rstrip("\n") + "\n" + row.replace(stem, stem_new, 1) + "\n")
    time.sleep(1.1)  # extracted_at has whole seconds
    p = run_snakemake(tmp_path, target)
    assert p.returncode == 0, output_of(p)[-5000:]
    second = [shard_extracted_at(s) for s in shards]
    assert shards[1].stat().st_mtime_ns == mtimes[1] and second[1] == first[1]  # untouched shard
    assert set(second[0]) == set(first[0]) | {name}
    assert {k: second[0][k] for k in first[0]} == first[0]  # old videos keep their features' time
    assert model.stat().st_mtime_ns > model_mtime  # retrained on the new video

    # an extraction setting re-extracts every video (that a training setting retrains without re-extracting
    # is test_reruns_touch_only_what_changed's, with the stub: the DAG decides it, not the encoders)
    cfg["datasets"]["mine"]["overrides"]["extract"] = {**SMALL_EXTRACT, "normalize": True}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    time.sleep(1.1)
    p = run_snakemake(tmp_path, target)
    assert p.returncode == 0, output_of(p)[-5000:]
    third = [shard_extracted_at(s) for s in shards]
    for before, after in zip(second, third):
        assert set(after) == set(before) and all(after[k] > before[k] for k in before)


# ---------------------------------------------------------------------------------------------------
# Published features as a dataset: import, training and evaluation with no video in sight


def features_dataset(tmp_path: Path, layout: str, splits: dict[str, list[str]]) -> dict:
    from feature_trees import make_feature_tree

    make_dataset(tmp_path / "data", splits, touch_videos=False)
    (tmp_path / "data" / "videos").rmdir()
    ids = [n.rsplit("_", 2)[0] for names in splits.values() for n in names]
    make_feature_tree(tmp_path / "feats", layout, ids)
    return {"annotations": "data", "source": "features", "features": {"format": layout, "root": "feats"}, "n_shards": 2}


def llp_style(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i:09d}_0_10" for i in range(count)]


@pytest.mark.slow
def test_a_published_feature_root_runs_to_metrics_and_reimports_only_new_shards(tmp_path):
    splits = {"train": llp_style("tr", 8), "val": llp_style("va", 3), "test": llp_style("te", 3)}
    ds = features_dataset(tmp_path, "valor", splits)
    small = {"d_model": 16, "num_layers": 1, "num_heads": 2, "d_ff": 32}
    write_config(tmp_path, {"mine": ds}, model=small, train={"epochs": 2, "batch_size": 4, "threads": 1})
    target = "results/mine/metrics.json"
    p = run_snakemake(tmp_path, target)
    assert p.returncode == 0, output_of(p)[-5000:]
    assert "rule import_shard" in output_of(p) and "rule extract_shard" not in output_of(p)
    metrics = json.loads((tmp_path / "results/mine/metrics.json").read_text())
    assert metrics["num_videos"] == 3
    # imported VALOR features carry VALOR's feature identity, the one valor-profile extractions carry too
    assert metrics["provenance"]["feature_fingerprint"]["features"] == "valor"
    shards = [tmp_path / f"results/mine/features/shard-{i}.h5" for i in range(2)]
    before = [s.stat().st_mtime_ns for s in shards]

    # one new training video with its published files: only its shard is imported again
    from feature_trees import make_feature_tree

    new = next(n for n in llp_style("new", 50) if shard_of(n, 2) == 1)
    make_feature_tree(tmp_path / "feats", "valor", [new.rsplit("_", 2)[0]], seed=5)
    write_split(tmp_path / "data" / "AVVP_train.csv", splits["train"] + [new])
    p = run_snakemake(tmp_path, target)
    assert p.returncode == 0, output_of(p)[-5000:]
    assert shards[0].stat().st_mtime_ns == before[0] and shards[1].stat().st_mtime_ns > before[1]
    from ecma.data.shards import FeatureShard

    with FeatureShard(shards[1]) as s:
        assert new in s.videos()


def test_a_feature_dataset_with_a_missing_root_or_folder_stops_before_any_job(tmp_path):
    splits = {"train": llp_style("tr", 2), "val": llp_style("va", 1), "test": llp_style("te", 1)}
    ds = features_dataset(tmp_path, "han", splits)
    write_config(tmp_path, {"mine": {**ds, "features": {"format": "han", "root": "elsewhere"}}})
    p = run_snakemake(tmp_path, "results/mine/metrics.json")
    assert_stopped_before_any_job(tmp_path, p, "elsewhere: feature root of format 'han' not found")
    shutil.rmtree(tmp_path / "feats" / "r2plus1d_18")
    write_config(tmp_path, {"mine": ds})
    p = run_snakemake(tmp_path, "results/mine/metrics.json")
    assert_stopped_before_any_job(tmp_path, p, "feats/r2plus1d_18: folder of the visual_3d features of format 'han' not found")
    write_config(tmp_path, {"mine": {**ds, "features": None}})
    p = run_snakemake(tmp_path, "results/mine/metrics.json")
    assert_stopped_before_any_job(tmp_path, p, "datasets.mine with source: features needs 'annotations' and 'features")


def test_the_parse_target_parses_a_folder_with_a_datasets_model_and_stops_early_on_a_bad_one(tmp_path, stub_env):
    env, calls = stub_env
    make_dataset(tmp_path / "data", {"train": ["a1", "a2"], "val": ["b1"], "test": ["c1"]})
    (tmp_path / "new").mkdir()
    for name in ("x.mp4", "y.webm", "notes.txt"):
        (tmp_path / "new" / name).write_bytes(b"")
    write_config(tmp_path, small_dataset_config(tmp_path, 1), parse={"videos": "new", "dataset": "mine"})
    p = run_snakemake(tmp_path, "results/parse/index.html", env=env)
    assert p.returncode == 0, output_of(p)
    got = calls()
    assert ("parse", "") in got and ("train", "ecma") in got  # the dataset's model is built first
    argv = next(a for a in calls.argvs if a[0] == "parse")
    model = argv.index("--checkpoint") + 1
    assert argv[model] == "results/mine/models/ecma/seed-0/model.pt"
    # the videos come after `--`, so a name beginning with '-' is never read as an option
    assert argv[argv.index("--") + 1:] == ["new/x.mp4", "new/y.webm"]
    write_config(tmp_path, small_dataset_config(tmp_path, 1), parse={"videos": "absent", "dataset": "mine"})
    p = run_snakemake(tmp_path, "-n", "results/parse/index.html", env=env)
    assert p.returncode == 2 and p.stderr.strip().splitlines()[-1] == "ecma: error: absent: video folder not found"
    write_config(tmp_path, small_dataset_config(tmp_path, 1), parse={"videos": "new"})
    p = run_snakemake(tmp_path, "-n", "results/parse/index.html", env=env)
    assert p.returncode == 2 and "parse needs 'videos' and one of 'checkpoint' (a model.pt) or 'dataset'" in p.stderr
