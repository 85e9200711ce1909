"""The ``valor`` extraction profile (VALOR's published CLIP/CLAP features from raw videos) and the feature
identity it shares with imported VALOR features: each step against an independent computation, then
imported and extracted features together (one shard, training, ``ecma parse``), and what must not mix.

Encoders are random and small where the recipe allows (a 1-layer ViT with CLIP's 224-pixel input and a
768-d output, registered with open_clip here; LAION-CLAP's fusion HTSAT-tiny), saved to weights files as
real checkpoints are; bench/parity_valor.py runs VALOR's own code beside ours at full size."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ecma.cli import main
from ecma.config import ExtractConfig, config_from_dict
from ecma.data.shards import FeatureShard, load_features
from ecma.errors import EcmaError
from ecma.extract import extract_videos, failures_path_for
from ecma.extract.pipeline import build_encoders
from ecma.extract.valor import identity
from ecma.extract.valor.ffmpeg import audioread_stream_info
from ecma.extract.valor.frames import decode_jpeg, pick_indices, split_jpegs, squash_resize, valor_frames
from ecma.extract.valor.mel import FusionMel, htk_mel_filterbank
from ecma.extract.valor.waveform import index_resample, int16_round_trip, librosa_load, valor_waveform
from ecma.extract.weights import WeightsFile, needed_weights
from ecma.importers.run import import_features
from ecma.importers.clap import clap_map_to_segments
from ecma.importers.valor import VALOR
from feature_trees import make_feature_tree, write_split_csv
from media import FFMPEG, make_video
from valor_weights import TINY_CLIP, write_valor_weights  # a 1-layer ViT with CLIP's input, VALOR's 768-d output

pytestmark = pytest.mark.skipif(FFMPEG is None, reason="the ffmpeg binary is needed to make test videos")


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Random weights files: a tiny open_clip ViT (768-d) and a LAION-CLAP fusion HTSAT-tiny checkpoint."""
    return write_valor_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def cfg(weights):
    return ExtractConfig(profile="valor", visual_model=TINY_CLIP, visual_pretrained=str(weights["clip"]),
                         audio_checkpoint=str(weights["clap"]), workers=0, batch_videos=2, device="cpu")


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("valor_videos")
    return {
        "vidAAAAAAAA_0_10": make_video(d / "a.mp4", seconds=3, size="96x64", fps=25, sample_rate=44100, channels=2),
        "vidBBBBBBBB_0_10": make_video(d / "b.mp4", seconds=2, size="64x48", fps=30, sample_rate=48000),
    }


# ---------------------------------------------------------------- frames


@pytest.mark.parametrize("n", [1, 2, 3, 9, 10, 11, 58, 80, 81, 82, 200, 202])
def test_frame_indices_are_valors_rounded_linspace(n):
    # i (n - 1) / 9 rounded to the nearest integer, computed exactly; it is never a tie (2 i (n - 1) is even,
    # 9 (2 m + 1) odd), so the rounding rule cannot matter
    expected = [math.floor(Fraction(i * (n - 1), 9) + Fraction(1, 2)) for i in range(10)]
    assert pick_indices(n).tolist() == expected
    assert pick_indices(82).tolist() == [0, 9, 18, 27, 36, 45, 54, 63, 72, 81]  # the real LLP clip's 82 frames


def test_no_frames_is_an_error():
    with pytest.raises(ValueError):
        pick_indices(0)


@pytest.mark.parametrize("fps, seconds", [(25, 3), (30, 2.5), (10, 7)])
def test_piped_jpegs_are_the_jpeg_files_valors_command_writes(tmp_path, fps, seconds):
    video = make_video(tmp_path / "v.mp4", seconds=seconds, size="80x60", fps=fps, audio=False)
    folder = tmp_path / "frames"
    folder.mkdir()
    # VALOR's utils/extract_frames.py, verbatim but for the log level
    subprocess.run(f"ffmpeg -loglevel error -i {video} -y -r 8 {folder}/%06d.jpg", shell=True, check=True)
    files = sorted(folder.glob("*.jpg"))
    from ecma.extract.valor.ffmpeg import run_ffmpeg
    from ecma.extract.valor.frames import ffmpeg_jpeg_args

    piped = split_jpegs(run_ffmpeg(ffmpeg_jpeg_args(str(video))).stdout)
    assert [p for p in piped] == [f.read_bytes() for f in files]  # the same frames, byte for byte
    assert abs(len(files) - 8 * seconds) <= 2
    images, picked, n, duration = valor_frames(str(video))
    assert n == len(files) and picked.tolist() == pick_indices(len(files)).tolist()
    assert images.shape == (10, 224, 224, 3) and images.dtype == np.float32 and duration == pytest.approx(seconds, abs=0.05)
    from PIL import Image

    want = squash_resize(np.asarray(Image.open(files[picked[3]]).convert("RGB"), np.float32) / 255)
    np.testing.assert_array_equal(images[3], want)


def test_split_jpegs_walks_markers_not_bytes():
    # a JPEG whose comment segment holds an end-of-image marker, and scan data with stuffed 0xFF bytes
    fake = (b"\xff\xd8" + b"\xff\xfe\x00\x06ab\xff\xd9" + b"\xff\xda\x00\x04\x01\x02" + b"\x11\xff\x00\x22\xff\xd3\x33"
            + b"\xff\xd9")
    assert split_jpegs(fake + fake) == [fake, fake]
    with pytest.raises(ValueError):
        split_jpegs(b"not a jpeg")


def test_squash_resize_by_hand_and_against_torch():
    # width 2 -> 4: source x = max((j + 0.5) / 2 - 0.5, 0) = 0, 0.25, 0.75, 1.25 (last pixel repeated)
    a, b = 0.2, 0.6
    image = np.array([[[a] * 3, [b] * 3]], np.float32)  # (1, 2, 3)
    out = squash_resize(np.repeat(image, 4, axis=0), 4)[0, :, 0]
    np.testing.assert_allclose(out, [a, 0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b, b], rtol=1e-6)
    rng = np.random.default_rng(0)
    for h, w in [(240, 320), (360, 640), (720, 1280), (48, 64), (224, 224), (100, 150)]:
        image = rng.integers(0, 256, (h, w, 3)).astype(np.float32) / 255
        want = torch.nn.functional.interpolate(torch.from_numpy(image).permute(2, 0, 1)[None], size=(224, 224),
                                               mode="bilinear", align_corners=False, antialias=False)
        got = squash_resize(image)
        assert got.shape == (224, 224, 3)
        assert np.abs(got - want[0].permute(1, 2, 0).numpy()).max() <= 2.5e-7, (h, w)  # one float32 ulp near 1


# ---------------------------------------------------------------- waveform


@pytest.mark.parametrize("n", [480000, 441000, 336000, 1200000, 10])
def test_index_resampling_to_480000_samples(n):
    y = np.arange(n, dtype=np.float64)  # each sample its own index
    got = index_resample(y)
    assert got.shape == (480000,)
    i = np.arange(480000)
    if n == 480000:
        np.testing.assert_array_equal(got, y)  # 10 s at 48 kHz: unchanged
    exact = np.floor((2 * i * (n - 1) + 479999) / (2 * 479999)).astype(np.int64)  # round(i (n - 1) / 479999)
    assert np.mean(got == exact) > 0.9999 and np.abs(got - exact).max() <= 1  # float linspace at exact halves
    assert got[0] == 0 and got[-1] == n - 1 and np.all(np.diff(got) >= 0)


def test_int16_round_trip_by_hand():
    y = np.array([1.0, -1.0, 0.5, -0.5, 1.5, -2.0, 3e-5, 0.0], np.float32)
    got = int16_round_trip(y)
    # clip, times 32767, truncated toward zero, divided by 32767
    want = np.array([1.0, -1.0, 16383 / 32767, -16383 / 32767, 1.0, -1.0, 0.0, 0.0])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want.astype(np.float32))


def test_audioread_reading_of_the_stream_line():
    log = ("  Duration: 00:00:10.02, start: 0.000000, bitrate: 500 kb/s\n"
           "  Stream #0:1(und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, stereo, fltp, 128 kb/s (default)\n")
    assert audioread_stream_info(log) == (44100, 2)
    assert audioread_stream_info(log.replace("stereo", "mono"))[1] == 1
    assert audioread_stream_info(log.replace("stereo", "5.1(side)"))[1] == 6
    assert audioread_stream_info(log.replace("stereo", "quad"))[1] == 1  # audioread's reading, kept


@pytest.mark.parametrize("sample_rate, channels", [(44100, 2), (48000, 1), (16000, 2)])
def test_waveform_is_librosas(tmp_path, sample_rate, channels):
    librosa = pytest.importorskip("librosa")
    video = make_video(tmp_path / "v.mp4", seconds=2, size="64x48", sample_rate=sample_rate, channels=channels)
    want, sr = librosa.load(str(video), sr=48000)  # soundfile cannot read mp4: librosa's audioread path
    got, rate, n_channels = librosa_load(str(video))
    assert (sr, rate, n_channels) == (48000, sample_rate, channels)
    np.testing.assert_array_equal(got, want)
    wav, *_ = valor_waveform(str(video))
    # VALOR's get_audio_feature_maps: index resampling to 480,000 samples, then the int16 round trip
    samples = want[np.round(np.linspace(0, len(want) - 1, 480000)).astype(np.int32)]
    np.testing.assert_array_equal(wav, ((np.clip(samples, -1, 1) * 32767.0).astype(np.int16) / 32767.0).astype(np.float32))


# ---------------------------------------------------------------- the fusion tower


def test_htk_filterbank_is_librosas():
    librosa = pytest.importorskip("librosa")
    want = librosa.filters.mel(sr=48000, n_fft=1024, n_mels=64, fmin=50, fmax=14000, htk=True, norm=None).T
    np.testing.assert_allclose(htk_mel_filterbank(513, 50.0, 14000.0, 64, 48000).numpy(), want, atol=1e-5)  # float32


def test_fusion_mel_against_numpy():
    from ecma.extract.audio import audio_model_config

    cfg = audio_model_config("HTSAT-tiny")
    rng = np.random.default_rng(0)
    wav = (0.3 * rng.standard_normal(48000)).astype(np.float32)
    got = FusionMel(cfg)(torch.from_numpy(wav[None]))[0].numpy()  # (frames, 64)
    padded = np.pad(wav.astype(np.float64), 512, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1024) / 1024)  # periodic Hann
    frames = np.stack([padded[i * 480 : i * 480 + 1024] * window for i in range(1 + len(wav) // 480)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    want = 10 * np.log10(np.maximum(power @ htk_mel_filterbank(513, 50.0, 14000.0, 64, 48000).double().numpy(), 1e-10))
    assert got.shape == (101, 64)
    np.testing.assert_allclose(got, want, atol=2e-3)  # dB: float32 against float64


def test_fusion_feature_map_is_valors_htsat_forward(cfg):
    """VALOR's My_CLAP.htsat_forward, written out with laion_clap's modules: four copies of the mel,
    bn0, reshape_wav2img, patch_embed with no longer clips, the layers, the norm, the frequency grouping."""
    enc = build_encoders(cfg).audio
    t = enc.tower
    rng = np.random.default_rng(1)
    wav = torch.from_numpy(int16_round_trip((0.2 * rng.standard_normal((1, 480000))).astype(np.float32)))
    got = enc.feature_maps(wav)
    with torch.no_grad():
        x = torch.stack([enc.mel(wav)] * 4, dim=1)  # (B, 4, 1001, 64): mel_fusion of a clip that is not longer
        x = t.bn0(x.transpose(1, 3)).transpose(1, 3)
        x = t.reshape_wav2img(x)
        frames = x.shape[2]
        x = t.patch_embed(x, longer_idx=[])
        x = t.pos_drop(x + t.absolute_pos_embed if t.ape else x)
        for layer in t.layers:
            x, _ = layer(x)
        x = t.norm(x)
        b, n, c = x.shape
        sf = frames // (2 ** (len(t.depths) - 1)) // t.patch_stride[0]
        x = x.permute(0, 2, 1).reshape(b, c, sf, sf)
        x = x.reshape(b, c, sf // (sf // t.freq_ratio), sf // t.freq_ratio, sf)
        x = x.permute(0, 1, 3, 2, 4).reshape(b, c, sf // t.freq_ratio, -1)
        want = torch.flatten(x, 2).permute(0, 2, 1)
    assert got.shape == (1, 64, 768)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_extracted_and_imported_maps_go_through_one_conversion(cfg, videos, tmp_path):
    enc = build_encoders(cfg)
    assert VALOR.streams[0].role == "audio" and VALOR.streams[0].convert is clap_map_to_segments
    from ecma.extract.valor import encoders

    assert encoders.clap_map_to_segments is clap_map_to_segments  # the function, not a copy
    # the map of an extracted video, published in VALOR's layout and imported, gives the extracted features
    name = "vidAAAAAAAA_0_10"
    shard = tmp_path / "x.h5"
    extract_videos([videos[name]], shard, cfg, names=[name], progress=False)
    from ecma.extract.decode import DecodeSpec, decode_video

    d = decode_video(0, name, videos[name], DecodeSpec(profile="valor"))
    root = tmp_path / "tree"
    for folder, array in (("CLAP/features", enc.audio.feature_maps(torch.from_numpy(d.waveform[None]))[0].numpy()),
                          ("CLIP/features", enc.visual.encode(d.images))):
        (root / folder).mkdir(parents=True)
        np.save(root / folder / "vidAAAAAAAA.npy", array)
    imported = tmp_path / "imported.h5"
    import_features("valor", root, [write_split_csv(tmp_path / "s.csv", [name])], imported, encoders_from=cfg,
                    progress=False)
    with FeatureShard(shard) as a, FeatureShard(imported) as b:
        assert a.fingerprint == b.fingerprint
        np.testing.assert_array_equal(a.read(name)[0], b.read(name)[0])
        np.testing.assert_array_equal(a.read(name)[1], b.read(name)[1])


# ---------------------------------------------------------------- extraction


def test_valor_extraction_shard(cfg, videos, tmp_path):
    out = tmp_path / "v.h5"
    rep = extract_videos(list(videos.values()), out, cfg, names=list(videos), progress=False)
    assert (rep.extracted, rep.failed) == (2, [])
    with FeatureShard(out) as s:
        fp = s.fingerprint
        for name in videos:
            audio, visual = s.read(name)
            attrs = s.attrs(name)
            assert audio.shape == visual.shape == (10, 768) and audio.dtype == visual.dtype == np.float32
            np.testing.assert_allclose(np.linalg.norm(visual, axis=1), 1, rtol=1e-6)  # VALOR L2-normalises CLIP
            assert attrs["segment_seconds"] == pytest.approx(attrs["duration_seconds"] / 10)
            assert list(attrs["frame_indices"]) == pick_indices(int(attrs["frames_8fps"])).tolist()
        assert s.attrs("vidAAAAAAAA_0_10")["audio_channels"] == 2
    assert fp == identity.settings_fingerprint(cfg)  # nothing built: what imports and ecma parse compute
    assert fp["visual"]["sha256"] == identity.visual_encoder(TINY_CLIP, cfg.visual_pretrained, 0)["sha256"]
    # the same settings but the amp and storage ones give the same features and identity (float32 always)
    again = tmp_path / "again.h5"
    extract_videos(list(videos.values()), again, dataclasses.replace(cfg, amp=True, dtype="float16"),
                   names=list(videos), progress=False)
    with FeatureShard(out) as a, FeatureShard(again) as b:
        assert a.fingerprint == b.fingerprint
        for name in videos:
            np.testing.assert_array_equal(a.read(name)[1], b.read(name)[1])


def test_a_video_without_audio_gets_silence_and_a_flag(cfg, tmp_path):
    silent = make_video(tmp_path / "silent.mp4", seconds=2, size="64x48", audio=False)
    out = tmp_path / "s.h5"
    rep = extract_videos([silent], out, cfg, progress=False)
    assert rep.extracted == 1
    with FeatureShard(out) as s:
        attrs = s.attrs("silent")
    assert attrs["audio_missing"] and not attrs["visual_missing"]


def test_bad_videos_fail_with_one_line_and_nothing_partial(cfg, videos, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video" * 100)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    out = tmp_path / "v.h5"
    good = "vidBBBBBBBB_0_10"
    rep = extract_videos([videos[good], broken, empty], out, cfg, names=[good, "broken", "empty"], progress=False)
    assert rep.extracted == 1
    rows = [line.split("\t") for line in failures_path_for(out).read_text().splitlines()]
    assert rows[0] == ["filename", "stage", "reason"] and [r[:2] for r in rows[1:]] == [["broken", "decode"], ["empty", "open"]]
    assert all(len(r) == 3 and r[2] for r in rows[1:])
    with FeatureShard(out) as s:
        assert s.videos() == [good]
    assert not out.with_name("v.h5.parts").exists()
    # every video failing leaves the shard as it was and says so
    before = out.read_bytes()
    with pytest.raises(EcmaError, match="every one of the 2 video"):
        extract_videos([broken, empty], out, cfg, names=["broken", "empty"], progress=False)
    assert out.read_bytes() == before


# ---------------------------------------------------------------- one identity: mixing, training, parsing


def _imported_tree(tmp_path: Path, names: list[str]) -> Path:
    root = tmp_path / "published"
    make_feature_tree(root, "valor", [n[:11] for n in names])
    return root


NAMES = [f"pub{i:08d}_{i}_{i + 10}" for i in range(8)]


def _csvs(tmp_path: Path, train: list[str], val: list[str]) -> dict[str, Path]:
    out = {"train": write_split_csv(tmp_path / "train.csv", train), "val": write_split_csv(tmp_path / "val.csv", val)}
    for mod in ("audio", "visual"):
        p = tmp_path / f"eval_{mod}.csv"
        p.write_text("filename\tonset\toffset\tevent_labels\n" + "".join(f"{n}\t0\t4\tSpeech\n" for n in val))
        out[mod] = p
    return out


def _train(tmp_path: Path, shard: Path, csvs: dict, cfg: ExtractConfig) -> Path:
    config = tmp_path / "train.yaml"
    extract = {k: v for k, v in dataclasses.asdict(cfg).items()}
    config.write_text(yaml.safe_dump({
        "model": {"audio_dim": 768, "visual_dim": 768, "d_model": 32, "num_layers": 1, "num_heads": 2, "d_ff": 64},
        "train": {"epochs": 1, "batch_size": 4, "threads": 2}, "extract": extract,
    }))
    out = tmp_path / "model"
    assert main(["train", "--config", str(config), "--features", str(shard), "--output-dir", str(out),
                 "--train", str(csvs["train"]), "--val", str(csvs["val"]), "--eval-audio", str(csvs["audio"]),
                 "--eval-visual", str(csvs["visual"]), "--variant", "han", "--quiet"]) == 0
    return out / "model.pt"


def test_imported_and_extracted_valor_videos_share_a_shard_and_train(cfg, videos, tmp_path):
    root = _imported_tree(tmp_path, NAMES)
    shard = tmp_path / "mixed.h5"
    csv = write_split_csv(tmp_path / "all.csv", NAMES)
    import_features("valor", root, [csv], shard, encoders_from=cfg, progress=False)
    rep = extract_videos(list(videos.values()), shard, cfg, names=list(videos), progress=False)  # into the same shard
    assert rep.extracted == 2
    with FeatureShard(shard) as s:
        assert sorted(s.videos()) == sorted(NAMES + list(videos))
        assert s.fingerprint == identity.settings_fingerprint(cfg)
    fs = load_features([shard], NAMES + list(videos))
    assert fs.audio.shape == fs.visual.shape == (10, 10, 768)
    csvs = _csvs(tmp_path, NAMES[:5] + ["vidAAAAAAAA_0_10"], NAMES[5:] + ["vidBBBBBBBB_0_10"])
    model = _train(tmp_path, shard, csvs, cfg)
    payload = torch.load(model, weights_only=False, map_location="cpu")
    assert payload["fingerprint"] == identity.settings_fingerprint(cfg)
    history = json.loads((model.parent / "history.json").read_text())
    assert len(history) == 1 and math.isfinite(history[0]["loss"])


def test_a_model_trained_on_imported_features_parses_a_video(cfg, videos, weights, tmp_path):
    root = _imported_tree(tmp_path, NAMES)
    shard = tmp_path / "imported.h5"
    import_features("valor", root, [write_split_csv(tmp_path / "all.csv", NAMES)], shard, encoders_from=cfg, progress=False)
    # trained with a config whose extract section is the native default: the fingerprint says valor
    model = _train(tmp_path, shard, _csvs(tmp_path, NAMES[:5], NAMES[5:]), ExtractConfig())
    parse_cfg = tmp_path / "parse.yaml"
    parse_cfg.write_text(yaml.safe_dump({"extract": {"visual_model": TINY_CLIP, "visual_pretrained": str(weights["clip"]),
                                                     "audio_checkpoint": str(weights["clap"]), "workers": 0,
                                                     "device": "cpu"}}))
    out = tmp_path / "parsed"
    video = videos["vidAAAAAAAA_0_10"]
    assert main(["parse", "--checkpoint", str(model), str(video), "--output-dir", str(out), "--config", str(parse_cfg),
                 "--quiet"]) == 0
    record = json.loads((out / f"{video.stem}.json").read_text())
    assert record["video"]["n_segments"] == 10
    assert record["video"]["segment_seconds"] == pytest.approx(record["video"]["duration_seconds"] / 10)  # 3 s / 10
    assert record["provenance"]["fingerprint"] == identity.settings_fingerprint(cfg)
    # other weights than the features were computed with: refused, one line naming them
    other = tmp_path / "other-clip.pt"
    shutil.copy(weights["clip"], other)
    with open(other, "ab") as f:
        f.write(b"\0")  # another file, so another sha256
    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text(parse_cfg.read_text().replace(str(weights["clip"]), str(other)))
    with pytest.raises(EcmaError, match=r"differing: visual.*visual\.sha256") as e:
        from ecma.parse import parse_videos

        parse_videos(model, [video], tmp_path / "p2", config=str(bad_cfg), progress=False)
    assert "\n" not in str(e.value)


def test_native_and_valor_shards_refuse_to_mix_with_one_line(cfg, videos, tmp_path):
    name = "vidBBBBBBBB_0_10"
    valor_shard, native_shard = tmp_path / "valor.h5", tmp_path / "native.h5"
    extract_videos([videos[name]], valor_shard, cfg, names=[name], progress=False)
    native = ExtractConfig(visual_model=TINY_CLIP, visual_pretrained=cfg.visual_pretrained, workers=0, device="cpu",
                           amp=False)
    extract_videos([videos["vidAAAAAAAA_0_10"]], native_shard, native, names=["vidAAAAAAAA_0_10"], progress=False)
    with pytest.raises(EcmaError, match="feature fingerprint differs") as e:
        load_features([native_shard, valor_shard], [name, "vidAAAAAAAA_0_10"])
    assert "\n" not in str(e.value) and "visual" in str(e.value)
    with pytest.raises(EcmaError, match="different extractor settings") as e:  # nor extracted into each other
        extract_videos([videos[name]], native_shard, cfg, names=[name], progress=False)
    assert "\n" not in str(e.value)
    # a default import names the published checkpoints, not these random ones: it refuses too
    root = _imported_tree(tmp_path, NAMES[:2])
    published = tmp_path / "published.h5"
    import_features("valor", root, [write_split_csv(tmp_path / "p.csv", NAMES[:2])], published, progress=False)
    with pytest.raises(EcmaError, match=r"feature fingerprint differs .*\(in audio, visual\)"):
        load_features([published, valor_shard], NAMES[:2] + [name])


def test_import_identity_names_the_published_checkpoints_or_the_given_files(cfg):
    visual, audio = identity.published_encoders()
    assert visual == {"model": "open_clip/ViT-L-14-quickgelu", "weights": "file",
                      "sha256": "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836"}
    assert identity.OPENAI_VIT_L14_SHA256 in identity.OPENAI_VIT_L14_URL
    assert VALOR.fingerprint() == identity.valor_fingerprint(visual, audio)
    assert VALOR.fingerprint(cfg) == identity.settings_fingerprint(cfg) != VALOR.fingerprint()
    from ecma.importers.han import HAN

    with pytest.raises(EcmaError, match="valor only"):
        HAN.fingerprint(cfg)


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize("key, value", [("n_segments", 20), ("segment_seconds", 2.0), ("frames_per_segment", 2),
                                        ("sample_rate", 44100), ("audio_mode", "segment"), ("normalize", True)])
def test_settings_the_recipe_fixes_are_refused_with_one_line(key, value):
    with pytest.raises(EcmaError, match=rf"extract\.{key} is .* extract\.profile valor fixes it") as e:
        config_from_dict({"extract": {"profile": "valor", key: value}})
    assert "\n" not in str(e.value)
    config_from_dict({"extract": {"profile": "native", key: value}})  # the native recipe's own settings


def test_valor_weights_are_fetched_from_the_address_that_names_their_sha256():
    files = needed_weights(ExtractConfig(profile="valor", visual_pretrained="openai",
                                         audio_checkpoint="laion:630k-fusion-best.pt"))
    assert files["visual"] == WeightsFile("resources/weights/open_clip/ViT-L-14-quickgelu-openai-url.pt",
                                          ("open_clip_url", "ViT-L-14-quickgelu", "openai"))
    assert files["audio"] == WeightsFile("resources/weights/laion_clap/630k-fusion-best.pt",
                                         ("laion_clap", "630k-fusion-best.pt", ""))
    import open_clip

    assert open_clip.get_pretrained_cfg("ViT-L-14-quickgelu", "openai")["url"] == identity.OPENAI_VIT_L14_URL


def test_valor_weights_must_be_files(tmp_path):
    from ecma.extract.valor.encoders import ValorVisualEncoder

    with pytest.raises(EcmaError, match="must be a weights file for the valor profile"):
        ValorVisualEncoder(TINY_CLIP, "openai")


def test_a_non_fusion_checkpoint_is_refused(tmp_path):
    from ecma.extract.valor.encoders import ValorAudioEncoder

    path = tmp_path / "plain.pt"  # a non-fusion tower's weights lack the fusion layers (here: all but one)
    torch.save({"state_dict": {"audio_branch.bn0.weight": torch.ones(64)}}, path)
    with pytest.raises(EcmaError, match="needs a fusion checkpoint"):
        ValorAudioEncoder("HTSAT-tiny", str(path))


def test_decode_jpeg_converts_to_rgb(tmp_path):
    from PIL import Image
    import io

    buf = io.BytesIO()
    Image.new("L", (4, 3), 128).save(buf, format="JPEG")
    assert decode_jpeg(buf.getvalue()).shape == (3, 4, 3)
