"""The audio encoder: laion_clap's HTSAT audio tower, built alone.

``import laion_clap`` downloads text tokenizers at import time (its ``training.data`` module) and
``CLAP_Module`` downloads roberta-base in its constructor, so neither is used: laion_clap's
``clap_module/htsat.py`` (with its two sibling modules) is loaded under a private package name, and
its own ``create_htsat_model`` builds the tower from laion_clap's model config. Weights: the
``audio_branch.*`` entries of a CLAP checkpoint file (e.g. ``630k-audioset-best.pt``), or a random
initialisation seeded by ``seed``. Embeddings are the 768-d ones before CLAP's projection.

Modes (the tower sees fixed 10-s windows at 48 kHz):
- ``clip``: one pass per 10-s window; the fine-grained (frame-level) embeddings are average-pooled over
  each segment's frames. A last window shorter than 10 s is filled by repeating its audio, and only its
  real segments are kept.
- ``segment``: each segment is repeated to fill a window and encoded on its own (ten passes per 10 s).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ecma.device import amp_dtype, autocast
from ecma.errors import EcmaError
from ecma.extract.fingerprint import weights_id
from ecma.safe_load import safe_torch_load

_PRIVATE_PKG = "_ecma_laion_clap_module"


def _clap_module_dir() -> Path:
    spec = importlib.util.find_spec("laion_clap")  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise EcmaError("laion_clap is not installed (pip install laion_clap)")
    return Path(list(spec.submodule_search_locations)[0]) / "clap_module"


def _htsat_module():
    """laion_clap.clap_module.htsat, imported without laion_clap's package __init__ files."""
    name = f"{_PRIVATE_PKG}.htsat"
    if name in sys.modules:
        return sys.modules[name]
    pkg = types.ModuleType(_PRIVATE_PKG)
    pkg.__path__ = [str(_clap_module_dir())]
    sys.modules.setdefault(_PRIVATE_PKG, pkg)
    return importlib.import_module(name)


def _np_scalar_reconstructor():
    """numpy's scalar unpickling function (``numpy.core.multiarray.scalar``, moved in numpy 2)."""
    try:
        from numpy._core.multiarray import scalar
    except ImportError:
        from numpy.core.multiarray import scalar
    return scalar


def audio_model_config(model_name: str) -> dict:
    """laion_clap's config of ``model_name`` (e.g. 'HTSAT-tiny'): its ``audio_cfg`` section."""
    path = _clap_module_dir() / "model_configs" / f"{model_name}.json"
    if not path.is_file() or not model_name.startswith("HTSAT"):
        known = sorted(p.stem for p in path.parent.glob("HTSAT-*.json"))
        raise EcmaError(f"config: extract.audio_model {model_name!r} is not an HTSAT model of laion_clap ({', '.join(known)})")
    return json.loads(path.read_text())["audio_cfg"]


# LAION-CLAP's released checkpoints store a few numpy scalars (e.g. the epoch) beside the weights; these
# rebuild plain numbers and run no code, so safe loading may allow them. Anything else is refused.
CLAP_CHECKPOINT_TYPES = (np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.int64)), _np_scalar_reconstructor())


class _Cfg(types.SimpleNamespace):
    pass


def load_audio_branch_state(path: str) -> dict:
    """The ``audio_branch.*`` weights of a CLAP checkpoint file, with that prefix removed."""
    ckpt = safe_torch_load(path, "CLAP checkpoint", allowed=CLAP_CHECKPOINT_TYPES)
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise EcmaError(f"{path}: not a CLAP checkpoint (no state_dict)")
    out = {}
    for k, v in state.items():
        k = k.removeprefix("module.")
        if k.startswith("audio_branch."):
            out[k.removeprefix("audio_branch.")] = v
    if not out:
        raise EcmaError(f"{path}: the checkpoint holds no audio_branch weights")
    return out


class AudioEncoder:
    def __init__(self, model_name: str = "HTSAT-tiny", checkpoint: Optional[str] = None, *, mode: str = "clip",
                 seed: int = 0, sample_rate: int = 48000, segment_seconds: float = 1.0,
                 device: torch.device = torch.device("cpu"), batch_size: int = 16, amp: bool = False):
        if mode not in ("clip", "segment"):
            raise EcmaError(f"config: extract.audio_mode must be 'clip' or 'segment', got {mode!r}")
        if checkpoint is not None and not Path(checkpoint).is_file():
            raise EcmaError(f"{checkpoint}: audio checkpoint file not found")
        cfg = audio_model_config(model_name)
        if sample_rate != cfg["sample_rate"]:
            raise EcmaError(f"config: extract.sample_rate is {sample_rate}, but {model_name} takes {cfg['sample_rate']} Hz audio")
        htsat = _htsat_module()
        self.weights = weights_id(checkpoint, seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            tower = htsat.create_htsat_model(_Cfg(**cfg), enable_fusion=False, fusion_type="None")
        if checkpoint is not None:
            state = load_audio_branch_state(checkpoint)
            try:
                tower.load_state_dict(state, strict=True)
            except RuntimeError as e:
                raise EcmaError(f"{checkpoint}: audio weights do not fit {model_name} ({str(e).splitlines()[0]})") from None
        self.tower = tower.eval().to(device)
        self.tower.requires_grad_(False)
        self.model_name, self.mode, self.device, self.batch_size = model_name, mode, device, batch_size
        self.sample_rate = sample_rate
        self.amp = amp_dtype(device, amp)  # autocast: HTSAT has no fused path to lose (1.2 vs 2.0 s float32)
        self.window = int(cfg["clip_samples"])
        self.seg = int(round(segment_seconds * sample_rate))
        self.segments_per_window = max(1, self.window // self.seg)
        self.dim = int(self.tower.num_features)
        self.config = cfg

    def describe(self) -> dict:
        c = self.config
        return {"model": f"laion_clap/{self.model_name}", **self.weights, "window_samples": self.window,
                "mel_bins": c["mel_bins"], "hop_size": c["hop_size"], "fmin": c["fmin"], "fmax": c["fmax"],
                "embedding": "before projection", "input": "int16-quantised"}

    # --- the tower -------------------------------------------------------------------------------
    @torch.inference_mode()
    def _forward(self, windows: torch.Tensor) -> dict:
        """laion_clap's HTSAT forward (no fusion) with the mel front end kept in float32 under autocast."""
        t = self.tower
        x = windows.to(self.device, non_blocking=True)
        x = t.spectrogram_extractor(x)
        x = t.logmel_extractor(x)
        x = t.bn0(x.transpose(1, 3)).transpose(1, 3)
        x = t.reshape_wav2img(x)
        with autocast(self.device, self.amp):
            out = t.forward_features(x)
        return {k: out[k].float().cpu() for k in ("embedding", "fine_grained_embedding")}

    def _run(self, windows: np.ndarray, key: str) -> torch.Tensor:
        outs = []
        for i in range(0, len(windows), self.batch_size):
            outs.append(self._forward(torch.from_numpy(windows[i : i + self.batch_size]))[key])
        return torch.cat(outs)

    @staticmethod
    def _quantise(x: np.ndarray) -> np.ndarray:
        # CLAP was trained on int16 audio; its own inference rounds float input to the int16 grid.
        return (np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16).astype(np.float32) / 32767.0

    # --- public ----------------------------------------------------------------------------------
    def encode(self, waveforms: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per video, (n, D) float32 features of its n = len(waveform) / segment samples segments."""
        counts = [len(w) // self.seg for w in waveforms]
        if self.mode == "segment":
            segs = [w[i * self.seg : (i + 1) * self.seg] for w, n in zip(waveforms, counts) for i in range(n)]
            if not segs:
                return [np.zeros((0, self.dim), np.float32) for _ in waveforms]
            windows = np.stack([np.resize(self._quantise(s), self.window) for s in segs])
            feats = self._run(windows, "embedding").numpy()
            return np.split(feats, np.cumsum(counts)[:-1])
        return self._encode_clip(waveforms, counts)

    def _encode_clip(self, waveforms: Sequence[np.ndarray], counts: list[int]) -> list[np.ndarray]:
        per = self.segments_per_window
        windows, plan = [], []  # plan: (video, first segment, segments in window)
        for v, (w, n) in enumerate(zip(waveforms, counts)):
            for first in range(0, n, per):
                k = min(per, n - first)
                chunk = self._quantise(w[first * self.seg : (first + k) * self.seg])
                windows.append(np.resize(chunk, self.window))  # fill a short last window by repetition
                plan.append((v, first, k))
        out = [np.zeros((n, self.dim), np.float32) for n in counts]
        if not windows:
            return out
        fine = self._run(np.stack(windows), "fine_grained_embedding")  # (W, F, D)
        bounds = segment_frame_bounds(fine.shape[1], self.window, self.seg, per)
        for (v, first, k), f in zip(plan, fine):
            for j in range(k):
                out[v][first + j] = f[bounds[j] : bounds[j + 1]].mean(0).numpy()
        return out


def segment_frame_bounds(n_frames: int, window_samples: int, segment_samples: int, per_window: int) -> list[int]:
    """Frame index where each segment of a window starts (and the last one ends): the tower's frames
    spread evenly over the window, so segment j covers frames [j*F*s/W, (j+1)*F*s/W)."""
    return [int(round(j * n_frames * segment_samples / window_samples)) for j in range(per_window + 1)]
