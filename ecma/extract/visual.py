"""The visual encoder: an open_clip image tower with open_clip's own preprocessing for that model.

``pretrained`` is 'openai' (or any open_clip pretrained tag; downloaded by open_clip, so only where
there is network), a local checkpoint file, or None for a random initialisation seeded by ``seed``
(what runs offline and in tests). The openai ViT-L/14 weights belong with ``ViT-L-14-quickgelu``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import torch

from ecma.device import amp_dtype
from ecma.errors import EcmaError
from ecma.extract.fingerprint import weights_id
from ecma.extract.transform import ImageTransform
from ecma.safe_load import check_torch_file, is_safetensors


class VisualEncoder:
    def __init__(self, model_name: str, pretrained: Optional[str], *, seed: int = 0,
                 device: torch.device = torch.device("cpu"), batch_size: int = 64, amp: bool = False):
        import open_clip

        if model_name not in open_clip.list_models():
            raise EcmaError(f"config: extract.visual_model {model_name!r} is not an open_clip model")
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        if pretrained is not None and pretrained not in tags and not os.path.isfile(pretrained):
            raise EcmaError(
                f"{pretrained}: visual checkpoint file not found (nor an open_clip pretrained tag of {model_name}: "
                f"{', '.join(tags) or 'none'})"
            )
        self.weights = weights_id(pretrained, seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            # open_clip logs a warning for a random init, which here is deliberate.
            level = logging.getLogger().level
            logging.getLogger().setLevel(logging.ERROR)
            try:
                with _weights_for_open_clip(pretrained, tags) as weights:
                    model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=weights)
            except EcmaError:
                raise
            except Exception as e:  # one line: torch's and open_clip's messages run to many
                reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
                raise EcmaError(f"{pretrained or model_name}: cannot build visual encoder {model_name} ({reason})") from None
            finally:
                logging.getLogger().setLevel(level)
        self.model_name = model_name
        self.tower = model.visual.eval().to(device)  # only the image tower is needed
        del model
        self.tower.requires_grad_(False)
        self.preprocess: Callable = preprocess  # open_clip's own, described in the fingerprint
        self.transform = ImageTransform.from_open_clip(self.tower)  # the same steps, torch-free in the workers
        _check_transform(self.transform, preprocess, model_name)
        self.image_size = self.transform.size
        self.device = device
        # bf16 weights, not autocast: under autocast nn.MultiheadAttention leaves its fused path, and on
        # the CPU the tower then spends a third of its time copying (ViT-B-32: 2.1 s per 80 frames in bf16,
        # 3.6 s under autocast, 4.6 s in float32 on two Zen 4 cores).
        self.amp = amp_dtype(device, amp)
        if self.amp is not None:
            self.tower.to(self.amp)
        self.batch_size = batch_size
        self.dim = int(self.tower.output_dim)

    def describe_preprocess(self) -> str:
        return " | ".join(repr(t).replace("\n", " ") for t in getattr(self.preprocess, "transforms", [self.preprocess]))

    @torch.inference_mode()
    def encode(self, images) -> np.ndarray:
        """(N, S, S, 3) uint8 cropped frames (``transform.crop``) -> (N, D) float32 embeddings (after the
        CLIP projection)."""
        images = torch.as_tensor(images)
        out = []
        for i in range(0, len(images), self.batch_size):
            x = self.transform.normalize(images[i : i + self.batch_size].to(self.device, non_blocking=True))
            out.append(self.tower(x.to(self.amp or torch.float32)).float().cpu())
        if not out:
            return np.zeros((0, self.dim), np.float32)
        return torch.cat(out).numpy()


@contextlib.contextmanager
def _weights_for_open_clip(pretrained: Optional[str], tags: list[str]) -> Iterator[Optional[str]]:
    """What to hand open_clip as ``pretrained``, a local file checked first as open_clip will read it.

    open_clip takes a tag before a file of that name, and reads a file by its suffix
    (``open_clip.factory.load_checkpoint``): ``.safetensors`` and ``.npz``/``.npy`` (``np.load`` without
    pickles) hold data only; anything else goes to ``torch.load(weights_only=True)``, whose refusal of a
    pickled object is many lines of torch's text: here it is one line naming the file, and its code never
    runs. A safetensors file under another name (what open_clip downloads for a tag from the HF hub, which
    ``ecma fetch-weights`` keeps as ``NAME.pt``) goes through a link named ``.safetensors``: torch.load
    cannot read it.
    """
    if pretrained is None or pretrained in tags:
        yield pretrained
    elif os.path.splitext(pretrained)[1] in (".safetensors", ".npz", ".npy"):
        yield pretrained
    elif is_safetensors(pretrained):
        with tempfile.TemporaryDirectory(prefix="ecma-weights-") as folder:
            link = Path(folder) / f"{Path(pretrained).stem}.safetensors"
            link.symlink_to(Path(pretrained).resolve())
            yield str(link)
    else:
        check_torch_file(pretrained, "visual checkpoint")
        yield pretrained


def _check_transform(transform: ImageTransform, preprocess: Callable, model_name: str) -> None:
    """The torch-free transform must give open_clip's pixels; check on a probe frame (milliseconds)."""
    from PIL import Image

    frame = np.random.default_rng(0).integers(0, 256, (37, 61, 3), dtype=np.uint8)
    want = preprocess(Image.fromarray(frame)).numpy()
    got = transform.normalize(torch.from_numpy(transform.crop(frame[None])))[0].numpy()
    if want.shape != got.shape or np.abs(want - got).max() > 1e-4:
        raise EcmaError(f"extract: the image preprocessing of {model_name} is not supported ({transform})")
