"""The backbones: the interface (``backbone``), HAN (``han``, shared pieces in ``layers``) and CoLeaF (its
networks, losses, training step, config view, checkpoint import and ``coleaf_backbone``)."""

from ecma.models.coleaf import AudioOnlyNet, CoLeaFNet, CoLeaFOutput, UnimodalOutput, VisualOnlyNet
from ecma.models.coleaf_config import CoLeaFConfig, CoLeaFModelConfig

__all__ = ["AudioOnlyNet", "CoLeaFConfig", "CoLeaFModelConfig", "CoLeaFNet", "CoLeaFOutput", "UnimodalOutput", "VisualOnlyNet"]
