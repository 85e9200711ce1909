"""Model checkpoints: weights plus everything needed to rebuild and to check them. Training writes them,
prediction, parsing and checkpoint import read or write them; all reach them here, beside the networks.

A checkpoint holds the model config, the class list, the feature fingerprint it was trained on, and the
package version, so that ``ecma predict`` refuses a checkpoint whose architecture does not match it or
whose features came from another extractor, with a message naming the file.

Checkpoints are shared and downloaded, so loading one must never run code: they hold only tensors and
plain Python values (numbers, strings, lists, dicts) and are read with ``torch.load(weights_only=True)``,
which refuses any pickled object; such a file is an error naming it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecma import __version__
from ecma.config import EcmaConfig, config_from_dict
from ecma.errors import EcmaError
from ecma.io import atomic_path
from ecma.models.factory import build_network
from ecma.safe_load import safe_torch_load

FORMAT = "ecma-checkpoint/1"


def plain(obj: Any) -> Any:
    """``obj`` with numpy scalars and arrays turned into Python numbers and tensors (what safe loading reads)."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    return obj


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module | dict, cfg: EcmaConfig, *, classes,
                    fingerprint: dict, **extra: Any) -> None:
    """Write a checkpoint of ``model`` (a module, or a state dict already on the CPU), atomically."""
    state = model.state_dict() if isinstance(model, torch.nn.Module) else model
    payload = {
        "format": FORMAT,
        "ecma_version": __version__,
        "config": cfg.to_dict(),
        "classes": list(classes),
        "fingerprint": fingerprint,
        "state_dict": {k: v.detach().cpu() for k, v in state.items()},
        **plain(extra),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_checkpoint(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise EcmaError(f"{path}: checkpoint not found")
    payload = safe_torch_load(path, "checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise EcmaError(f"{path}: not an ecma checkpoint (expected format {FORMAT})")
    missing = [k for k in ("config", "classes", "fingerprint", "state_dict") if k not in payload]
    if missing:
        raise EcmaError(f"{path}: the checkpoint lacks {', '.join(missing)} (truncated or not written by ecma train)")
    return payload


# Checkpoints written before backbones existed hold a HAN and name its variants without the han_ prefix.
_HAN_ERA_VARIANTS = {"ecma": "han_ecma", "no_ema": "han_no_ema", "no_cma": "han_no_cma", "han": "han"}


def stored_config(payload: dict, path) -> EcmaConfig:
    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in payload["config"].items()}
    if "backbone" not in raw.get("model", {}):
        raw.setdefault("model", {})["backbone"] = "han"
        train = raw.setdefault("train", {})
        train["variant"] = _HAN_ERA_VARIANTS.get(train.get("variant", "ecma"), train.get("variant"))
    return config_from_dict(raw, f"{path} (stored config)")


def load_model(path: str | os.PathLike) -> tuple[torch.nn.Module, EcmaConfig, dict]:
    """Rebuild the model of a checkpoint; a config or weights that do not fit are an error naming the file."""
    payload = read_checkpoint(path)
    cfg = stored_config(payload, path)
    model = build_network(cfg)
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise EcmaError(f"{path}: weights do not fit the architecture of its config ({first[:200]})") from None
    if len(payload["classes"]) != cfg.model.num_classes:
        raise EcmaError(f"{path}: {len(payload['classes'])} classes but the model has {cfg.model.num_classes} outputs")
    return model.eval(), cfg, payload
