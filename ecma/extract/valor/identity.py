"""The one feature identity of VALOR's CLIP/CLAP features, published (``ecma import --format valor``) or
extracted (``extract.profile: valor``): shards that carry it hold interchangeable features, may be merged,
trained on together, and a model trained on either parses any video with the ``valor`` extractor.

It names the recipe (its version), each encoder (architecture and weights, a weights file by its sha256)
and the stored layout. Not in it: the ecma version (the recipe version stands for the numbers), the
storage precision (always float32, as VALOR publishes), the compute precision (always float32, as VALOR
computed), and anything about runs (device, workers, batches).

The published features were computed with OpenAI's CLIP ViT-L/14 (``openai/clip-vit-large-patch14`` on
Hugging Face holds the same tensors as OpenAI's ``ViT-L-14.pt``, whose download address carries its
sha256) and LAION-CLAP's ``630k-fusion-best.pt`` (``CLAP_Module.load_ckpt(model_id=2)``).
"""

from __future__ import annotations

from typing import Optional

from ecma.extract.fingerprint import weights_id
from ecma.extract.weights import needed_weights

RECIPE_VERSION = 1  # bump when the numbers of the recipe change: shards of another version never mix

VISUAL_MODEL = "ViT-L-14-quickgelu"  # open_clip's name for OpenAI's ViT-L/14 (QuickGELU activations)
AUDIO_MODEL = "HTSAT-tiny"  # the audio tower of every LAION-CLAP 630k checkpoint

# OpenAI's ViT-L/14 checkpoint: its download address names the file's sha256 (clip/clip.py _MODELS in
# github.com/openai/CLIP; open_clip's pretrained.py lists the same address for ViT-L-14-quickgelu 'openai').
OPENAI_VIT_L14_URL = ("https://openaipublic.azureedge.net/clip/models/"
                      "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt")
OPENAI_VIT_L14_SHA256 = "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836"

# LAION-CLAP's 630k-fusion-best.pt (huggingface.co/lukewys/laion_clap): its Git LFS sha256 is published
# on the file's page, but could not be read offline when this was written; until it is recorded here,
# the published features' audio weights are named by the release alone, which no weights file equals:
# extracted features then refuse to mix with a default import (safe), and an import that names the
# weights file (``encoders_from``) mixes. Record the hash from the file's Hugging Face page.
LAION_630K_FUSION_SHA256: Optional[str] = None
LAION_630K_FUSION_RELEASE = "630k-fusion-best.pt"

VISUAL_FEATURES = ("CLIP image embeddings (after projection) of 10 frames picked from ffmpeg's 8-fps JPEGs, "
                   "RGB, squashed to 224x224 (bilinear, no antialias), CLIP mean/std, L2-normalised")
AUDIO_FEATURES = ("LAION-CLAP fusion HTSAT last feature map (64, C) of the waveform index-resampled to "
                  "480,000 samples at 48 kHz and int16-rounded (torchaudio HTK mel, no longer-clip fusion), "
                  "as 10 per-second vectors: VALOR's input path before fc_a (view (C, 2, 32), bicubic to "
                  "(2, 1024), mean over frequency, adaptive average pool to 10)")


def encoder(model: str, weights: dict) -> dict:
    """One encoder of the identity: architecture and weights (``ecma.extract.fingerprint.weights_id``)."""
    return {"model": model, **weights}


def visual_encoder(model_name: str, pretrained: Optional[str], seed: int) -> dict:
    return encoder(f"open_clip/{model_name}", weights_id(pretrained, seed))


def audio_encoder(model_name: str, checkpoint: Optional[str], seed: int) -> dict:
    return encoder(f"laion_clap/{model_name} fusion", weights_id(checkpoint, seed))


def published_encoders() -> tuple[dict, dict]:
    """(visual, audio) of the features VALOR published."""
    visual = encoder(f"open_clip/{VISUAL_MODEL}", {"weights": "file", "sha256": OPENAI_VIT_L14_SHA256})
    if LAION_630K_FUSION_SHA256 is not None:
        audio_weights = {"weights": "file", "sha256": LAION_630K_FUSION_SHA256}
    else:
        audio_weights = {"weights": f"release:laion_clap/{LAION_630K_FUSION_RELEASE} (sha256 not recorded)"}
    return visual, encoder(f"laion_clap/{AUDIO_MODEL} fusion", audio_weights)


def valor_fingerprint(visual: dict, audio: dict) -> dict:
    """The shard fingerprint of VALOR features computed by these encoders."""
    return {
        "features": "valor",
        "valor_recipe_version": RECIPE_VERSION,
        "visual": {**visual, "features": VISUAL_FEATURES},
        "audio": {**audio, "features": AUDIO_FEATURES},
        "n_segments": 10,
        "frames_per_segment": 1,
        "dtype": "float32",
    }


def is_valor_fingerprint(fingerprint: Optional[dict]) -> bool:
    return isinstance(fingerprint, dict) and fingerprint.get("features") == "valor"


def settings_fingerprint(cfg) -> dict:
    """The identity an ExtractConfig's ``valor`` extraction has, from its settings alone (nothing built):
    what an import given ``encoders_from=cfg`` records, and what ``ecma parse`` checks first."""
    return valor_fingerprint(visual_encoder(cfg.visual_model, cfg.visual_pretrained, cfg.seed),
                             audio_encoder(cfg.audio_model, cfg.audio_checkpoint, cfg.seed))


def published_weights_mismatch(cfg) -> Optional[str]:
    """Why a ``valor`` extraction with ExtractConfig ``cfg`` would not carry the identity of the features VALOR
    published (what a default import records), or None where it would, or where only a local weights file's
    sha256 could tell (extraction hashes it; training then refuses a mismatch). From the settings' names alone,
    so that the workflow can say it before any job runs: OpenAI's ViT-L/14 is fetched from the address that
    carries its sha256, LAION-CLAP's release from Hugging Face, whose sha256 must be recorded here to count."""
    files = needed_weights(cfg)
    reasons = []
    if cfg.visual_model != VISUAL_MODEL:
        reasons.append(f"extract.visual_model is {cfg.visual_model!r}, not {VISUAL_MODEL!r}")
    if "visual" not in files:
        reasons.append("extract.visual_pretrained is null (random weights)")
    elif files["visual"].fetch is not None and cfg.visual_pretrained != "openai":
        reasons.append(f"extract.visual_pretrained {cfg.visual_pretrained!r} is not OpenAI's ViT-L/14 ('openai')")
    if cfg.audio_model != AUDIO_MODEL:
        reasons.append(f"extract.audio_model is {cfg.audio_model!r}, not {AUDIO_MODEL!r}")
    if "audio" not in files:
        reasons.append("extract.audio_checkpoint is null (random weights)")
    elif files["audio"].fetch is not None:
        release = files["audio"].fetch[1]
        if release != LAION_630K_FUSION_RELEASE:
            reasons.append(f"extract.audio_checkpoint {cfg.audio_checkpoint!r} is not laion:{LAION_630K_FUSION_RELEASE}")
        elif LAION_630K_FUSION_SHA256 is None:
            reasons.append(f"ecma has no sha256 recorded for the published {LAION_630K_FUSION_RELEASE} "
                           "(LAION_630K_FUSION_SHA256 in ecma/extract/valor/identity.py), so the fetched file cannot "
                           "be shown to be the one VALOR used")
    return "; ".join(reasons) or None
