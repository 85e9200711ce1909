"""``ecma import-checkpoint``: another code's saved weights written as an ecma checkpoint.

Only CoLeaF's format for now: its main network's state dict (or main.py's saved dict holding it), mapped by
:mod:`ecma.models.coleaf_import`. The checkpoint gets the config (model.backbone coleaf, variant coleaf), the
LLP classes, and an empty feature fingerprint, which predict reads as "features of unknown origin".
"""

from __future__ import annotations

import os

from ecma.config import EcmaConfig, config_from_dict, load_config
from ecma.data.classes import LLP_CLASSES
from ecma.errors import EcmaError
from ecma.models.coleaf import CoLeaFNet
from ecma.models.coleaf_config import CoLeaFModelConfig
from ecma.models.coleaf_import import import_coleaf_state_dict
from ecma.safe_load import safe_torch_load
from ecma.training.checkpoint import save_checkpoint

FORMATS = ("coleaf",)


def import_checkpoint(fmt: str, reference: str | os.PathLike, output: str | os.PathLike, *, config: str | None = None) -> EcmaConfig:
    """Read ``reference`` (weights only), map it into the CoLeaF backbone of ``config``'s model section, write
    ``output``; a parameter that does not fit is an EcmaError naming it and the file."""
    if fmt not in FORMATS:
        raise EcmaError(f"unknown checkpoint format {fmt!r} ({', '.join(FORMATS)})")
    raw = load_config(config).to_dict()
    raw["model"]["backbone"], raw["train"]["variant"] = "coleaf", "coleaf"
    cfg = config_from_dict(raw, str(config) if config else "config")
    if cfg.model.num_classes != len(LLP_CLASSES):
        raise EcmaError(f"import-checkpoint: model.num_classes is {cfg.model.num_classes}; CoLeaF's models have the {len(LLP_CLASSES)} LLP classes")
    state = safe_torch_load(reference, "CoLeaF checkpoint")
    if not isinstance(state, dict):
        raise EcmaError(f"{reference}: not a state dict (a mapping of parameter names to tensors)")
    try:
        ours = import_coleaf_state_dict(state, CoLeaFModelConfig.from_config(cfg.model))
    except EcmaError as e:
        raise EcmaError(f"{reference}: {e}") from None
    CoLeaFNet(CoLeaFModelConfig.from_config(cfg.model)).load_state_dict(ours, strict=True)  # a last check of the mapping
    save_checkpoint(output, ours, cfg, classes=LLP_CLASSES, fingerprint={}, imported_from={"format": fmt, "path": str(reference)})
    return cfg
