"""Extraction end to end with small random-initialised encoders (ViT-B-32, HTSAT-tiny): the shard contract,
both audio modes, weights (random init, local checkpoints), the incremental rule, bad input, crash safety,
and the real LLP clip."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ecma.config import ExtractConfig
from ecma.data.shards import FeatureShard, load_features
from ecma.errors import EcmaError
from ecma.extract import extract_videos, failures_path_for
from ecma.extract.audio import AudioEncoder, segment_frame_bounds
from ecma.extract.pipeline import build_encoders
from ecma.extract.visual import VisualEncoder
from media import FFMPEG, make_video

pytestmark = pytest.mark.skipif(FFMPEG is None, reason="the ffmpeg binary is needed to make test videos")
REPO = Path(__file__).resolve().parent.parent
# float32 whatever the CPU: the numbers below are compared with float32 computations (bf16: its own test)
CFG = ExtractConfig(visual_model="ViT-B-32", workers=0, batch_videos=3, device="cpu", amp=False)
SR = 48000


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    return {
        "a": make_video(d / "a.mp4", seconds=3, size="64x48"),
        "b": make_video(d / "b.mp4", seconds=2, size="64x48", pattern="rgbtestsrc"),
        "c": make_video(d / "c.mp4", seconds=1, size="48x64", audio=False),
    }


@pytest.fixture(scope="module")
def encoders():
    return build_encoders(CFG)


def test_shard_contract(tmp_path, videos, encoders):
    out = tmp_path / "s.h5"
    rep = extract_videos(list(videos.values()), out, CFG, progress=False)
    assert (rep.extracted, rep.skipped, rep.failed) == (3, 0, [])
    assert failures_path_for(out).read_text() == "filename\tstage\treason\n"
    assert not out.with_name("s.h5.parts").exists()
    with FeatureShard(out) as s:
        fp = s.fingerprint
        assert sorted(s.videos()) == ["a", "b", "c"]
        a, v = s.read("a")
        assert a.shape == (10, 768) and v.shape == (10, 512) and a.dtype == np.float16
        attrs = s.attrs("a")
        assert attrs["n_segments"] == 10 and attrs["extracted_at"]
        assert attrs["audio_padded_segments"] == 7 and attrs["visual_padded_segments"] == 7
        # padding repeats the last real segment; real segments differ
        assert (a[3:] == a[2]).all() and (v[3:] == v[2]).all()
        assert not np.array_equal(a[0], a[1]) and not np.array_equal(v[0], v[1])
        assert s.attrs("c")["audio_missing"] and not s.attrs("a")["audio_missing"]
    assert fp["visual"]["weights"] == "random-init" and fp["visual"]["seed"] == 0
    assert fp["audio"]["model"] == "laion_clap/HTSAT-tiny" and fp["audio_mode"] == "clip"
    assert fp["sample_rate"] == SR and fp["segment_seconds"] == 1.0 and fp["frames_per_segment"] == 1
    assert fp["precision"] == "float32" and fp["dtype"] == "float16" and "ecma_version" in fp
    assert "Normalize" in fp["visual"]["preprocess"]
    fs = load_features([out], ["a", "b", "c"])  # what training reads
    assert fs.audio.shape == (3, 10, 768) and fs.visual.shape == (3, 10, 512)


def test_features_match_encoders_called_directly(tmp_path, videos, encoders):
    """The pipeline's numbers equal the encoders applied by hand to the decoded streams."""
    from ecma.extract.decode import DecodeSpec, decode_video

    cfg = dataclasses.replace(CFG, dtype="float32", normalize=True)
    out = tmp_path / "s.h5"
    extract_videos([videos["b"]], out, cfg, progress=False)
    with FeatureShard(out) as s:
        a, v = s.read("b")
    d = decode_video(0, "b", videos["b"], DecodeSpec(image_size=224), encoders.visual.transform)
    vis = encoders.visual.encode(d.images)
    vis = vis / np.linalg.norm(vis, axis=1, keepdims=True)
    np.testing.assert_allclose(v[:2], vis, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("native", [True, False])
def test_bf16_extraction_where_the_cpu_has_it(tmp_path, videos, encoders, monkeypatch, native):
    """extract.amp: bf16 image-tower weights and audio autocast where native bf16 exists (forced here,
    whatever this CPU is), features within bf16 rounding of float32's, and the fingerprint says which."""
    import ecma.device

    monkeypatch.setattr(ecma.device, "cpu_has_native_bf16", lambda: native)
    cfg = dataclasses.replace(CFG, amp=True, dtype="float32")
    rep = extract_videos([videos["a"]], tmp_path / "s.h5", cfg, progress=False)
    assert rep.extracted == 1
    extract_videos([videos["a"]], tmp_path / "f.h5", dataclasses.replace(cfg, amp=False), progress=False)
    with FeatureShard(tmp_path / "s.h5") as s, FeatureShard(tmp_path / "f.h5") as f:
        assert s.fingerprint["precision"] == ("bf16" if native else "float32")
        assert f.fingerprint["precision"] == "float32"
        (a, v), (a32, v32) = s.read("a"), f.read("a")
    assert next(build_encoders(cfg).visual.tower.parameters()).dtype == (torch.bfloat16 if native else torch.float32)
    if not native:
        np.testing.assert_array_equal(a, a32)
        np.testing.assert_array_equal(v, v32)
        return
    for got, want in ((a, a32), (v, v32)):
        cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
        assert cos.min() > 0.99 and not np.array_equal(got, want)  # close, and the bf16 path was taken


def test_clip_mode_pools_fine_grained_frames_and_segment_mode_tiles(encoders):
    rng = np.random.default_rng(0)
    wav = (0.3 * rng.standard_normal(3 * SR)).astype(np.float32)
    enc = encoders.audio
    got = enc.encode([wav])[0]
    assert got.shape == (3, 768)
    # by hand: the 3-s audio repeated to fill the 10-s window, one pass, frames averaged per second
    window = torch.from_numpy(np.resize(enc._quantise(wav), 10 * SR)[None])
    fine = enc._forward(window)["fine_grained_embedding"][0]
    assert fine.shape[0] == 1024
    b = segment_frame_bounds(1024, 10 * SR, SR, 10)
    assert b[:4] == [0, 102, 205, 307] and b[-1] == 1024
    for j in range(3):
        np.testing.assert_allclose(got[j], fine[b[j] : b[j + 1]].mean(0).numpy(), rtol=1e-4, atol=1e-5)

    seg = AudioEncoder("HTSAT-tiny", mode="segment", seed=0)
    got_s = seg.encode([wav[: 2 * SR]])[0]
    assert got_s.shape == (2, 768)
    one = torch.from_numpy(np.tile(seg._quantise(wav[SR : 2 * SR]), 10)[None])
    np.testing.assert_allclose(got_s[1], seg._forward(one)["embedding"][0].numpy(), rtol=1e-4, atol=1e-5)
    assert not np.allclose(got_s[0], got_s[1])


def test_random_init_is_seeded(encoders):
    x = torch.randint(0, 256, (2, 224, 224, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    same = VisualEncoder("ViT-B-32", None, seed=0)
    other = VisualEncoder("ViT-B-32", None, seed=1)
    np.testing.assert_array_equal(same.encode(x), encoders.visual.encode(x))
    assert not np.allclose(other.encode(x), same.encode(x))
    wav = [np.sin(np.arange(2 * SR) / 20).astype(np.float32)]
    np.testing.assert_array_equal(AudioEncoder(seed=0).encode(wav)[0], encoders.audio.encode(wav)[0])
    assert not np.allclose(AudioEncoder(seed=5).encode(wav)[0], encoders.audio.encode(wav)[0])


def test_local_checkpoints_load_and_are_fingerprinted(tmp_path, videos):
    # weights of seed-7 random models, saved the way open_clip and CLAP checkpoints are laid out
    src_v = VisualEncoder("ViT-B-32", None, seed=7)
    import open_clip

    full = open_clip.create_model("ViT-B-32", pretrained=None)
    full.visual.load_state_dict(src_v.tower.state_dict())
    vpath = tmp_path / "vis.pt"
    torch.save({"state_dict": full.state_dict()}, vpath)
    src_a = AudioEncoder(seed=7)
    apath = tmp_path / "clap.pt"
    torch.save({"state_dict": {f"module.audio_branch.{k}": t for k, t in src_a.tower.state_dict().items()}
                | {"module.text_projection.0.weight": torch.zeros(2, 2)}}, apath)

    cfg = dataclasses.replace(CFG, visual_pretrained=str(vpath), audio_checkpoint=str(apath), dtype="float32")
    out = tmp_path / "s.h5"
    extract_videos([videos["a"]], out, cfg, progress=False)
    with FeatureShard(out) as s:
        a, v = s.read("a")
        fp = s.fingerprint
    assert fp["visual"]["sha256"] == hashlib.sha256(vpath.read_bytes()).hexdigest()
    assert fp["audio"]["sha256"] == hashlib.sha256(apath.read_bytes()).hexdigest()
    assert "seed" not in fp["visual"]
    # the same numbers as the seed-7 models themselves
    seed7 = dataclasses.replace(CFG, seed=7, dtype="float32")
    extract_videos([videos["a"]], tmp_path / "r.h5", seed7, progress=False)
    with FeatureShard(tmp_path / "r.h5") as s:
        a7, v7 = s.read("a")
    np.testing.assert_allclose(v, v7, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a, a7, rtol=1e-5, atol=1e-6)

    with pytest.raises(EcmaError, match="no audio_branch"):
        torch.save({"state_dict": {"text_branch.x": torch.zeros(1)}}, tmp_path / "bad.pt")
        AudioEncoder(checkpoint=str(tmp_path / "bad.pt"))
    with pytest.raises(EcmaError, match="nothere.pt"):
        AudioEncoder(checkpoint=str(tmp_path / "nothere.pt"))


def test_a_safetensors_file_named_pt_loads_as_open_clip_downloads_it(tmp_path):
    """open_clip downloads a tag's weights from the HF hub as safetensors, which fetch-weights keeps as NAME.pt;
    open_clip would torch.load a .pt. Here it loads, with the weights in the file."""
    import open_clip
    from safetensors.torch import save_file

    full = open_clip.create_model("ViT-B-32", pretrained=None)
    full.visual.load_state_dict(VisualEncoder("ViT-B-32", None, seed=7).tower.state_dict())
    path = tmp_path / "ViT-B-32-openai.pt"
    save_file({k: v.contiguous() for k, v in full.state_dict().items()}, path)
    loaded = VisualEncoder("ViT-B-32", str(path), seed=0)
    for k, v in full.visual.state_dict().items():
        assert torch.equal(loaded.tower.state_dict()[k], v), k
    assert loaded.weights == {"weights": "file", "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert list(tmp_path.iterdir()) == [path]  # the link lived in a temporary folder
    path.write_bytes(path.read_bytes()[:4096])  # a truncated download: one line, naming the file
    with pytest.raises(EcmaError, match=r"ViT-B-32-openai\.pt: cannot build visual encoder ViT-B-32 \([^\n]*\)$"):
        VisualEncoder("ViT-B-32", str(path))


def test_incremental_and_fingerprint_rule(tmp_path, videos, encoders):
    out = tmp_path / "s.h5"
    extract_videos([videos["a"]], out, CFG, progress=False)
    with FeatureShard(out) as s:
        stamp, a0 = s.attrs("a")["extracted_at"], s.read("a")[0]
    time.sleep(1.1)  # extracted_at has one-second resolution
    rep = extract_videos([videos["a"], videos["b"]], out, CFG, progress=False)
    assert (rep.extracted, rep.skipped) == (1, 1)
    with FeatureShard(out) as s:
        assert s.attrs("a")["extracted_at"] == stamp and s.attrs("b")["extracted_at"] != stamp
        np.testing.assert_array_equal(s.read("a")[0], a0)

    other = dataclasses.replace(CFG, audio_mode="segment")
    with pytest.raises(EcmaError, match=r"s\.h5.*audio_mode"):
        extract_videos([videos["c"]], out, other, progress=False)
    with FeatureShard(out) as s:
        assert sorted(s.videos()) == ["a", "b"]  # untouched
    rep = extract_videos([videos["c"]], out, other, overwrite=True, progress=False)
    assert rep.extracted == 1
    with FeatureShard(out) as s:
        assert s.videos() == ["c"] and s.fingerprint["audio_mode"] == "segment"


def test_bad_videos_do_not_cost_the_others(tmp_path, videos):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    trunc = tmp_path / "trunc.mp4"
    trunc.write_bytes(videos["a"].read_bytes()[:2000])
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    novideo = make_video(tmp_path / "sound.mp4", seconds=2, video=False)
    paths = [empty, videos["a"], trunc, tmp_path / "gone.mp4", text, novideo]
    names = ["E_1_2", "A_0_10", "T_0_10", "G_0_10", "N_0_10", "S_0_10"]
    out = tmp_path / "s.h5"
    rep = extract_videos(paths, out, dataclasses.replace(CFG, workers=1), names=names, progress=False)
    assert rep.extracted == 2 and [f[:2] for f in rep.failed] == [
        ("E_1_2", "open"), ("T_0_10", "decode"), ("G_0_10", "open"), ("N_0_10", "decode")]
    rows = [ln.split("\t") for ln in failures_path_for(out).read_text().splitlines()]
    assert rows[0] == ["filename", "stage", "reason"] and [r[0] for r in rows[1:]] == ["E_1_2", "T_0_10", "G_0_10", "N_0_10"]
    assert all(len(r) == 3 and r[2] for r in rows)
    with FeatureShard(out) as s:
        assert sorted(s.videos()) == ["A_0_10", "S_0_10"]
        assert s.attrs("S_0_10")["visual_missing"] and not s.attrs("S_0_10")["audio_missing"]
        _, v = s.read("S_0_10")
        assert v.shape == (10, 512) and (v == v[0]).all()  # one black frame's features


def test_bad_names_are_refused(videos):
    with pytest.raises(EcmaError, match="also the name"):
        extract_videos([videos["a"], videos["a"]], "/nonexistent/x.h5", CFG, progress=False)
    with pytest.raises(EcmaError, match="2 videos but 1 names"):
        extract_videos([videos["a"], videos["b"]], "/nonexistent/x.h5", CFG, names=["x"], progress=False)


_KILL_SCRIPT = """
import sys
from ecma.config import ExtractConfig
from ecma.extract import extract_videos
if __name__ == "__main__":
    cfg = ExtractConfig(visual_model="ViT-B-32", workers=0, batch_videos=1, device="cpu", amp=False)
    extract_videos(sys.argv[2:], sys.argv[1], cfg, progress=False)
"""


def test_kill_mid_run_keeps_finished_videos(tmp_path, videos, encoders):
    out = tmp_path / "s.h5"
    extract_videos([videos["a"]], out, CFG, progress=False)  # an existing shard
    many = [make_video(tmp_path / f"v{i}.mp4", seconds=1, size="32x24") for i in range(12)]
    script = tmp_path / "run.py"
    script.write_text(_KILL_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, str(script), str(out), *map(str, many)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = out.with_name("s.h5.parts")
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("part-*.h5"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = len(list(parts.glob("part-*.h5")))
    assert finished >= 2, "the run did not get far enough to test a kill"
    with FeatureShard(out) as s:  # readable, the old video kept
        assert "a" in s.videos()
    rep = extract_videos([videos["a"], *many], out, CFG, progress=False)
    assert rep.skipped == 1 + finished and rep.extracted == 12 - finished
    assert not parts.exists()
    with FeatureShard(out) as s:
        assert len(s) == 13


def test_real_llp_clip(tmp_path, encoders):
    d = Path(os.environ.get("ECMA_LLP_ANNOTATIONS", REPO.parent / "shared" / "data" / "llp"))
    clip = d / "BjCEufrlXm4.mp4"
    if not clip.is_file():
        pytest.skip(f"the real LLP clip {clip} is not there (set ECMA_LLP_ANNOTATIONS)")
    from ecma.data.datasets import match_videos

    found, _ = match_videos(d, ["BjCEufrlXm4_20_30"])
    out = tmp_path / "llp.h5"
    rep = extract_videos(list(found.values()), out, CFG, names=list(found), progress=False)
    assert rep.extracted == 1 and not rep.failed
    with FeatureShard(out) as s:
        a, v = s.read("BjCEufrlXm4_20_30")
        attrs = s.attrs("BjCEufrlXm4_20_30")
    assert a.shape == (10, 768) and v.shape == (10, 512)
    assert attrs["audio_padded_segments"] == 0 and attrs["visual_padded_segments"] == 0
    assert not attrs["audio_missing"] and not attrs["visual_missing"]
    for x in (a.astype(np.float32), v.astype(np.float32)):
        assert np.isfinite(x).all()
        dist = np.linalg.norm(x[:, None] - x[None], axis=-1)
        assert (dist[~np.eye(10, dtype=bool)] > 0).all()  # every segment differs from every other


def test_decoded_batches_fill_batches_in_order_and_route_failures(tmp_path, videos):
    from ecma.extract.decode import DecodeSpec
    from ecma.extract.workers import decoded_batches

    gone = tmp_path / "gone.mp4"
    items = [(0, "a", videos["a"]), (1, "gone", gone), (2, "b", videos["b"]), (3, "a2", videos["a"])]
    failed = []
    spec = DecodeSpec(1.0, 10, 1, 48000, 224)
    batches = list(decoded_batches(items, spec, None, 0, 2, failed.append))
    # the failure fills no batch slot: batches of 2 real videos, then the rest, in input order
    assert [[d.name for d in b] for b in batches] == [["a", "b"], ["a2"]]
    assert [d.name for d in failed] == ["gone"] and failed[0].error[0] == "open"
