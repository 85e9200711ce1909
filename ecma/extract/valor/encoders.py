"""The two towers of the ``valor`` profile, always in float32 (as VALOR computed its features).

Visual: an open_clip image tower (``ViT-L-14-quickgelu`` with OpenAI's weights computes what
``CLIPModel.get_image_features`` of ``openai/clip-vit-large-patch14`` computes: the same tensors, the
projected class token), on the frames :mod:`.frames` squashed, normalised by CLIP's mean and std, and
L2-normalised. Audio: laion_clap's HTSAT built with fusion (so that a fusion checkpoint loads whole), fed
:mod:`.mel`'s log-mel as VALOR feeds it (``My_CLAP.htsat_forward``: the mel through ``bn0``, stretched to
the tower's image by ``reshape_wav2img``, then ``forward_features`` with no clip marked longer, so only
the mel's first copy reaches ``patch_embed``); the saved map is the tower's last feature map before its
token-semantic head, (64, C), taken from laion_clap's own ``forward_features`` by a hook on that head's
input. :func:`ecma.importers.clap.clap_map_to_segments` turns it into 10 per-second vectors: the
conversion an import of VALOR's published maps applies.
"""

from __future__ import annotations

import logging
import os
from typing import Optional, Sequence

import numpy as np
import torch

from ecma.errors import EcmaError
from ecma.extract.audio import _Cfg, _htsat_module, audio_model_config, load_audio_branch_state
from ecma.extract.valor import identity
from ecma.extract.valor.frames import IMAGE_SIZE
from ecma.extract.valor.mel import FusionMel
from ecma.extract.valor.waveform import N_SAMPLES, SAMPLE_RATE
from ecma.importers.clap import clap_map_to_segments

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI's, as CLIPImageProcessor and open_clip state them
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
FUSION_TYPE = "aff_2d"  # laion_clap's CLAP_Module(enable_fusion=True) default


def _local_or_none(weights: Optional[str], setting: str) -> Optional[str]:
    if weights is not None and not os.path.isfile(weights):
        raise EcmaError(f"{weights}: {setting} must be a weights file for the valor profile (its identity is the "
                        "file's sha256; fetch it first), or null for random weights")
    return weights


class ValorVisualEncoder:
    transform = None  # the decoding workers squash the frames themselves (ecma.extract.valor.frames)
    image_size = IMAGE_SIZE
    amp = None  # float32 always

    def __init__(self, model_name: str, pretrained: Optional[str], *, seed: int = 0,
                 device: torch.device = torch.device("cpu"), batch_size: int = 32):
        import open_clip

        if model_name not in open_clip.list_models():
            raise EcmaError(f"config: extract.visual_model {model_name!r} is not an open_clip model")
        pretrained = _local_or_none(pretrained, "extract.visual_pretrained")
        self.identity = identity.visual_encoder(model_name, pretrained, seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            level = logging.getLogger().level
            logging.getLogger().setLevel(logging.ERROR)  # open_clip warns about a random init, deliberate here
            try:
                model = open_clip.create_model(model_name, pretrained=pretrained)
            except Exception as e:
                raise EcmaError(f"{pretrained or model_name}: cannot build visual encoder {model_name} ({e})") from None
            finally:
                logging.getLogger().setLevel(level)
        tower = model.visual
        size = getattr(tower, "image_size", IMAGE_SIZE)
        size = size if isinstance(size, int) else size[0]
        if size != IMAGE_SIZE:
            raise EcmaError(f"config: extract.visual_model {model_name} takes {size}x{size} images; VALOR's recipe "
                            f"squashes frames to {IMAGE_SIZE}x{IMAGE_SIZE}")
        self.model_name = model_name
        self.tower = tower.eval().to(device).float()
        self.tower.requires_grad_(False)
        del model
        self.device, self.batch_size = device, batch_size
        self.dim = int(self.tower.output_dim)
        self.mean = torch.tensor(CLIP_MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(CLIP_STD, device=device).view(1, 3, 1, 1)

    @torch.inference_mode()
    def encode(self, images) -> np.ndarray:
        """(N, 224, 224, 3) float32 frames in [0, 1] -> (N, D) float32 L2-normalised embeddings."""
        images = torch.as_tensor(np.asarray(images, dtype=np.float32))
        out = []
        for i in range(0, len(images), self.batch_size):
            x = images[i : i + self.batch_size].to(self.device).permute(0, 3, 1, 2)
            x = x.sub(self.mean).div(self.std)  # torchvision's Normalize: (x - mean) / std
            f = self.tower(x.contiguous()).float()
            out.append((f / f.norm(p=2, dim=-1, keepdim=True)).cpu())  # VALOR: x / x.norm(p=2, dim=-1)
        return torch.cat(out).numpy() if out else np.zeros((0, self.dim), np.float32)


class ValorAudioEncoder:
    amp = None  # float32 always

    def __init__(self, model_name: str = identity.AUDIO_MODEL, checkpoint: Optional[str] = None, *, seed: int = 0,
                 device: torch.device = torch.device("cpu"), batch_size: int = 8):
        checkpoint = _local_or_none(checkpoint, "extract.audio_checkpoint")
        cfg = audio_model_config(model_name)
        if cfg["sample_rate"] != SAMPLE_RATE or cfg["clip_samples"] != N_SAMPLES:
            raise EcmaError(f"config: extract.audio_model {model_name} takes {cfg['clip_samples']} samples at "
                            f"{cfg['sample_rate']} Hz; VALOR's recipe feeds {N_SAMPLES} at {SAMPLE_RATE} Hz")
        self.identity = identity.audio_encoder(model_name, checkpoint, seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            tower = _htsat_module().create_htsat_model(_Cfg(**cfg), enable_fusion=True, fusion_type=FUSION_TYPE)
        if checkpoint is not None:
            try:
                tower.load_state_dict(load_audio_branch_state(checkpoint), strict=True)
            except RuntimeError as e:
                raise EcmaError(f"{checkpoint}: audio weights do not fit {model_name} with fusion (the valor profile "
                                f"needs a fusion checkpoint such as laion:630k-fusion-best.pt; {str(e).splitlines()[0]})"
                                ) from None
        self.tower = tower.eval().to(device).float()
        self.tower.requires_grad_(False)
        self.mel = FusionMel(cfg).to(device)
        self.model_name, self.device, self.batch_size = model_name, device, batch_size
        self.dim = int(self.tower.num_features)
        self.config = cfg

    @torch.inference_mode()
    def feature_maps(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(B, 480000) float32 -> (B, 64, C): HTSAT's last feature map, as VALOR's ``htsat_forward`` saves it."""
        t = self.tower
        x = self.mel(waveforms.to(self.device)).unsqueeze(1)  # (B, 1, frames, mels): the first of the 4 copies
        x = t.bn0(x.transpose(1, 3)).transpose(1, 3)
        x = t.reshape_wav2img(x)
        captured = []
        hook = t.tscam_conv.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
        try:
            t.forward_features(x, longer_idx=[])
        finally:
            hook.remove()
        grouped = captured[0]  # (B, C, 2, 32): the map after the tower's frequency grouping
        return torch.flatten(grouped, 2).permute(0, 2, 1).float()

    def encode(self, waveforms: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per video, (10, C) float32 per-second vectors of its 480,000-sample waveform."""
        out = []
        for i in range(0, len(waveforms), self.batch_size):
            batch = torch.from_numpy(np.stack([np.asarray(w, np.float32) for w in waveforms[i : i + self.batch_size]]))
            if batch.shape[1] != N_SAMPLES:
                raise ValueError(f"the valor audio tower takes {N_SAMPLES} samples, got {batch.shape[1]}")
            out += [clap_map_to_segments(m) for m in self.feature_maps(batch).cpu().numpy()]
        return out
