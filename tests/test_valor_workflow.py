"""A dataset of VALOR's published features with a video folder: the videos with published features are
imported, the annotated ones without are extracted (``extract.profile: valor``) into ``features/extracted/``
by the same shard hash, and both reach training. Which jobs rerun after what change (stub ``ecma``), what
must stop before any job, the shipped ``llp`` dataset's profile, and (slow) a real run in which one shard
mixes imported and extracted videos, trains, and whose model parses a new video."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ecma.data.datasets import (FeatureSources, dataset_feature_sources, dataset_files, feature_shards,
                                remove_stale_extracted_shards, shard_path, stale_extracted_shards, videos_to_extract)
from ecma.data.names import shard_of, youtube_id
from ecma.errors import EcmaError
from feature_trees import make_feature_tree
from test_workflow import (REPO, assert_stopped_before_any_job, make_dataset, names_in_shard, output_of,  # noqa: F401
                           run_snakemake, shell_commands, stub_env, write_split)  # (stub_env: a fixture)

N_SHARDS = 3


def llp_names(prefix: str, shard: int, count: int, start: int = 0, n_shards: int = N_SHARDS) -> list[str]:
    """``count`` LLP-style names (<11-character id>_0_10) that fall into ``shard`` of ``n_shards``."""
    return names_in_shard(prefix, shard, n_shards, count, start=start, llp=True)


def touch_video(data: Path, name: str) -> None:
    (data / "videos" / f"{youtube_id(name)}.mp4").write_bytes(b"")


def publish(root: Path, names: list[str], seed: int = 0) -> None:
    make_feature_tree(root, "valor", [youtube_id(n) for n in names], seed=seed)


def valor_dataset(tmp_path: Path, published: dict[str, list[str]], new: dict[str, list[str]], **features) -> dict:
    """data/ (csvs of both kinds of videos; videos/ holding the new ones), feats/ (VALOR's tree of the
    published ones), weights/ (two files standing for the encoders: the stub never reads them)."""
    splits = {s: published[s] + new.get(s, []) for s in published}
    data = make_dataset(tmp_path / "data", splits, touch_videos=False)
    for names in new.values():
        for n in names:
            touch_video(data, n)
    publish(tmp_path / "feats", [n for names in published.values() for n in names])
    (tmp_path / "weights").mkdir(exist_ok=True)
    for f in ("clip.pt", "clap.pt"):
        (tmp_path / "weights" / f).write_bytes(b"weights")
    return {
        "annotations": "data", "source": "features", "videos": "data/videos", "n_shards": N_SHARDS,
        "features": {"format": "valor", "root": "feats", "encoders": "extract", **features},
        "overrides": {"extract": {"profile": "valor", "visual_pretrained": "weights/clip.pt",
                                  "audio_checkpoint": "weights/clap.pt"}},
    }


def write_config(workdir: Path, datasets: dict) -> None:
    (workdir / "config.yaml").write_text(yaml.safe_dump({"datasets": datasets, "variants": ["ecma"]}, sort_keys=False))


def import_or_extract_calls(calls: list[tuple[str, str]], argvs: list[list[str]]) -> list[str]:
    """'import 0', 'extract extracted/1', ... of a stub run: which shard each import or extraction wrote."""
    out = []
    for argv in argvs:
        if argv[0] in ("import", "extract"):
            output = Path(argv[argv.index("--output") + 1])
            where = "extracted/" if output.parent.name == "extracted" else ""
            out.append(f"{argv[0]} {where}{output.stem.removeprefix('shard-')}")
    return sorted(out)


AFTER_FEATURES = ["evaluate", "predict", "summarize", "train"]  # metrics.json of one variant and seed


def rerun(tmp_path, env, calls) -> tuple[list[str], list[str], list[list[str]]]:
    """Run to metrics.json: (the imports and extractions, the other commands, every argv)."""
    p = run_snakemake(tmp_path, "results/mine/metrics.json", env=env)
    assert p.returncode == 0, output_of(p)[-5000:]
    done = calls()
    argvs = getattr(calls, "argvs", []) if done else []
    return import_or_extract_calls(done, argvs), sorted({c for c, _ in done} - {"import", "extract"}), argvs


def training_features(argvs: list[list[str]]) -> list[str]:
    argv = next(a for a in argvs if a[0] == "train")
    i = argv.index("--features") + 1
    out = []
    while i < len(argv) and not argv[i].startswith("--"):
        out.append(argv[i])
        i += 1
    return out


# ---------------------------------------------------------------------------------------------------
# Which jobs rerun (stub ecma)


def test_new_videos_extract_only_their_shard_and_move_to_the_import_when_published(tmp_path, stub_env):
    env, calls = stub_env
    published = {"train": llp_names("tr", 0, 2) + llp_names("tr", 1, 2) + llp_names("tr", 2, 2),
                 "val": llp_names("va", 0, 1), "test": llp_names("te", 2, 1)}
    new = {"train": llp_names("nw", 1, 2)}  # two videos without published features, both in shard 1
    write_config(tmp_path, {"mine": valor_dataset(tmp_path, published, new)})
    extracted = tmp_path / "results/mine/features/extracted"

    made, others, argvs = rerun(tmp_path, env, calls)
    assert made == ["extract extracted/1", "import 0", "import 1", "import 2"]  # no job for shards 0 and 2
    assert others == AFTER_FEATURES
    assert training_features(argvs) == [f"results/mine/features/shard-{i}.h5" for i in range(3)] + [
        "results/mine/features/extracted/shard-1.h5"]
    extract = next(a for a in argvs if a[0] == "extract")
    assert sorted(a.removeprefix("--names=") for a in extract if a.startswith("--names=")) == new["train"]
    assert json.loads(extract[extract.index("--settings") + 1])["extract"]["profile"] == "valor"
    # the imports name the encoders that computed the published features (features.encoders: extract)
    imports = [a for a in argvs if a[0] == "import"]
    encoders = [json.loads(next(w for w in a if w.startswith("--encoders=")).removeprefix("--encoders="))
                for a in imports]
    assert [e["extract"]["audio_checkpoint"] for e in encoders] == ["weights/clap.pt"] * 3
    from ecma.cli import build_parser

    for argv in argvs:  # what the rules run, read by the real command line
        if argv[0] in ("import", "extract"):
            build_parser().parse_args(argv)
    assert rerun(tmp_path, env, calls)[:2] == ([], [])  # nothing to do

    # a new video (with its row) in shard 2: only shard 2 is extracted, beside its untouched import
    added = llp_names("ad", 2, 1)
    touch_video(tmp_path / "data", added[0])
    write_split(tmp_path / "data/AVVP_train.csv", published["train"] + new["train"] + added)
    made, others, argvs = rerun(tmp_path, env, calls)
    assert made == ["extract extracted/2"] and others == AFTER_FEATURES
    assert training_features(argvs)[-2:] == [str(Path("results/mine/features/extracted") / f"shard-{i}.h5")
                                             for i in (1, 2)]

    # its features are published: it moves to the import of shard 2, and shard 2's extracted shard, now
    # without videos, is deleted when the run starts (not by a dry run)
    publish(tmp_path / "feats", added, seed=3)
    p = run_snakemake(tmp_path, "-n", "results/mine/metrics.json", env=env)
    assert p.returncode == 0 and (extracted / "shard-2.h5").is_file(), output_of(p)
    made, others, argvs = rerun(tmp_path, env, calls)
    assert made == ["import 2"] and others == AFTER_FEATURES
    assert not (extracted / "shard-2.h5").exists() and not (extracted / "shard-2.h5.failures.tsv").exists()
    assert (extracted / "shard-1.h5").is_file()
    assert "results/mine/features/extracted/shard-2.h5" not in training_features(argvs)
    imported = next(a for a in argvs if a[0] == "import")
    assert f"--names={added[0]}" in imported

    # one of shard 1's two extracted videos is published: its shard's import and extraction both rerun, the
    # extraction without it (--prune drops it from the store)
    publish(tmp_path / "feats", new["train"][:1], seed=4)
    made, others, argvs = rerun(tmp_path, env, calls)
    assert made == ["extract extracted/1", "import 1"] and others == AFTER_FEATURES
    extract = next(a for a in argvs if a[0] == "extract")
    assert [a for a in extract if a.startswith("--names=")] == [f"--names={new['train'][1]}"] and "--prune" in extract


def test_the_sources_one_video_one_place(tmp_path):
    """The library decision: published features win; a video with neither is missing; stale shards."""
    from ecma.config import workflow_config_from_dict

    published = {"train": llp_names("tr", 0, 2), "val": llp_names("va", 1, 1), "test": llp_names("te", 2, 1)}
    new = {"train": llp_names("nw", 1, 1) + llp_names("nw", 2, 1, start=50)}
    ds = valor_dataset(tmp_path, published, new)
    touch_video(tmp_path / "data", published["train"][0])  # a video whose features are published too
    ds = {k: (str(tmp_path / v) if k in ("annotations", "videos") else v) for k, v in ds.items()}
    ds["features"] = {**ds["features"], "root": str(tmp_path / "feats")}
    cfg = workflow_config_from_dict({"datasets": {"mine": ds}})
    files = dataset_files(cfg, "mine", tmp_path / "results")
    sources = dataset_feature_sources(files)
    assert sorted(sources.imported) == sorted(n for names in published.values() for n in names)
    assert sorted(sources.extracted) == sorted(new["train"])  # not the published video's file
    assert sources.extraction_shards(N_SHARDS) == [1, 2]
    assert feature_shards(files, "res", sources) == [Path(f"res/mine/features/shard-{i}.h5") for i in range(3)] + [
        Path(f"res/mine/features/extracted/shard-{i}.h5") for i in (1, 2)]
    assert feature_shards(files, "res") == [shard_path("res", "mine", i) for i in range(3)]
    assert videos_to_extract(files) == sources.extracted  # what `ecma extract --dataset` extracts
    # a video with neither: an error naming both places, unless missing_videos: skip
    write_split(tmp_path / "data/AVVP_train.csv", published["train"] + new["train"] + ["gone0000000_0_10"])
    with pytest.raises(EcmaError, match="1 annotated video.* have neither valor feature files nor a video in .*"
                                        "gone0000000_0_10 .set datasets.mine.missing_videos: skip"):
        dataset_feature_sources(files)
    import dataclasses

    assert "gone0000000_0_10" not in dataset_feature_sources(dataclasses.replace(files, missing_videos="skip")).extracted
    # a video file that no annotation row names is an error, as in a dataset of videos
    (tmp_path / "data/videos/stray.mp4").write_bytes(b"")
    with pytest.raises(EcmaError, match="1 video.* have no annotation row: stray.mp4"):
        dataset_feature_sources(dataclasses.replace(files, missing_videos="skip"))
    # stale extracted shards: those of shard indices the plan no longer has, with their failures tables
    folder = tmp_path / "results/mine/features/extracted"
    (folder / "store").mkdir(parents=True)
    for i in range(4):
        (folder / f"shard-{i}.h5").write_bytes(b"")
        (folder / f"shard-{i}.h5.failures.tsv").write_text("filename\tstage\treason\n")
        (folder / "store" / f"shard-{i}.h5").write_bytes(b"")
    assert [p.name for p in stale_extracted_shards(tmp_path / "results", "mine", [1, 2])] == [
        "shard-0.h5", "shard-0.h5.failures.tsv", "shard-3.h5", "shard-3.h5.failures.tsv"]
    removed = remove_stale_extracted_shards(tmp_path / "results", {"mine": [1, 2]})
    assert len(removed) == 4 and sorted(p.name for p in folder.glob("shard-*.h5")) == ["shard-1.h5", "shard-2.h5"]
    assert len(list((folder / "store").iterdir())) == 4  # the stores stay: extraction prunes them
    assert remove_stale_extracted_shards(tmp_path / "results", {"other": []}) == []
    assert FeatureSources({}, {}).extraction_shards(3) == []


def test_import_takes_the_encoders_as_json_as_the_rules_pass_them(tmp_path):
    from ecma.cli import main
    from ecma.data.shards import FeatureShard
    from ecma.extract.valor import identity

    names = ["pub00000000_0_10"]
    make_feature_tree(tmp_path / "feats", "valor", ["pub00000000"])
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"stand-in weights")  # named by its sha256; import never loads it
    extract = {"profile": "valor", "visual_pretrained": str(weights), "audio_checkpoint": str(weights)}
    out = tmp_path / "s.h5"
    args = ["import", "--quiet", "--format", "valor", "--root", str(tmp_path / "feats"), f"--names={names[0]}",
            "--output", str(out)]
    assert main(args + ["--encoders", json.dumps({"extract": extract})]) == 0
    from ecma.config import ExtractConfig

    with FeatureShard(out) as shard:
        assert shard.fingerprint == identity.settings_fingerprint(ExtractConfig(**extract))
        assert shard.fingerprint["audio"]["sha256"] == shard.fingerprint["visual"]["sha256"]
    (tmp_path / "e.yaml").write_text(yaml.safe_dump({"extract": extract}))
    assert main(args + ["--encoders", "{}", "--encoders-from", str(tmp_path / "e.yaml")]) == 2
    assert main(args + ["--encoders", "[1]"]) == 2
    assert main(args + ["--encoders", json.dumps({"extract": {**extract, "profile": "native"}})]) == 2


# ---------------------------------------------------------------------------------------------------
# What stops before any job


def llp_valor_with_videos(tmp_path: Path, new: list[str], published: list[str]) -> dict:
    """config.yaml's own llp_valor, with a video folder holding ``new`` (no published features)."""
    splits = {"train": published + new, "val": llp_names("va", 0, 1), "test": llp_names("te", 1, 1)}
    data = make_dataset(tmp_path / "data" / "llp", splits, touch_videos=False)
    for n in new:
        touch_video(data, n)
    publish(data / "valor", published + splits["val"] + splits["test"])
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["datasets"]["llp_valor"]["videos"] = "data/llp/videos"
    return cfg


def test_extractions_that_could_not_mix_with_the_published_features_stop_before_any_job(tmp_path):
    from ecma.extract.valor import identity

    cfg = llp_valor_with_videos(tmp_path, llp_names("nw", 1, 1), llp_names("tr", 0, 2))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    p = run_snakemake(tmp_path, "-n", "results/llp_valor/metrics.json")
    if identity.LAION_630K_FUSION_SHA256 is None:
        # the published checkpoints are named, but LAION-CLAP's sha256 is not recorded: said, with what to do
        assert_stopped_before_any_job(tmp_path, p, "datasets.llp_valor: its 1 video(s) without published features",
                                      "no sha256 recorded for the published 630k-fusion-best.pt",
                                      "datasets.llp_valor.features.encoders: extract")
    else:
        assert p.returncode == 0, output_of(p)
    # other weights than the published ones: stopped whatever is recorded, naming them
    cfg["datasets"]["llp_valor"]["overrides"]["extract"]["audio_checkpoint"] = "laion:630k-audioset-fusion-best.pt"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    p = run_snakemake(tmp_path, "-n", "results/llp_valor/metrics.json")
    assert_stopped_before_any_job(tmp_path, p, "extract.audio_checkpoint 'laion:630k-audioset-fusion-best.pt' is "
                                               "not laion:630k-fusion-best.pt")
    # a native extract section beside valor features: a config error
    cfg["datasets"]["llp_valor"]["overrides"]["extract"]["profile"] = "native"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    p = run_snakemake(tmp_path, "-n", "results/llp_valor/metrics.json")
    assert_stopped_before_any_job(tmp_path, p, "set its overrides extract.profile: valor")
    # videos beside features no extractor computes
    cfg["datasets"]["llp_han"]["videos"] = "data/llp/videos"
    del cfg["datasets"]["llp_valor"]["videos"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    p = run_snakemake(tmp_path, "-n", "results/llp_han/metrics.json")
    assert_stopped_before_any_job(tmp_path, p, "datasets.llp_han.videos goes with features of format valor only")


def test_a_video_folder_without_videos_to_extract_needs_no_weights(tmp_path):
    """Every video in the folder has published features: imports only, nothing fetched, nothing refused."""
    published = llp_names("tr", 0, 2)
    cfg = llp_valor_with_videos(tmp_path, [], published)
    for n in published:
        touch_video(tmp_path / "data" / "llp", n)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    p = run_snakemake(tmp_path, "-n", "results/llp_valor/metrics.json")
    assert p.returncode == 0, output_of(p)
    text = output_of(p)
    assert "rule import_shard" in text and "extract_new_videos" not in text and "fetch_weights" not in text


def test_the_shipped_llp_datasets_extract_with_the_valor_profile(tmp_path):
    """results/llp/ (raw videos) extracts VALOR's features with the published checkpoints, fetched from the
    addresses that name them; llp_valor's models store the same extract section, for ecma parse."""
    from ecma.cli import build_parser
    from ecma.config import load_workflow_config

    wcfg = load_workflow_config(REPO / "config.yaml")
    for name in ("llp", "llp_valor"):
        extract = wcfg.for_dataset(name).extract
        assert (extract.profile, extract.visual_model, extract.visual_pretrained, extract.audio_checkpoint) == (
            "valor", "ViT-L-14-quickgelu", "openai", "laion:630k-fusion-best.pt"), name
    assert wcfg.for_dataset("demo").extract.profile == "native"  # the demo keeps its small random encoders
    names = {"train": llp_names("tr", 0, 1), "val": llp_names("va", 1, 1), "test": llp_names("te", 2, 1)}
    make_dataset(tmp_path / "data" / "llp", names)
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    p = run_snakemake(tmp_path, "-n", "-p", "results/llp/features/shard-0.h5")
    assert p.returncode == 0, output_of(p)
    commands = [build_parser().parse_args(argv) for argv in shell_commands(p)]
    extract = json.loads(next(c for c in commands if c.command == "extract").settings)["extract"]
    assert extract["profile"] == "valor"
    assert extract["visual_pretrained"] == "resources/weights/open_clip/ViT-L-14-quickgelu-openai-url.pt"
    assert extract["audio_checkpoint"] == "resources/weights/laion_clap/630k-fusion-best.pt"
    assert sorted(" ".join(c.spec) for c in commands if c.command == "fetch-weights") == [
        "laion_clap 630k-fusion-best.pt", "open_clip_url ViT-L-14-quickgelu openai"]


# ---------------------------------------------------------------------------------------------------
# For real: one shard mixes imported and extracted videos, trains, and the model parses a new video


@pytest.mark.slow
def test_one_shard_mixes_imported_and_extracted_videos_trains_and_its_model_parses_a_video(tmp_path):
    from ecma.config import ExtractConfig
    from ecma.data.shards import FeatureShard
    from ecma.extract.valor import identity
    from media import FFMPEG, make_video
    from valor_weights import TINY_CLIP, tiny_clip_plugin, write_valor_weights

    if FFMPEG is None:
        pytest.skip("ffmpeg is not installed: no videos to extract (.ci/install installs it)")
    weights = write_valor_weights(tmp_path / "encoders")
    plugin = tiny_clip_plugin(tmp_path / "plugin", weights["config"])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(plugin), os.environ.get("PYTHONPATH")])))

    def names(prefix, shard, count):
        return llp_names(prefix, shard, count, n_shards=2)

    published = {"train": names("tr", 0, 2) + names("tr", 1, 2), "val": names("va", 0, 1) + names("va", 1, 1),
                 "test": names("te", 1, 1)}
    new = {"train": names("nw", 0, 1), "test": names("nt", 0, 1)}  # both in shard 0, beside imported videos
    ds = valor_dataset(tmp_path, published, new)
    for i, name in enumerate(n for names in new.values() for n in names):
        make_video(tmp_path / "data/videos" / f"{youtube_id(name)}.mp4", seconds=3, size="64x48", fps=10,
                   sample_rate=16000, pattern=("testsrc2", "rgbtestsrc")[i % 2])
    extract = {"profile": "valor", "visual_model": TINY_CLIP, "visual_pretrained": "encoders/clip.pt",
               "audio_checkpoint": "encoders/clap-fusion.pt", "workers": 0, "device": "cpu"}
    ds.update(n_shards=2, overrides={"extract": extract})
    cfg = {"datasets": {"mine": ds}, "variants": ["ecma"],
           "model": {"d_model": 16, "num_layers": 1, "num_heads": 1, "d_ff": 16},
           "train": {"epochs": 1, "batch_size": 4, "threads": 1}, "eval": {"batch_size": 8}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))

    p = run_snakemake(tmp_path, "results/mine/metrics.json", env=env)
    assert p.returncode == 0, output_of(p)[-6000:]
    features = tmp_path / "results/mine/features"
    assert sorted(p.name for p in (features / "extracted").glob("*.h5")) == ["shard-0.h5"]  # shard 1: none
    with FeatureShard(features / "shard-0.h5") as imported, FeatureShard(features / "extracted/shard-0.h5") as ex:
        assert sorted(imported.videos()) == sorted(n for names in published.values() for n in names
                                                   if shard_of(n, 2) == 0)
        assert sorted(ex.videos()) == sorted(n for names in new.values() for n in names)
        expected = identity.settings_fingerprint(ExtractConfig(**{
            **extract, "visual_pretrained": str(weights["clip"]), "audio_checkpoint": str(weights["clap"])}))
        assert imported.fingerprint == ex.fingerprint == expected  # one identity: they mix
    metrics = json.loads((tmp_path / "results/mine/metrics.json").read_text())
    assert metrics["num_videos"] == 2 and not metrics.get("skipped")  # the extracted test video was scored
    assert metrics["provenance"]["feature_fingerprint"] == expected

    # the model parses a video it never saw, with the extract section stored in it (weights by path, checked
    # by sha256 against its fingerprint): no --config
    video = make_video(tmp_path / "new clip.mp4", seconds=4, size="80x60", fps=12, sample_rate=22050)
    model = "results/mine/models/ecma/seed-0/model.pt"
    p = subprocess.run([sys.executable, "-m", "ecma.cli", "parse", "--quiet", "--checkpoint", model,
                        "--output-dir", "parsed", "--", str(video)], cwd=tmp_path, env=env, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    record = json.loads((tmp_path / "parsed" / "new clip.json").read_text())
    assert record["provenance"]["fingerprint"] == expected and record["video"]["n_segments"] == 10
