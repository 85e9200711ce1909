"""Backbones beside E-CMA's HAN (``ecma.model``): CoLeaF's networks, losses, config and checkpoint import."""

from ecma.models.coleaf import AudioOnlyNet, CoLeaFNet, CoLeaFOutput, UnimodalOutput, VisualOnlyNet
from ecma.models.coleaf_config import CoLeaFConfig, CoLeaFModelConfig

__all__ = ["AudioOnlyNet", "CoLeaFConfig", "CoLeaFModelConfig", "CoLeaFNet", "CoLeaFOutput", "UnimodalOutput", "VisualOnlyNet"]
