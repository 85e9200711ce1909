"""The shipped real datasets of config.yaml (llp, llp_valor, llp_han, unav100) end to end, on generated files
that carry LLP's real names: slices of LLP's own split and truth files (tests/llp_slices.py) with the awkward
names (a leading '-', '-' and '_' inside the id, fractional seconds, the shortest), tiny generated videos
named as LLP's (llp), published-feature trees of the real shapes (llp_valor, llp_han) and a UnAV-100 tree of
the real JSON layout named by the same ids (unav100). Each runs to metrics.json with one short epoch, then a
second run finds nothing to do.

The datasets are config.yaml's own entries; the test adds only what a machine without the network and with
two cores needs: small models, one epoch, and, for llp, small randomly initialised encoders instead of the
downloaded ones (datasets.llp.random_encoders: true says so).
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import yaml

from conftest import REPO, llp_annotations_dir
from feature_trees import make_feature_tree
from llp_slices import dash_names, llp_slice
from media import FFMPEG, make_video
from test_workflow import output_of, run_snakemake
from ecma.data.names import youtube_id

SLICE = llp_slice(llp_annotations_dir())
SMALL_MODEL = {"d_model": 16, "num_layers": 1, "num_heads": 1, "d_ff": 16}


def unav_tree(root, names_by_split: dict[str, list[str]], n_classes: int = 100) -> None:
    """UnAV-100's layout: av_features/<id>_rgb|_flow|_vggish.npy on its 0.32-s grid and the annotation JSON,
    every one of ``n_classes`` classes used (the shipped config has 100), videos named by LLP's ids."""
    from ecma.data.unav_demo import grid_length

    rng = np.random.default_rng(0)
    features = root / "av_features"
    features.mkdir(parents=True)
    ids = [(youtube_id(n), split) for split, names in names_by_split.items() for n in names]
    database, label = {}, 0
    per_video = -(-n_classes // len(ids))
    for vid, split in ids:
        duration = float(rng.uniform(10.0, 30.0))
        events = []
        for _ in range(per_video):
            onset = round(float(rng.uniform(0.0, duration - 3.0)), 2)
            events.append({"segment": [onset, round(onset + 2.5, 2)], "label": f"class {label % n_classes:02d}",
                           "label_id": label % n_classes})
            label += 1
        database[vid] = {"subset": {"val": "validation"}.get(split, split), "duration": round(duration, 2),
                         "fps": 25, "annotations": events}
        n = grid_length(duration)
        for kind, width in (("rgb", 1024), ("flow", 1024), ("vggish", 128)):
            np.save(features / f"{vid}_{kind}.npy", rng.standard_normal((n, width)).astype(np.float32))
    (root / "unav100_annotations.json").write_text(json.dumps({"database": database}))


@pytest.fixture(scope="module")
def real_workdir(tmp_path_factory):
    """A working directory laid out as config.yaml expects: data/llp (csvs, videos/, valor/, han/) and
    data/unav100; config.yaml is the repository's, with the test's small settings on top."""
    work = tmp_path_factory.mktemp("real")
    llp = SLICE.write(work / "data" / "llp")
    ids = sorted({youtube_id(n) for n in SLICE.names()})
    make_feature_tree(llp / "valor", "valor", ids)
    make_feature_tree(llp / "han", "han", ids)
    if FFMPEG is not None:
        for i, vid in enumerate(ids):  # LLP's raw videos are stored under their YouTube id
            make_video(llp / "videos" / f"{vid}.mp4", seconds=10.0, size="48x32", fps=4, sample_rate=16000,
                       pattern=("testsrc2", "testsrc", "rgbtestsrc")[i % 3])
    unav_tree(work / "data" / "unav100", {s: SLICE.names(s) for s in ("train", "val", "test")})
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["model"].update(SMALL_MODEL)
    cfg["train"].update({"epochs": 1, "batch_size": 4, "threads": 1})
    llp_cfg = cfg["datasets"]["llp"]
    llp_cfg["random_encoders"] = True  # no network here: small random encoders stand in for the paper's
    llp_cfg["n_shards"] = 2  # each extraction job builds its encoders: 2 jobs, not 16, for CI's two cores
    llp_cfg["overrides"]["extract"] = {"visual_model": "ViT-S-32", "visual_pretrained": None,  # the smallest ViT
                                       "audio_checkpoint": None, "workers": 0}
    llp_cfg["overrides"]["model"] = {"visual_dim": 384}
    (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return work


def shard_names(work, dataset: str) -> set[str]:
    names: set[str] = set()
    for shard in sorted((work / "results" / dataset / "features").glob("shard-*.h5")):
        with h5py.File(shard, "r") as f:
            names |= set(f)
    return names


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["llp_valor", "llp_han", "unav100", "llp"])
def test_a_shipped_dataset_runs_to_metrics_on_real_names_then_has_nothing_to_do(dataset, real_workdir):
    if dataset == "llp" and FFMPEG is None:
        pytest.skip("ffmpeg is not installed: no videos to extract (.ci/install installs it)")
    work = real_workdir
    target = f"results/{dataset}/metrics.json"
    p = run_snakemake(work, target)
    assert p.returncode == 0, output_of(p)[-6000:]
    metrics = json.loads((work / target).read_text())
    n_test = len(SLICE.names("test"))
    assert metrics["num_videos"] == n_test and not metrics.get("skipped")
    # every video, the awkward names included, reached its shard under its annotation name
    if dataset == "unav100":
        assert shard_names(work, dataset) == {youtube_id(n) for n in SLICE.names()}
    else:
        assert shard_names(work, dataset) == set(SLICE.names())
    assert any(n.startswith("-") for n in SLICE.names("test"))
    again = run_snakemake(work, target)
    assert again.returncode == 0 and "Nothing to be done" in output_of(again), output_of(again)[-3000:]


def test_the_slice_has_every_awkward_kind_of_name():
    names = SLICE.names("train")
    assert sum(n.startswith("-") for n in names) >= 2
    assert any("-" in n[1:11] for n in names) and any("_" in n[:11] for n in names)
    assert any("." in n for n in names)  # fractional seconds: LLP's longest names
    assert all(len(youtube_id(n)) == 11 for n in SLICE.names())
    if not SLICE.real:
        pytest.skip(f"LLP's files are not in {llp_annotations_dir()}: the names above were made up in their image")


def test_the_rules_pass_all_151_real_dash_names_as_values(tmp_path, llp_dir):
    """The extract and import commands the rules write, for every LLP name that starts with '-', read back
    through the CLI's own parser: each name arrives whole, as a name, never as an option."""
    from ecma.cli import build_parser

    names = dash_names(llp_dir)
    assert len(names) == 151
    data = tmp_path / "data"
    (data / "videos").mkdir(parents=True)
    split = "filename\tevent_labels\n" + "".join(f"{n}\tSpeech\n" for n in names)
    (data / "AVVP_train.csv").write_text(split)
    for name, rows in (("AVVP_val_pd.csv", "a1_0_10"), ("AVVP_test_pd.csv", "b1_0_10")):
        (data / name).write_text(f"filename\tevent_labels\n{rows}\tSpeech\n")
    for name in ("AVVP_eval_audio.csv", "AVVP_eval_visual.csv"):
        (data / name).write_text("filename\tonset\toffset\tevent_labels\na1_0_10\t0\t4\tSpeech\n")
    for n in names + ["a1_0_10", "b1_0_10"]:
        (data / "videos" / f"{youtube_id(n)}.mp4").write_bytes(b"")
    ids = [youtube_id(n) for n in names] + ["a1", "b1"]
    make_feature_tree(data / "valor", "valor", ids)
    datasets = {
        "vids": {"annotations": "data", "videos": "data/videos", "n_shards": 4, "random_encoders": True},
        "feats": {"annotations": "data", "source": "features", "features": {"format": "valor", "root": "data/valor"},
                  "n_shards": 4},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"datasets": datasets, "variants": ["ecma"]}))
    p = run_snakemake(tmp_path, "-n", "-p", "results/vids/features/shard-0.h5", "results/vids/features/shard-1.h5",
                      "results/vids/features/shard-2.h5", "results/vids/features/shard-3.h5",
                      *[f"results/feats/features/shard-{i}.h5" for i in range(4)])
    assert p.returncode == 0, output_of(p)[-3000:]
    from test_workflow import shell_commands

    parser = build_parser()
    got = {"extract": [], "import": []}
    for argv in shell_commands(p):
        args = parser.parse_args(argv)  # argparse exits on a name it reads as an option
        got[argv[0]] += args.names
        if argv[0] == "extract":
            assert [p.rsplit("/", 1)[1] for p in args.videos] == [f"{youtube_id(n)}.mp4" for n in args.names]
    for command in ("extract", "import"):
        assert sorted(n for n in got[command] if n.startswith("-")) == sorted(names), command
