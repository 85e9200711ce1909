"""Model checkpoints: weights plus everything needed to rebuild and to check them.

A checkpoint holds the model config, the class list, the feature fingerprint it was trained on, and the
package version, so that ``ecma predict`` refuses a checkpoint whose architecture does not match it or
whose features came from another extractor, with a message naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ecma import __version__
from ecma.config import EcmaConfig, config_from_dict
from ecma.errors import EcmaError
from ecma.io import atomic_path
from ecma.model import ECMANet

FORMAT = "ecma-checkpoint/1"


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, cfg: EcmaConfig, *, classes, fingerprint: dict, **extra: Any) -> None:
    payload = {
        "format": FORMAT,
        "ecma_version": __version__,
        "config": cfg.to_dict(),
        "classes": list(classes),
        "fingerprint": fingerprint,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_checkpoint(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise EcmaError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for a file that is not a checkpoint
        raise EcmaError(f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise EcmaError(f"{path}: not an ecma checkpoint (expected format {FORMAT})")
    return payload


def load_model(path: str | os.PathLike) -> tuple[ECMANet, EcmaConfig, dict]:
    """Rebuild the model of a checkpoint; a config or weights that do not fit are an error naming the file."""
    payload = read_checkpoint(path)
    cfg = config_from_dict(payload["config"], f"{path} (stored config)")
    model = ECMANet(cfg.model)
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise EcmaError(f"{path}: weights do not fit the architecture of its config ({first[:200]})") from None
    if len(payload["classes"]) != cfg.model.num_classes:
        raise EcmaError(f"{path}: {len(payload['classes'])} classes but the model has {cfg.model.num_classes} outputs")
    return model.eval(), cfg, payload
