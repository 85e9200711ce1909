"""open_clip's image preprocessing, as plain parameters that need neither torch nor open_clip.

open_clip's transform for a model is: resize (bicubic, antialiased, in PIL) so that the short side is
``size``, centre crop to ``size`` x ``size``, convert to RGB, scale to [0, 1], normalise by mean and std.
The first three steps give uint8 pixels, so they run in the decoding workers (:meth:`ImageTransform.crop`),
which then need only numpy and PIL: importing torch and open_clip there would cost each worker seconds of
start-up. The last two run on the batch in the encoding process (:meth:`ImageTransform.normalize`), on
the GPU when there is one, and ship 4x fewer bytes between processes than float images would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecma.errors import EcmaError

_RESAMPLE = {"bicubic": 3, "bilinear": 2, "nearest": 0}  # PIL.Image.Resampling values


@dataclass(frozen=True)
class ImageTransform:
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"  # 'shortest': resize the short side, then centre crop; 'squash': resize both

    def __post_init__(self) -> None:
        if self.interpolation not in _RESAMPLE:
            raise EcmaError(f"extract: image interpolation {self.interpolation!r} is not supported")
        if self.resize_mode not in ("shortest", "squash"):
            raise EcmaError(f"extract: image resize mode {self.resize_mode!r} is not supported")

    @classmethod
    def from_open_clip(cls, visual) -> "ImageTransform":
        """The transform of an open_clip image tower (from its ``preprocess_cfg``)."""
        cfg = dict(getattr(visual, "preprocess_cfg", {}) or {})
        size = cfg.get("size", getattr(visual, "image_size", 224))
        size = size if isinstance(size, int) else size[0]
        if cfg.get("mode", "RGB") != "RGB":
            raise EcmaError(f"extract: image mode {cfg['mode']!r} is not supported (RGB only)")
        return cls(int(size), tuple(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))),
                   tuple(cfg.get("std", (0.26862954, 0.26130258, 0.27577711))),
                   cfg.get("interpolation", "bicubic"), cfg.get("resize_mode", "shortest"))

    def _target(self, h: int, w: int) -> tuple[int, int]:
        """(height, width) after resizing, as torchvision's Resize(int) computes it."""
        if self.resize_mode == "squash":
            return self.size, self.size
        if h <= w:
            return self.size, int(self.size * w / h)
        return int(self.size * h / w), self.size

    def crop(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 frames -> (N, size, size, 3) uint8, resized and centre-cropped."""
        from PIL import Image

        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be (N, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
        out = np.empty((len(frames), self.size, self.size, 3), np.uint8)
        th, tw = self._target(*frames.shape[1:3])
        top, left = int(round((th - self.size) / 2.0)), int(round((tw - self.size) / 2.0))
        for i, f in enumerate(frames):
            img = Image.fromarray(f)
            if (th, tw) != f.shape[:2]:
                img = img.resize((tw, th), resample=_RESAMPLE[self.interpolation])
            out[i] = np.asarray(img)[top : top + self.size, left : left + self.size]
        return out

    def normalize(self, images):
        """(N, size, size, 3) uint8 tensor -> (N, 3, size, size) float32 tensor, on the tensor's device."""
        import torch

        x = images.permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return x.sub_(mean).div_(std)
