"""Never a silently wrong number: replaced and deleted videos, hostile checkpoints and arrays, a bad setting
that must not empty a store, resumption past the best epoch, temporaries a kill leaves, and one-line errors
for bad settings. (The workflow's side, hidden state and leakage, is in test_workflow.py.)"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ecma.cli import main
from ecma.config import ExtractConfig, config_from_dict, field_bounds
from ecma.data.classes import LLP_CLASSES
from ecma.data.shards import FeatureShard
from ecma.errors import EcmaError
from ecma.extract import extract_videos
from ecma.extract.audio import load_audio_branch_state
from ecma.io import atomic_path, content_id
from ecma.safe_load import safe_np_load
from ecma.models.checkpoint import load_model, read_checkpoint
from media import FFMPEG, make_video

CFG = ExtractConfig(visual_model="ViT-B-32", workers=0, batch_videos=4, device="cpu", amp=False)
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="the ffmpeg binary is needed to make test videos")


# ---------------------------------------------------------------------------------------------------
# Video identity by content (cases 2 and 3)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {
        "red": make_video(d / "red.mp4", seconds=2, size="64x48", pattern="testsrc"),
        "rgb": make_video(d / "rgb.mp4", seconds=2, size="64x48", pattern="rgbtestsrc"),
        "third": make_video(d / "third.mp4", seconds=1, size="48x64"),
    } if FFMPEG else {}


def test_content_id_is_size_and_hash_of_the_bytes(tmp_path):
    import hashlib

    f = tmp_path / "v.mp4"
    f.write_bytes(b"abc" * 1000)
    assert content_id(f) == f"3000:{hashlib.blake2b(b'abc' * 1000, digest_size=16).hexdigest()}"
    g = tmp_path / "w.mp4"
    g.write_bytes(b"abd" * 1000)  # same size, other bytes
    assert content_id(g) != content_id(f)


@needs_ffmpeg
def test_a_video_replaced_under_its_name_is_extracted_again(tmp_path, clips):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("v1", "v2"):
        shutil.copy(clips["red"], folder / f"{name}.mp4")
    out = tmp_path / "s.h5"
    rep = extract_videos([folder / "v1.mp4", folder / "v2.mp4"], out, CFG, progress=False)
    assert rep.extracted == 2
    with FeatureShard(out) as s:
        before = {n: s.read(n)[1] for n in ("v1", "v2")}
        assert s.attrs("v1")["content_id"] == content_id(folder / "v1.mp4")
    shutil.copy(clips["rgb"], folder / "v1.mp4")  # another video copied over v1
    rep = extract_videos([folder / "v1.mp4", folder / "v2.mp4"], out, CFG, progress=False)
    assert (rep.extracted, rep.skipped) == (1, 1)
    with FeatureShard(out) as s:
        assert not np.array_equal(s.read("v1")[1], before["v1"])
        np.testing.assert_array_equal(s.read("v2")[1], before["v2"])
        assert s.attrs("v1")["content_id"] == content_id(clips["rgb"])
    fresh = tmp_path / "fresh.h5"  # the re-extracted features are those of the new file
    extract_videos([folder / "v1.mp4"], fresh, CFG, progress=False)
    with FeatureShard(fresh) as s, FeatureShard(out) as t:
        np.testing.assert_array_equal(s.read("v1")[1], t.read("v1")[1])


@needs_ffmpeg
def test_a_removed_video_leaves_the_shard_and_the_log_says_so(tmp_path, clips, capsys):
    out, store = tmp_path / "shard.h5", tmp_path / "store.h5"
    args = ["extract", "--quiet", "--settings", '{"extract": {"visual_model": "ViT-B-32", "workers": 0, "amp": false, "device": "cpu"}}',
            "--prune", "--store", str(store), "--output", str(out)]
    videos = [str(clips["red"]), str(clips["rgb"]), str(clips["third"])]
    assert main([*args, "--videos", *videos, "--names", "A_0_10", "B_0_10", "C_0_10"]) == 0
    capsys.readouterr()
    assert main([*args, "--videos", videos[0], videos[2], "--names", "A_0_10", "C_0_10"]) == 0
    err = capsys.readouterr().err
    assert f"{out}: removed 1 video(s) no longer among its videos: B_0_10" in err
    assert "extracted 0, kept 2 already extracted, removed 1" in err
    for path in (out, store):
        with FeatureShard(path) as s:
            assert sorted(s.videos()) == ["A_0_10", "C_0_10"]
    # and training no longer sees it: with missing_videos: skip it is counted as skipped, not trained on
    from ecma.data.splits import load_split

    split = tmp_path / "train.csv"
    split.write_text("filename\tevent_labels\nA_0_10\tSpeech\nB_0_10\tDog\nC_0_10\tDog\n")
    with pytest.warns(UserWarning, match="skipping 1 of 3 videos"):
        data = load_split([out], split, LLP_CLASSES, missing="skip")
    assert data.filenames == ["A_0_10", "C_0_10"] and data.features.skipped == ["B_0_10"]


# ---------------------------------------------------------------------------------------------------
# A bad setting never empties a store (case 6)


def test_impossible_extraction_settings_are_refused_with_the_key():
    for raw, message in [
        ({"extract": {"segment_seconds": -1}}, "extract.segment_seconds must be > 0, got -1.0"),
        ({"extract": {"segment_seconds": 0}}, "extract.segment_seconds must be > 0, got 0.0"),
        ({"extract": {"batch_videos": 0}}, "extract.batch_videos must be >= 1, got 0"),
        ({"extract": {"workers": -2}}, "extract.workers must be >= 0, got -2"),
        ({"extract": {"device": "gpu"}}, "extract.device must be auto, cpu, cuda or cuda:N, got 'gpu'"),
    ]:
        with pytest.raises(EcmaError) as e:
            config_from_dict(raw)
        assert str(e.value) == f"config: {message}"


@needs_ffmpeg
def test_an_extraction_in_which_every_video_fails_leaves_the_store_as_it_was(tmp_path, clips, capsys):
    store, out = tmp_path / "store.h5", tmp_path / "shard.h5"
    extract_videos([clips["red"], clips["rgb"]], store, CFG, names=["A", "B"], progress=False)
    before = store.read_bytes()
    junk = [tmp_path / "x.mp4", tmp_path / "y.mp4"]
    for j in junk:
        j.write_text("not a video")
    # the same settings: every listed video is new and fails; prune would drop A and B
    with pytest.raises(EcmaError, match=r"every one of the 2 video\(s\) to extract failed \(first: X, .*left as it was"):
        extract_videos(junk, store, CFG, names=["X", "Y"], prune=True, progress=False)
    assert store.read_bytes() == before
    # other settings (a new fingerprint, overwrite): the old store survives a run that extracts nothing
    other = dataclasses.replace(CFG, frames_per_segment=2)
    with pytest.raises(EcmaError, match="every one"):
        extract_videos(junk, store, other, names=["X", "Y"], overwrite=True, prune=True, progress=False)
    assert store.read_bytes() == before
    # through the CLI: exit 2, one line, the published shard not written
    rc = main(["extract", "--quiet", "--settings", '{"extract": {"visual_model": "ViT-B-32", "workers": 0, "amp": false, "device": "cpu"}}',
               "--prune", "--store", str(store), "--output", str(out), "--videos", *map(str, junk), "--names", "X", "Y"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("ecma extract: error: ") and sum("error" in line for line in err) == 1
    assert store.read_bytes() == before and not out.exists()
    rows = Path(f"{store}.failures.tsv").read_text().splitlines()
    assert [r.split("\t")[0] for r in rows[1:]] == ["X", "Y"]


# ---------------------------------------------------------------------------------------------------
# Loading never runs code (case 5)


class _Marker:
    """Unpickling this calls os.system, which would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_payload(marker: Path, **fields) -> dict:
    return {"format": "ecma-checkpoint/1", "config": {}, "classes": [], "fingerprint": {}, "state_dict": {},
            "payload": _Marker(marker), **fields}


def test_a_checkpoint_with_pickled_code_is_refused_and_never_run(tmp_path, capsys):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pt"
    torch.save(_evil_payload(marker), evil)
    with pytest.raises(EcmaError, match=r"evil\.pt: refused: the checkpoint holds pickled objects or code \(posix\.system\)"):
        read_checkpoint(evil)
    assert not marker.exists()
    rc = main(["predict", "--checkpoint", str(evil), "--features", str(tmp_path / "none.h5"), "--split", "x.csv",
               "--output", str(tmp_path / "p.h5")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "refused" in err[0]
    assert not marker.exists()


def test_a_clap_checkpoint_with_pickled_code_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "clap.pt"
    torch.save({"state_dict": {"audio_branch.w": torch.zeros(2)}, "extra": _Marker(marker)}, evil)
    with pytest.raises(EcmaError, match=r"clap\.pt: refused: the CLAP checkpoint holds pickled objects or code"):
        load_audio_branch_state(str(evil))
    assert not marker.exists()


def test_a_visual_checkpoint_with_pickled_code_is_one_line_through_the_cli_and_never_run(tmp_path, capsys):
    """open_clip reads a local .pt itself (torch.load(weights_only=True)): the file is checked before, so the
    refusal is one line naming it, not torch's seven, and its code never runs."""
    import yaml

    marker = tmp_path / "PWNED"
    evil = tmp_path / "clip.pt"
    torch.save({"state_dict": {"visual.proj": torch.zeros(2)}, "extra": _Marker(marker)}, evil)
    (tmp_path / "clap.pt").write_bytes(b"never read: the visual encoder is built first")  # no random-encoder warning
    (tmp_path / "v.mp4").write_bytes(b"not decoded either")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"extract": {"visual_model": "ViT-B-32", "visual_pretrained": str(evil),
                                                  "audio_checkpoint": str(tmp_path / "clap.pt"), "workers": 0,
                                                  "device": "cpu"}}))
    rc = main(["extract", "--quiet", "--config", str(config), "--videos", str(tmp_path / "v.mp4"),
               "--output", str(tmp_path / "s.h5")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"ecma extract: error: {evil}: refused: the visual checkpoint holds pickled objects "
                               "or code (posix.system), not only weights; it was not run"]
    assert not marker.exists() and not (tmp_path / "s.h5").exists()


def test_a_clap_checkpoint_with_numpy_scalars_loads(tmp_path):
    """LAION-CLAP's released files keep numpy scalars beside the weights: those are allowed, nothing more."""
    path = tmp_path / "clap.pt"
    torch.save({"epoch": np.int64(45), "best": np.float64(0.5), "state_dict": {"module.audio_branch.w": torch.ones(2)}}, path)
    state = load_audio_branch_state(str(path))
    assert list(state) == ["w"] and torch.equal(state["w"], torch.ones(2))


def test_an_object_array_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "x.npy"
    np.save(path, np.array([_Marker(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(EcmaError, match=r"x\.npy: refused: the array is a pickled object array"):
        safe_np_load(path)
    assert not marker.exists()
    good = tmp_path / "g.npy"
    np.save(good, np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(safe_np_load(good), np.arange(6, dtype=np.float32).reshape(2, 3))
    (tmp_path / "t.npy").write_bytes(good.read_bytes()[:40])
    with pytest.raises(EcmaError, match=r"t\.npy: not a readable array"):
        safe_np_load(tmp_path / "t.npy")


def test_a_checkpoint_without_its_config_is_one_line(tmp_path):
    path = tmp_path / "partial.pt"
    torch.save({"format": "ecma-checkpoint/1", "state_dict": {}}, path)
    with pytest.raises(EcmaError, match=r"partial\.pt: the checkpoint lacks config, classes, fingerprint"):
        load_model(path)


# ---------------------------------------------------------------------------------------------------
# Resumption that always ends with a model (case 7)


def test_a_resume_past_the_best_epoch_still_writes_model_pt(tmp_path, monkeypatch):
    from ecma.data.splits import load_split
    from ecma.training import train as train_module
    from synthetic import make_planted_data

    data = make_planted_data(tmp_path / "data", n_train=32, n_val=16, n_test=8)
    train_data = load_split(data.shards, data.train_csv, LLP_CLASSES)
    val_data = load_split(data.shards, data.val_csv, LLP_CLASSES, eval_audio_csv=data.eval_audio_csv,
                          eval_visual_csv=data.eval_visual_csv)
    cfg = config_from_dict({"model": {"audio_dim": data.audio_dim, "visual_dim": data.visual_dim, "d_model": 16,
                                      "num_layers": 1, "num_heads": 2, "d_ff": 32},
                            "train": {"epochs": 4, "batch_size": 16, "threads": 1}})
    scores = iter([10.0, 30.0, 20.0, 5.0])  # the best epoch is the 2nd; the run is killed after the 3rd

    def scripted_validate(model, data, cfg, device, classes=None):
        s = next(scores)
        return {"segment": {k: s for k in ("type_av", "event_av", "audio", "visual", "audio_visual")},
                "event": {k: s for k in ("type_av", "event_av")}}

    monkeypatch.setattr(train_module, "validate", scripted_validate)
    out = tmp_path / "model"
    kw = dict(classes=LLP_CLASSES, fingerprint=train_data.features.fingerprint, progress=False)
    train_module.train(cfg, train_data, val_data, out, stop_after_epochs=3, **kw)
    best_weights = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    (out / "model.pt").unlink()  # Snakemake deletes a rule's outputs before it reruns the job
    result = train_module.train(cfg, train_data, val_data, out, **kw)
    assert result.resumed_from == 2 and result.best_epoch == 2 and len(result.history) == 4
    model, _, payload = load_model(out / "model.pt")
    assert payload["epoch"] == 2 and payload["val_metrics"]["segment"]["type_av"] == 30.0
    for k, v in best_weights.items():
        assert torch.equal(model.state_dict()[k], v), k


# ---------------------------------------------------------------------------------------------------
# Temporaries a kill leaves are cleaned by the next write of the same output


def test_the_next_write_removes_what_a_killed_writer_left(tmp_path):
    target = tmp_path / "model.pt"
    debris = [tmp_path / ".model.pt.abc123.tmp", tmp_path / ".model.pt.zz.tmp"]
    unrelated = [tmp_path / ".other.pt.abc.tmp", tmp_path / "model.pt.tmp"]
    for p in debris + unrelated:
        p.write_text("half")
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert not any(p.exists() for p in debris) and all(p.exists() for p in unrelated)
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted(["model.pt"] + [p.name for p in unrelated])


@needs_ffmpeg
def test_a_killed_part_file_is_cleaned_by_the_next_run(tmp_path, clips):
    out = tmp_path / "s.h5"
    parts = tmp_path / "s.h5.parts"
    parts.mkdir()
    (parts / ".part-deadbeef.h5.x1.tmp").write_bytes(b"half an hdf5 file")
    (tmp_path / ".s.h5.x2.tmp").write_bytes(b"half a merge")
    extract_videos([clips["third"]], out, CFG, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5", "s.h5.failures.tsv"]


# ---------------------------------------------------------------------------------------------------
# Errors name the key and the value (case 8)


@pytest.mark.parametrize("raw, message", [
    ({"eval": {"batch_size": 0}}, "eval.batch_size must be >= 1, got 0"),
    ({"train": {"device": "gpu"}}, "train.device must be auto, cpu, cuda or cuda:N, got 'gpu'"),
    ({"train": {"epochs": 0}}, "train.epochs must be >= 1, got 0"),
    ({"train": {"batch_size": -4}}, "train.batch_size must be >= 1, got -4"),
    ({"train": {"lr": 0}}, "train.lr must be > 0, got 0.0"),
    ({"train": {"ema_alpha": 1.0}}, "train.ema_alpha must be < 1, got 1.0"),
    ({"model": {"dropout": -0.1}}, "model.dropout must be >= 0, got -0.1"),
    ({"eval": {"segment_threshold": 1.5}}, "eval.segment_threshold must be <= 1, got 1.5"),
])
def test_each_bad_value_is_named_with_its_key_and_value(raw, message):
    with pytest.raises(EcmaError) as e:
        config_from_dict(raw)
    assert str(e.value) == f"config: {message}"


def test_every_default_lies_within_its_bounds():
    from ecma.config import DatasetConfig, DemoConfig, EcmaConfig

    cfg = EcmaConfig()
    classes = [(getattr(cfg, f.name), type(getattr(cfg, f.name))) for f in dataclasses.fields(cfg)]
    classes += [(DatasetConfig(), DatasetConfig), (DemoConfig(), DemoConfig)]
    checked = 0
    for obj, cls in classes:
        for name, bounds in field_bounds(cls).items():
            value = getattr(obj, name)
            if value is None:
                continue
            checked += 1
            assert bounds["ge"] is None or value >= bounds["ge"], (cls.__name__, name)
            assert bounds["gt"] is None or value > bounds["gt"], (cls.__name__, name)
            assert bounds["le"] is None or value <= bounds["le"], (cls.__name__, name)
            assert bounds["lt"] is None or value < bounds["lt"], (cls.__name__, name)
    assert checked > 30


def test_a_device_this_machine_lacks_is_one_line_at_the_job():
    from ecma.device import resolve_device

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(EcmaError, match="device 'cuda:1' asked for, but this machine has no usable CUDA GPU"):
        resolve_device("cuda:1")


def test_settings_json_is_checked_like_a_config_file(tmp_path, capsys):
    rc = main(["evaluate", "--settings", '{"eval": {"batch_size": 0}}', "--predictions", "p.h5", "--split", "s.csv",
               "--eval-audio", "a.csv", "--eval-visual", "v.csv", "--output", str(tmp_path / "m.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["ecma evaluate: error: --settings: eval.batch_size must be >= 1, got 0"]
    rc = main(["evaluate", "--settings", "{eval: 1}", "--predictions", "p.h5", "--split", "s.csv",
               "--eval-audio", "a.csv", "--eval-visual", "v.csv", "--output", str(tmp_path / "m.json")])
    assert rc == 2 and "--settings is not valid JSON" in capsys.readouterr().err


def test_train_refuses_a_video_in_both_training_and_validation(tmp_path, capsys):
    train_csv, val_csv = tmp_path / "train.csv", tmp_path / "val.csv"
    train_csv.write_text("filename\tevent_labels\nA_0_10\tSpeech\nB_0_10\tDog\n")
    val_csv.write_text("filename\tevent_labels\nC_0_10\tSpeech\nB_0_10\tDog\n")
    args = ["train", "--features", str(tmp_path / "none.h5"), "--output-dir", str(tmp_path / "out"),
            "--train", str(train_csv), "--val", str(val_csv), "--eval-audio", "a.csv", "--eval-visual", "v.csv"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"ecma train: error: B_0_10: listed in {train_csv} and in {val_csv} (a video in two splits leaks between them)"]
    assert main([*args, "--allow-split-overlap"]) == 2  # now it gets as far as the (missing) features
    assert "none.h5: feature shard not found" in capsys.readouterr().err


@needs_ffmpeg
def test_a_video_replaced_by_a_broken_file_loses_its_old_features(tmp_path, clips):
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(clips["red"], folder / "v1.mp4")
    shutil.copy(clips["rgb"], folder / "v2.mp4")
    out = tmp_path / "s.h5"
    extract_videos([folder / "v1.mp4", folder / "v2.mp4"], out, CFG, progress=False)
    (folder / "v1.mp4").write_text("a truncated download")  # same name, now unreadable
    rep = extract_videos([folder / "v1.mp4", folder / "v2.mp4"], out, CFG, progress=False)
    assert [f[0] for f in rep.failed] == ["v1"] and rep.removed == ["v1"]
    with FeatureShard(out) as s:
        assert s.videos() == ["v2"]  # not v1's features of the file that was replaced
