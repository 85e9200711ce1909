"""ecma import: published feature folders (VALOR's, HAN's) into shards, the CLAP conversion, bad files,
sharding, exit codes, and the frame-level and 3-D streams reaching the model."""

import csv
import hashlib
import pathlib
import pickle

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from ecma.cli import main
from ecma.config import ModelConfig
from ecma.data.annotations import read_split
from ecma.data.classes import LLP_CLASSES
from ecma.data.names import shard_of, youtube_id
from ecma.data.shards import FeatureShard, load_features
from ecma.data.splits import check_feature_dims, load_split
from ecma.errors import EcmaError
from ecma.importers.run import import_features
from ecma.importers.clap import adaptive_avg_pool_matrix, bicubic_matrix, clap_map_to_segments
from ecma.models.han.network import HANNet
from feature_trees import VALOR_FILES, make_feature_tree, write_split_csv

MADE_UP = [f"vid{i:08d}_{10 * (i % 5)}_{10 * (i % 5) + 10}" for i in range(24)]  # 11-char ids, LLP-style names


def read_failures(output):
    with open(f"{output}.failures.tsv", newline="") as f:
        return list(csv.reader(f, delimiter="\t"))


def tree(tmp_path, layout, filenames, seed=0):
    root = tmp_path / layout
    arrays = make_feature_tree(root, layout, dict.fromkeys(youtube_id(f) for f in filenames), seed=seed)
    return root, arrays, write_split_csv(tmp_path / f"{layout}.csv", filenames)


@pytest.fixture
def llp_names(llp_dir):
    """A few dozen real LLP filenames from every split (the fixture skips, saying why, without the csvs)."""
    names = []
    for split, n in (("AVVP_train.csv", 20), ("AVVP_val_pd.csv", 6), ("AVVP_test_pd.csv", 6)):
        names += read_split(llp_dir / split, LLP_CLASSES).filenames[:n]
    return names


def valor_path(x):
    """VALOR's MMIL_Net input path for CLAP maps up to (not including) fc_a, written out independently:
    view, bicubic upsampling, mean over frequency, adaptive pooling (torch's own operators)."""
    t = torch.from_numpy(x).permute(0, 2, 1).contiguous().view(-1, 768, 2, 32)
    up = F.interpolate(t, size=(2, 1024), mode="bicubic")
    return F.adaptive_avg_pool1d(up.mean(dim=2), 10).permute(0, 2, 1)


# ---------------------------------------------------------------- round trips


def test_valor_round_trip_on_real_llp_names(tmp_path, llp_names):
    root, arrays, ann = tree(tmp_path, "valor", llp_names)
    out = tmp_path / "valor.h5"
    assert main(["import", "--format", "valor", "--root", str(root), "--annotations", str(ann), "--output", str(out), "--quiet"]) == 0
    assert read_failures(out) == [["filename", "stage", "reason"]]
    with FeatureShard(out) as s:
        assert sorted(s.videos()) == sorted(llp_names)
        fp = s.fingerprint
        for name in llp_names:
            video = s.read_video(name)
            src = arrays[youtube_id(name)]
            assert video.audio.dtype == np.float32 and video.visual.shape == (10, 768)
            np.testing.assert_array_equal(video.visual, src["CLIP/features"])  # exact
            np.testing.assert_allclose(video.audio, valor_path(src["CLAP/features"][None])[0].numpy(), atol=2e-6)
            assert video.visual_3d is None and video.frames_per_segment == 1
            assert "frames_per_segment" not in s.attrs(name)
        manifest = s.manifest
    # VALOR's features carry the identity valor-profile extractions share, naming the published checkpoints
    assert fp["features"] == "valor" and fp["valor_recipe_version"] >= 1 and fp["dtype"] == "float32"
    assert fp["visual"]["sha256"] == "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836"  # in OpenAI's URL
    assert fp["visual"]["model"] == "open_clip/ViT-L-14-quickgelu" and fp["audio"]["model"] == "laion_clap/HTSAT-tiny fusion"
    assert "bicubic" in fp["audio"]["features"] and "manifest" not in fp  # per shard: see ecma.data.shards
    # the manifest: sha256 of the sorted 'path<TAB>size' lines of every file used, computed here independently
    lines = sorted(f"{folder}/{vid}.npy\t{(root / folder / f'{vid}.npy').stat().st_size}\n"
                   for vid in arrays for folder in VALOR_FILES)
    assert manifest == {"sha256": hashlib.sha256("".join(lines).encode()).hexdigest(), "files": len(lines),
                        "bytes": sum(int(line.split("\t")[1]) for line in lines)}


def test_han_round_trip_frame_level_and_3d(tmp_path):
    root, arrays, ann = tree(tmp_path, "han", MADE_UP[:10])
    out = tmp_path / "han.h5"
    report = import_features("han", root, [ann], out, progress=False)
    assert report.imported == 10 and not report.failed
    with FeatureShard(out) as s:
        for name in MADE_UP[:10]:
            video, src = s.read_video(name), arrays[youtube_id(name)]
            np.testing.assert_array_equal(video.audio, src["vggish"])
            np.testing.assert_array_equal(video.visual, src["res152"])
            np.testing.assert_array_equal(video.visual_3d, src["r2plus1d_18"])
            assert video.frames_per_segment == 8 and s.attrs(name)["n_segments"] == 10
    fs = load_features([out], MADE_UP[:10])
    assert fs.audio.shape == (10, 10, 128) and fs.visual.shape == (10, 80, 2048) and fs.visual_3d.shape == (10, 10, 512)
    assert fs.frames_per_segment == 8 and fs.fingerprint["format"] == "han"
    np.testing.assert_array_equal(fs.visual_3d[3], arrays[youtube_id(MADE_UP[3])]["r2plus1d_18"])


def test_old_shards_read_as_one_frame_without_3d(tmp_path):
    with FeatureShard(tmp_path / "old.h5", "w") as s:
        s.fingerprint = {"visual_model": "x"}
        s.write("a", np.ones((10, 4)), np.ones((10, 3)))
        assert set(s._h5["a"]) == {"audio", "visual"} and "frames_per_segment" not in s.attrs("a")
    fs = load_features([tmp_path / "old.h5"], ["a"])
    assert fs.visual_3d is None and fs.frames_per_segment == 1 and fs.visual.shape == (1, 10, 3)


def test_imported_and_extracted_shards_never_mix(tmp_path):
    root, _, ann = tree(tmp_path, "valor", MADE_UP[:4])
    imported = tmp_path / "imported.h5"
    import_features("valor", root, [ann], imported, progress=False)
    extracted = tmp_path / "extracted.h5"
    with FeatureShard(extracted, "w") as s:
        s.fingerprint = {"visual": {"model": "open_clip/ViT-L-14-quickgelu"}, "n_segments": 10}
        s.write(MADE_UP[5], np.zeros((10, 768)), np.zeros((10, 768)))
    with pytest.raises(EcmaError, match="feature fingerprint differs"):
        load_features([imported, extracted], MADE_UP[:4] + [MADE_UP[5]])


# ---------------------------------------------------------------- the CLAP conversion


def test_clap_conversion_is_torchs_interpolation_and_pooling():
    maps = np.random.default_rng(1).standard_normal((5, 64, 768), dtype=np.float32)
    ours = np.stack([clap_map_to_segments(m) for m in maps])
    assert ours.shape == (5, 10, 768) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, valor_path(maps).numpy(), atol=2e-6, rtol=0)
    # the commuting argument needs weights summing to 1 per output; and 2 -> 2 bicubic is the identity
    np.testing.assert_allclose(bicubic_matrix(32, 1024).sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(adaptive_avg_pool_matrix(1024, 10).sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(bicubic_matrix(2, 2), np.eye(2))


def test_clap_conversion_then_projection_equals_valors_input_path():
    """VALOR projects every upsampled cell with fc_a, then averages and pools; we pool first, then project."""
    torch.manual_seed(0)
    fc_a = torch.nn.Linear(768, 256)  # a random projection with a bias, as VALOR's
    maps = np.random.default_rng(2).standard_normal((4, 64, 768), dtype=np.float32)
    with torch.no_grad():
        # VALOR's MMIL_Net.forward, audio.size(1) == 64 branch
        x1 = torch.from_numpy(maps).permute(0, 2, 1).contiguous().view(-1, 768, 2, 32)
        upsampled = F.interpolate(x1, size=(2, 1024), mode="bicubic")
        upsampled = fc_a(upsampled.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).mean(dim=2)
        valor = F.adaptive_avg_pool1d(upsampled, 10).view(-1, 256, 10).permute(0, 2, 1)
        ours = fc_a(torch.from_numpy(np.stack([clap_map_to_segments(m) for m in maps])))
    assert valor.shape == ours.shape == (4, 10, 256)
    torch.testing.assert_close(ours, valor, atol=2e-5, rtol=1e-5)


# ---------------------------------------------------------------- the model


def han_model_config(**kw):
    return ModelConfig(audio_dim=128, visual_dim=2048, visual_frames_per_segment=8, visual_3d_dim=512,
                       d_model=32, num_layers=1, num_heads=2, d_ff=64, dropout=0.0, **kw)


def test_frame_level_and_3d_streams_reach_the_model():
    torch.manual_seed(0)
    model = HANNet(han_model_config()).eval()
    g = torch.Generator().manual_seed(1)
    audio, visual, visual_3d = (torch.randn(3, 10, 128, generator=g), torch.randn(3, 80, 2048, generator=g),
                                torch.randn(3, 10, 512, generator=g))
    with torch.no_grad():
        out = model(audio, visual, visual_3d)
        assert out.video_prob.shape == (3, 25) and out.segment_prob.shape == (3, 10, 2, 25)
        assert out.visual_emb.shape == (3, 10, 32)
        # HAN's order, written out: project each frame, average the 8 of a segment, project the 3-D stream,
        # fuse the concatenation
        enc = model.encoder
        frames = F.linear(visual, enc.visual_proj.weight, enc.visual_proj.bias).view(3, 10, 8, 32).mean(dim=2)
        clips = F.linear(visual_3d, enc.visual_3d_proj.weight, enc.visual_3d_proj.bias)
        expected = F.linear(torch.cat([frames, clips], dim=-1), enc.visual_fusion.weight, enc.visual_fusion.bias)
        torch.testing.assert_close(enc.visual_input(visual, visual_3d, 10), expected)
        # both streams matter: another 3-D stream, or one frame of one segment changed, changes the output
        other_3d = model(audio, visual, visual_3d + 1.0)
        assert not torch.allclose(other_3d.video_prob, out.video_prob)
        frame_changed = visual.clone()
        frame_changed[0, 17] += 5.0  # segment 2, frame 1
        changed = model(audio, frame_changed, visual_3d)
        assert not torch.allclose(changed.visual_emb[0], out.visual_emb[0])
        torch.testing.assert_close(changed.visual_emb[1:], out.visual_emb[1:])
        with pytest.raises(ValueError, match="3-D visual stream"):
            model(audio, visual)


def test_default_model_is_unchanged():
    names = set(HANNet(ModelConfig(d_model=32, num_layers=1, num_heads=2, d_ff=64)).state_dict())
    assert not any("visual_3d_proj" in n or "visual_fusion" in n for n in names)


def test_han_features_train_and_predict_end_to_end(tmp_path):
    """Imported HAN features through `ecma train` and `ecma predict` (the 3-D stream passed all the way)."""
    names = MADE_UP[:16]
    root, _, _ = tree(tmp_path, "han", names)
    rng = np.random.default_rng(0)
    labels = {n: LLP_CLASSES[i % 3] for i, n in enumerate(names)}
    split = {}
    for what, subset in (("train", names[:10]), ("val", names[10:])):
        split[what] = tmp_path / f"{what}.csv"
        split[what].write_text("filename\tevent_labels\n" + "".join(f"{n}\t{labels[n]}\n" for n in subset))
    for what in ("audio", "visual"):
        rows = "".join(f"{n}\t{int(o)}\t{int(o) + 3}\t{labels[n]}\n" for n, o in zip(names, rng.integers(0, 7, len(names))))
        (tmp_path / f"eval_{what}.csv").write_text("filename\tonset\toffset\tevent_labels\n" + rows)
    shards = [tmp_path / f"han-{i}.h5" for i in range(2)]
    for i, s in enumerate(shards):
        assert main(["import", "--format", "han", "--root", str(root), "--annotations", str(split["train"]),
                     str(split["val"]), "--output", str(s), "--shard", f"{i}/2", "--quiet"]) == 0
    config = tmp_path / "config.yaml"
    model = {"audio_dim": 128, "visual_dim": 2048, "visual_frames_per_segment": 8, "visual_3d_dim": 512,
             "d_model": 32, "num_layers": 1, "num_heads": 2, "d_ff": 64}
    config.write_text(yaml.safe_dump({"model": model, "train": {"epochs": 1, "batch_size": 4, "threads": 2}}))
    out = tmp_path / "model"
    assert main(["train", "--config", str(config), "--features", *map(str, shards), "--output-dir", str(out),
                 "--train", str(split["train"]), "--val", str(split["val"]), "--eval-audio", str(tmp_path / "eval_audio.csv"),
                 "--eval-visual", str(tmp_path / "eval_visual.csv"), "--quiet"]) == 0
    preds = tmp_path / "preds.h5"
    assert main(["predict", "--checkpoint", str(out / "model.pt"), "--features", *map(str, shards),
                 "--split", str(split["val"]), "--output", str(preds)]) == 0
    with h5py.File(preds) as f:
        assert f["audio_prob"].shape == (6, 10, 25)
    # a model without the 3-D stream is told, in one line, that these features have one
    data = load_split(shards, split["val"], LLP_CLASSES)
    with pytest.raises(EcmaError, match="512-d 3-D visual stream, but model.visual_3d_dim is 0"):
        check_feature_dims(ModelConfig(audio_dim=128, visual_dim=2048, visual_frames_per_segment=8), data.features, "m")
    with pytest.raises(EcmaError, match="8 frame\\(s\\) per segment, but the model takes 1"):
        check_feature_dims(ModelConfig(audio_dim=128, visual_dim=2048, visual_3d_dim=512), data.features, "m")


# ---------------------------------------------------------------- bad files


class WritesMarker:
    """Unpickling this runs Path.touch(marker): proof that a file was unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def object_array_npy(path, marker):
    arr = np.empty((10, 768), dtype=object)
    arr[0, 0] = WritesMarker(marker)
    np.save(path, arr, allow_pickle=True)


def test_bad_files_are_reported_with_their_reason_and_never_loaded(tmp_path):
    names = MADE_UP[:12]
    root, _, ann = tree(tmp_path, "valor", names)
    clip = root / "CLIP" / "features"
    ids = [youtube_id(n) for n in names]
    marker = tmp_path / "unpickled.marker"
    (clip / f"{ids[0]}.npy").unlink()
    np.save(clip / f"{ids[1]}.npy", np.zeros((9, 768), np.float32))
    bad = np.zeros((10, 768), np.float32)
    bad[3, 4] = np.nan
    np.save(clip / f"{ids[2]}.npy", bad)
    bad[3, 4] = np.inf
    np.save(clip / f"{ids[3]}.npy", bad)
    np.save(clip / f"{ids[4]}.npy", np.zeros((10, 768), np.int32))
    full = (clip / f"{ids[5]}.npy").read_bytes()
    (clip / f"{ids[5]}.npy").write_bytes(full[: len(full) // 2])
    (clip / f"{ids[6]}.npy").write_text("10 x 768 floats, honestly\n")
    object_array_npy(clip / f"{ids[7]}.npy", marker)
    (clip / f"{ids[8]}.npy").write_bytes(pickle.dumps(WritesMarker(marker)))  # a bare pickle named .npy
    # the payload does run when unpickled: the same kind of file, loaded with pickling allowed, writes its marker
    proof = tmp_path / "proof.marker"
    object_array_npy(tmp_path / "proof.npy", proof)
    np.load(tmp_path / "proof.npy", allow_pickle=True)
    assert proof.exists()

    out = tmp_path / "shard.h5"
    assert main(["import", "--format", "valor", "--root", str(root), "--annotations", str(ann), "--output", str(out), "--quiet"]) == 3
    assert not marker.exists()
    rows = read_failures(out)
    assert rows[0] == ["filename", "stage", "reason"]
    reasons = {r[0]: r[2] for r in rows[1:]}
    assert all(r[1] == "CLIP/features" for r in rows[1:])
    expected = {
        0: "missing", 1: "shape (9, 768), expected (10, 768)", 2: "contains NaN or infinite values",
        3: "contains NaN or infinite values", 4: "dtype int32 is not floating point", 5: "truncated:",
        6: "not a .npy file", 7: "holds Python objects (a pickled object array); refused, never loaded",
        8: "not a .npy file",
    }
    assert set(reasons) == {names[i] for i in expected}
    for i, text in expected.items():
        assert reasons[names[i]].startswith(f"CLIP/features/{ids[i]}.npy: {text}"), reasons[names[i]]
    with FeatureShard(out) as s:
        assert sorted(s.videos()) == sorted(names[9:])


def test_every_stream_of_a_bad_video_is_named(tmp_path):
    root, _, ann = tree(tmp_path, "han", MADE_UP[:3])
    vid = youtube_id(MADE_UP[0])
    (root / "vggish" / f"{vid}.npy").unlink()
    np.save(root / "r2plus1d_18" / f"{vid}.npy", np.zeros((10, 512), np.float64).astype(">f8")[:, :500])
    report = import_features("han", root, [ann], tmp_path / "s.h5", progress=False)
    assert report.imported == 2
    (name, stage, reason), = report.failed
    assert name == MADE_UP[0] and stage == "vggish"
    assert reason == f"vggish/{vid}.npy: missing; r2plus1d_18/{vid}.npy: shape (10, 500), expected (10, 512)"


def test_other_float_dtypes_are_stored_as_float32(tmp_path):
    root, arrays, ann = tree(tmp_path, "han", MADE_UP[:1])
    vid = youtube_id(MADE_UP[0])
    np.save(root / "vggish" / f"{vid}.npy", arrays[vid]["vggish"].astype(">f8"))  # big-endian float64
    np.save(root / "r2plus1d_18" / f"{vid}.npy", np.asfortranarray(arrays[vid]["r2plus1d_18"].astype(np.float16)))
    import_features("han", root, [ann], tmp_path / "s.h5", progress=False)
    with FeatureShard(tmp_path / "s.h5") as s:
        video = s.read_video(MADE_UP[0])
    np.testing.assert_array_equal(video.audio, arrays[vid]["vggish"])
    np.testing.assert_array_equal(video.visual_3d, arrays[vid]["r2plus1d_18"].astype(np.float16).astype(np.float32))


# ---------------------------------------------------------------- shards and exit codes


def test_shard_partition(tmp_path):
    root, _, ann = tree(tmp_path, "valor", MADE_UP)
    seen = []
    for i in range(3):
        out = tmp_path / f"shard-{i}.h5"
        assert main(["import", "--format", "valor", "--root", str(root), "--annotations", str(ann), "--output", str(out),
                     "--shard", f"{i}/3", "--quiet"]) == 0
        with FeatureShard(out) as s:
            videos = s.videos()
            fingerprint = s.fingerprint
        assert all(shard_of(v, 3) == i for v in videos)
        seen += videos
    assert sorted(seen) == sorted(MADE_UP)  # every video in exactly one shard
    with FeatureShard(tmp_path / "shard-0.h5") as s:
        assert s.fingerprint == fingerprint  # so the shards of one import load together
    assert len(load_features([tmp_path / f"shard-{i}.h5" for i in range(3)], MADE_UP)) == len(MADE_UP)


def test_annotation_files_are_merged_without_duplicates(tmp_path):
    root, _, ann = tree(tmp_path, "valor", MADE_UP[:6])
    other = write_split_csv(tmp_path / "other.csv", MADE_UP[3:6])
    report = import_features("valor", root, [ann, other], tmp_path / "s.h5", progress=False)
    assert report.imported == 6


@pytest.mark.parametrize("argv_tail, message", [
    (["--shard", "3/3"], "shard 3/3 does not exist"),
    (["--shard", "one/3"], "--shard expects I/N"),
    (["--root", "{tmp}/absent"], "absent: feature root of format 'valor' not found"),
])
def test_input_errors_exit_2_in_one_line(tmp_path, capsys, argv_tail, message):
    root, _, ann = tree(tmp_path, "valor", MADE_UP[:2])
    argv = ["import", "--format", "valor", "--root", str(root), "--annotations", str(ann), "--output", str(tmp_path / "s.h5")]
    argv += [a.replace("{tmp}", str(tmp_path)) for a in argv_tail]
    assert main(argv + ["--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ecma import: error: ") and message in err and "\n" not in err
    assert not (tmp_path / "s.h5").exists()


def test_a_missing_sub_folder_is_named(tmp_path, capsys):
    root, _, ann = tree(tmp_path, "han", MADE_UP[:2])
    for f in (root / "res152").iterdir():
        f.unlink()
    (root / "res152").rmdir()
    assert main(["import", "--format", "han", "--root", str(root), "--annotations", str(ann), "--output", str(tmp_path / "s.h5")]) == 2
    assert f"{root / 'res152'}: folder of the visual features of format 'han' not found" in capsys.readouterr().err


def test_every_video_failing_exits_2_and_writes_no_shard(tmp_path, capsys):
    root, _, ann = tree(tmp_path, "valor", MADE_UP[:3])
    for f in (root / "CLAP" / "features").iterdir():
        f.write_bytes(b"")
    out = tmp_path / "s.h5"
    out.write_bytes(b"an older shard")
    assert main(["import", "--format", "valor", "--root", str(root), "--annotations", str(ann), "--output", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]  # beside the timestamped progress lines
    assert len(errors) == 1 and "none of the 3 videos could be imported" in errors[0]
    assert out.read_bytes() == b"an older shard"  # not replaced
    assert len(read_failures(out)) == 4
    assert not list(tmp_path.glob(".s.h5.*"))  # no temporary left behind


def test_a_shard_without_videos_is_still_written(tmp_path):
    """A workflow rule names every shard as an output, so a shard that no video hashes to is an empty shard."""
    name = MADE_UP[0]
    root, _, ann = tree(tmp_path, "valor", [name])
    other = (shard_of(name, 2) + 1) % 2
    out = tmp_path / "empty.h5"
    assert main(["import", "--format", "valor", "--root", str(root), "--annotations", str(ann), "--output", str(out),
                 "--shard", f"{other}/2", "--quiet"]) == 0
    with FeatureShard(out) as s:
        assert len(s) == 0 and s.fingerprint["features"] == "valor" and s.manifest["files"] == 0
