"""Weights saved by CoLeaF's own code, mapped into :class:`~ecma.models.coleaf.network.CoLeaFNet`, and written as
an ecma checkpoint (``ecma import-checkpoint --format coleaf``).

CoLeaF's ``main.py`` saves ``{'model': MMIL_Net.state_dict(), 'optimizer': ..., ...}``. Its main network's
parameters map one to one onto ours (names below); a few of its parameters take no part in its forward pass
(``fc_global``, the encoder's ``norm1``/``norm2`` with ``norm=None``, each layer's ``cls_tokens_a``/``_v``)
and are dropped. A missing parameter, one of the wrong shape, or one this mapping does not know is an
:class:`~ecma.errors.EcmaError` naming it.
"""

from __future__ import annotations

import re
from typing import Mapping

import torch

import os

from ecma.config import ModelConfig, config_from_dict, load_config
from ecma.data.classes import LLP_CLASSES
from ecma.errors import EcmaError
from ecma.models.checkpoint import save_checkpoint
from ecma.models.coleaf.network import AudioOnlyNet, CoLeaFNet, VisualOnlyNet
from ecma.safe_load import safe_torch_load

# CoLeaF's module names -> ours (prefixes; the parameter's own name, weight/bias/..., follows unchanged).
_MODULES = {
    "fc_a.0": "audio_input.0",
    "fc_v.0": "visual_input.frame_proj.0",
    "fc_st.0": "visual_input.clip_proj.0",
    "fc_fusion.0": "visual_input.fusion.0",
    "classifier1.0": "global_branch.embed.0",
    "classifier2": "global_branch.classifier",
    "fc_prob": "head.own",
    "fc_prob_beta": "head.interaction",
    "v2a.0": "head.to_audio.0",
    "a2v.0": "head.to_visual.0",
    "fc_frame_att": "head.attention",  # both lay the output out as (class, channel): index 2c + k
}
_LAYER_MODULES = {
    "self_attn": "self_attn",
    "cm_attn": "cross_attn",
    "linear1": "feed_forward.0",
    "linear2": "feed_forward.3",
    "norm1": "norm_attn",
    "norm2": "norm_ff",
}
# Present in CoLeaF's state dict, unused by its forward pass.
_UNUSED = re.compile(r"^(fc_global\.\d+\.(weight|bias)|hat_encoder\.norm[12]\.(weight|bias)|hat_encoder\.layers\.\d+\.cls_tokens_[av])$")
_LAYER = re.compile(r"^hat_encoder\.layers\.(\d+)\.([a-z_0-9]+)\.(.+)$")


def coleaf_parameter_name(name: str) -> str | None:
    """Our name for one of CoLeaF's parameters; None for the ones its forward pass does not use."""
    if _UNUSED.match(name):
        return None
    layer = _LAYER.match(name)
    if layer and layer.group(2) in _LAYER_MODULES:
        return f"encoder.layers.{layer.group(1)}.{_LAYER_MODULES[layer.group(2)]}.{layer.group(3)}"
    module, _, leaf = name.rpartition(".")
    if module in _MODULES:
        return f"{_MODULES[module]}.{leaf}"
    raise EcmaError(f"CoLeaF checkpoint: parameter {name!r} is not one of CoLeaF's main network (MMIL_Net)")


def import_coleaf_state_dict(state_dict: Mapping[str, torch.Tensor], model_config: ModelConfig) -> dict[str, torch.Tensor]:
    """Our state dict for ``CoLeaFNet(model_config)`` from CoLeaF's; also accepts main.py's saved dict (its
    'model' entry) and names prefixed by DataParallel's 'module.'."""
    if "model" in state_dict and isinstance(state_dict["model"], Mapping):
        state_dict = state_dict["model"]
    expected = CoLeaFNet(model_config).state_dict()
    ours: dict[str, torch.Tensor] = {}
    for name, tensor in state_dict.items():
        name = name.removeprefix("module.")
        target = coleaf_parameter_name(name)
        if target is None:
            continue
        if target not in expected:
            raise EcmaError(f"CoLeaF checkpoint: parameter {name!r} has no place in a model of this config ({_why_absent(target, model_config)})")
        if not isinstance(tensor, torch.Tensor):
            raise EcmaError(f"CoLeaF checkpoint: {name!r} is not a tensor")
        if tuple(tensor.shape) != tuple(expected[target].shape):
            raise EcmaError(
                f"CoLeaF checkpoint: parameter {name!r} has shape {tuple(tensor.shape)}, the model config needs "
                f"{tuple(expected[target].shape)} for {target}"
            )
        ours[target] = tensor.detach().to(expected[target].dtype).clone()
    missing = [k for k in expected if k not in ours]
    if missing:
        reverse = _reference_name(missing[0])
        raise EcmaError(f"CoLeaF checkpoint: parameter {reverse!r} is missing (needed for {missing[0]}; {len(missing)} missing in all)")
    return ours


def _why_absent(target: str, cfg: ModelConfig) -> str:
    if target.startswith(("visual_input.clip_proj", "visual_input.fusion")) and not cfg.visual_3d_dim:
        return "it has a second visual stream and model.visual_3d_dim is unset"
    if target.startswith("encoder.layers."):
        return f"more encoder layers than model.num_layers = {cfg.num_layers}"
    return f"no parameter {target}"


def _reference_name(ours: str) -> str:
    """CoLeaF's name for one of our parameters (for messages)."""
    layer = re.match(r"^encoder\.layers\.(\d+)\.(self_attn|cross_attn|feed_forward\.0|feed_forward\.3|norm_attn|norm_ff)\.(.+)$", ours)
    if layer:
        theirs = {v: k for k, v in _LAYER_MODULES.items()}[layer.group(2)]
        return f"hat_encoder.layers.{layer.group(1)}.{theirs}.{layer.group(3)}"
    module, _, leaf = ours.rpartition(".")
    theirs = {v: k for k, v in _MODULES.items()}.get(module, module)
    return f"{theirs}.{leaf}"


# The auxiliary networks (CoLeaF's Self_Audio_Net / Self_Video_Net). CoLeaF's main.py does not save them;
# this mapping serves runs that do (and the training-step parity bench).
_AUX_MODULES = {
    "fc_prob": "classifier",
    "fc_frame_att": "attention",
    "fc_a": "audio_input.0",
    "fc_v": "visual_input.frame_proj.0",
    "fc_st": "visual_input.clip_proj.0",
    "fc_fusion": "visual_input.fusion.0",
}
# Each Self_HANLayer also builds a cross-attention its forward pass never calls; the encoder's norms are unused.
_AUX_UNUSED = re.compile(r"^(hat_encoder\.layers\.\d+\.cm_attn\..+|hat_encoder\.norm[12]\.(weight|bias))$")


def import_coleaf_aux_state_dict(state_dict: Mapping[str, torch.Tensor], model_config: ModelConfig, modality: str) -> dict[str, torch.Tensor]:
    """Our state dict for ``AudioOnlyNet`` (modality 'audio') or ``VisualOnlyNet`` ('visual') from CoLeaF's
    Self_Audio_Net / Self_Video_Net state dict; mismatches are an EcmaError naming the parameter."""
    if modality not in ("audio", "visual"):
        raise ValueError(f"modality must be 'audio' or 'visual', got {modality!r}")
    expected = (AudioOnlyNet if modality == "audio" else VisualOnlyNet)(model_config).state_dict()
    ours: dict[str, torch.Tensor] = {}
    for name, tensor in state_dict.items():
        name = name.removeprefix("module.")
        if _AUX_UNUSED.match(name):
            continue
        layer = _LAYER.match(name)
        module, _, leaf = name.rpartition(".")
        if name in ("cls_tokens_a", "cls_tokens_v"):
            target = "class_tokens"
        elif layer and layer.group(2) in _LAYER_MODULES and layer.group(2) != "cm_attn":
            target = f"layers.{layer.group(1)}.{_LAYER_MODULES[layer.group(2)]}.{layer.group(3)}"
        elif module in _AUX_MODULES:
            target = f"{_AUX_MODULES[module]}.{leaf}"
        else:
            raise EcmaError(f"CoLeaF {modality} network: parameter {name!r} is not one of its parameters")
        if target not in expected:
            raise EcmaError(f"CoLeaF {modality} network: parameter {name!r} has no place in a model of this config")
        if tuple(tensor.shape) != tuple(expected[target].shape):
            raise EcmaError(f"CoLeaF {modality} network: parameter {name!r} has shape {tuple(tensor.shape)}, "
                            f"the model config needs {tuple(expected[target].shape)}")
        ours[target] = tensor.detach().to(expected[target].dtype).clone()
    missing = [k for k in expected if k not in ours]
    if missing:
        raise EcmaError(f"CoLeaF {modality} network: no parameter for {missing[0]} ({len(missing)} missing in all)")
    return ours


def import_coleaf_checkpoint(reference: str | os.PathLike, output: str | os.PathLike, *, config: str | None = None):
    """Read ``reference`` (weights only), map it into the CoLeaF backbone of ``config``'s model section, write
    ``output``; a parameter that does not fit is an EcmaError naming it and the file. The checkpoint gets the
    config (model.backbone coleaf, variant coleaf), the LLP classes, and an empty feature fingerprint, which
    predict reads as "features of unknown origin"."""
    raw = load_config(config).to_dict()
    raw["model"]["backbone"], raw["train"]["variant"] = "coleaf", "coleaf"
    cfg = config_from_dict(raw, str(config) if config else "config")
    if cfg.model.num_classes != len(LLP_CLASSES):
        raise EcmaError(f"import-checkpoint: model.num_classes is {cfg.model.num_classes}; CoLeaF's models have the {len(LLP_CLASSES)} LLP classes")
    state = safe_torch_load(reference, "CoLeaF checkpoint")
    if not isinstance(state, dict):
        raise EcmaError(f"{reference}: not a state dict (a mapping of parameter names to tensors)")
    try:
        ours = import_coleaf_state_dict(state, cfg.model)
    except EcmaError as e:
        raise EcmaError(f"{reference}: {e}") from None
    CoLeaFNet(cfg.model).load_state_dict(ours, strict=True)  # a last check of the mapping
    save_checkpoint(output, ours, cfg, classes=LLP_CLASSES, fingerprint={}, imported_from={"format": "coleaf", "path": str(reference)})
    return cfg
