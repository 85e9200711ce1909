"""Encoder weights as files: which files a config needs, fetching them once with a sha256, verifying them,
and the workflow taking them as inputs (touching a checkpoint re-extracts; a real dataset refuses random
encoders before any job)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ecma.config import ExtractConfig
from ecma.errors import EcmaError
from ecma.extract.weights import WeightsFile, fetch, needed_weights, random_encoders, verify, with_local_weights
from test_workflow import make_dataset, output_of, run_snakemake, stub_env, write_config  # noqa: F401 (fixture)


def test_which_files_a_config_needs():
    cfg = ExtractConfig(visual_model="ViT-L-14-quickgelu", visual_pretrained="openai",
                        audio_checkpoint="laion:630k-audioset-best.pt")
    files = needed_weights(cfg)
    assert files["visual"] == WeightsFile("resources/weights/open_clip/ViT-L-14-quickgelu-openai.pt",
                                          ("open_clip", "ViT-L-14-quickgelu", "openai"))
    assert files["audio"] == WeightsFile("resources/weights/laion_clap/630k-audioset-best.pt",
                                         ("laion_clap", "630k-audioset-best.pt", ""))
    local = with_local_weights(cfg)
    assert (local.visual_pretrained, local.audio_checkpoint) == (files["visual"].path, files["audio"].path)
    own = ExtractConfig(visual_pretrained="ckpt/clip.pt", audio_checkpoint="ckpt/clap.pt")
    assert needed_weights(own) == {"visual": WeightsFile("ckpt/clip.pt"), "audio": WeightsFile("ckpt/clap.pt")}
    assert with_local_weights(own) == own
    assert needed_weights(ExtractConfig()) == {}
    assert random_encoders(ExtractConfig()) == ["extract.visual_pretrained", "extract.audio_checkpoint"]
    assert random_encoders(cfg) == []
    with pytest.raises(EcmaError, match="unknown LAION-CLAP release"):
        needed_weights(ExtractConfig(audio_checkpoint="laion:630k-nothing.pt"))


def test_fetch_writes_the_file_and_its_sha256_and_verify_checks_it(tmp_path, monkeypatch):
    import huggingface_hub

    payload = b"weights" * 1000

    def fake_hub(repo, name, cache_dir):
        assert (repo, name) == ("lukewys/laion_clap", "630k-audioset-best.pt")
        p = Path(cache_dir) / name
        p.write_bytes(payload)
        return str(p)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_hub)
    target = tmp_path / "w" / "630k-audioset-best.pt"
    fetch(WeightsFile(str(target), ("laion_clap", "630k-audioset-best.pt", "")))
    digest = hashlib.sha256(payload).hexdigest()
    assert target.read_bytes() == payload
    assert Path(f"{target}.sha256").read_text() == f"{digest}  630k-audioset-best.pt\n"
    assert verify(target) == digest
    target.write_bytes(payload[:-1])  # a truncated download
    with pytest.raises(EcmaError, match=r"630k-audioset-best\.pt: sha256 .* differs from .* recorded when it was fetched"):
        verify(target)


def test_a_failed_download_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    import open_clip.pretrained

    def offline(cfg, cache_dir=None, **kw):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(open_clip.pretrained, "download_pretrained", offline)
    target = tmp_path / "clip.pt"
    with pytest.raises(EcmaError, match=r"clip\.pt: cannot fetch open_clip weights ViT-B-32 openai \(OSError: Temporary failure"):
        fetch(WeightsFile(str(target), ("open_clip", "ViT-B-32", "openai")))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(EcmaError, match="has no pretrained weights 'nonesuch'"):
        fetch(WeightsFile(str(target), ("open_clip", "ViT-B-32", "nonesuch")))


def _dataset(tmp_path: Path, **extract) -> None:
    make_dataset(tmp_path / "data", {"train": ["a1", "a2"], "val": ["b1"], "test": ["c1"]})
    write_config(tmp_path, {"mine": {"annotations": "data", "videos": "data/videos", "n_shards": 1}}, extract=extract)


def test_a_real_dataset_refuses_random_encoders_before_any_job(tmp_path):
    _dataset(tmp_path, audio_checkpoint="laion:630k-audioset-best.pt")  # visual_pretrained left null
    p = run_snakemake(tmp_path, "-n", "results/mine/metrics.json")
    assert p.returncode == 2, output_of(p)
    assert p.stderr.strip().splitlines()[-1] == (
        "ecma: error: datasets.mine: extract.visual_pretrained null would extract with randomly initialised "
        "encoders; name the weights (see config.yaml), or set datasets.mine.random_encoders: true")


def test_fetched_weights_come_from_a_local_rule_and_feed_extraction(tmp_path):
    _dataset(tmp_path, visual_model="ViT-B-32", visual_pretrained="openai", audio_checkpoint="laion:630k-audioset-best.pt")
    p = run_snakemake(tmp_path, "-n", "-p", "results/mine/features/shard-0.h5")
    assert p.returncode == 0, output_of(p)
    text = output_of(p)
    assert "rule fetch_weights:" in text  # a local rule: see test_every_rule_declares_... in test_workflow
    assert "ecma fetch-weights --spec open_clip ViT-B-32 openai --output resources/weights/open_clip/ViT-B-32-openai.pt" in text
    assert "ecma fetch-weights --spec laion_clap 630k-audioset-best.pt --output resources/weights/laion_clap/630k-audioset-best.pt" in text
    # the job reads the local files, never the tags
    assert '"visual_pretrained": "resources/weights/open_clip/ViT-B-32-openai.pt"' in text
    assert '"audio_checkpoint": "resources/weights/laion_clap/630k-audioset-best.pt"' in text


def test_replacing_a_local_checkpoint_reruns_extraction(tmp_path, stub_env):
    env, calls = stub_env
    ckpt = tmp_path / "ckpt" / "clap.pt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"weights")
    _dataset(tmp_path, visual_model="ViT-B-32", visual_pretrained=str(tmp_path / "ckpt" / "clip.pt"), audio_checkpoint=str(ckpt))
    (tmp_path / "ckpt" / "clip.pt").write_bytes(b"clip")
    target = "results/mine/features/shard-0.h5"
    p = run_snakemake(tmp_path, target, env=env)
    assert p.returncode == 0, output_of(p)
    assert calls() == [("extract", "0")]
    p = run_snakemake(tmp_path, target, env=env)
    assert p.returncode == 0 and calls() == []
    ckpt.write_bytes(b"other weights")  # a new checkpoint file under the same name
    p = run_snakemake(tmp_path, target, env=env)
    assert p.returncode == 0, output_of(p)
    assert calls() == [("extract", "0")]
