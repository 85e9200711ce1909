"""Random weights files of the ``valor`` profile's architectures, small where the recipe allows, for tests:
a 1-layer ViT with CLIP's 224-pixel input and VALOR's 768-d output (registered with open_clip under
``TINY_CLIP``) and LAION-CLAP's fusion HTSAT-tiny, each saved as real checkpoints are.

Processes that the tests start (a workflow's ``ecma`` jobs) learn the tiny ViT through a plug-in
(:func:`tiny_clip_plugin`): a folder on ``PYTHONPATH`` holding a module that registers its config and the
``ecma.plugins`` entry point that makes every ``ecma`` command import it."""

from __future__ import annotations

import json
from pathlib import Path

import torch

TINY_CLIP = "ecma-test-ViT-768"
TINY_CLIP_CONFIG = {
    "embed_dim": 768, "quick_gelu": True,
    "vision_cfg": {"image_size": 224, "layers": 1, "width": 64, "head_width": 32, "patch_size": 32},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 32, "heads": 1, "layers": 1},
}


def write_valor_weights(folder: Path) -> dict[str, Path]:
    """Write the tiny ViT's config (registered here), its random weights and a random fusion CLAP checkpoint."""
    import open_clip

    from ecma.extract.audio import _Cfg, _htsat_module, audio_model_config

    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"{TINY_CLIP}.json"
    config.write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(config)
    torch.manual_seed(1)
    clip = folder / "clip.pt"
    torch.save(open_clip.create_model(TINY_CLIP).state_dict(), clip)
    torch.manual_seed(2)
    tower = _htsat_module().create_htsat_model(_Cfg(**audio_model_config("HTSAT-tiny")), enable_fusion=True,
                                               fusion_type="aff_2d")
    clap = folder / "clap-fusion.pt"
    torch.save({"state_dict": {f"module.audio_branch.{k}": v for k, v in tower.state_dict().items()}}, clap)
    return {"clip": clip, "clap": clap, "config": config}


def tiny_clip_plugin(folder: Path, config: Path) -> Path:
    """A folder to put on PYTHONPATH: a module registering the tiny ViT's config with open_clip, found by
    ``ecma`` through the ``ecma.plugins`` entry point of a dist-info beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ecma_test_tiny_clip.py").write_text(
        f"import open_clip\n\nopen_clip.add_model_config({str(config)!r})\n")
    dist = folder / "ecma_test_tiny_clip-0.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ecma-test-tiny-clip\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[ecma.plugins]\ntiny_clip = ecma_test_tiny_clip\n")
    return folder
