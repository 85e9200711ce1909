"""A config's backbone and network, through the registry (:mod:`ecma.registry`): training, the teacher,
prediction, checkpoint loading and import all build them here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from ecma import registry
from ecma.models.contracts import Backbone

if TYPE_CHECKING:
    from ecma.config import EcmaConfig


def backbone_class(name: str) -> type[Backbone]:
    """The registered backbone of that name (an EcmaError names the known ones otherwise)."""
    return registry.backbone_spec(name).backbone_class()


def build_network(cfg: EcmaConfig) -> nn.Module:
    """The configured backbone's network (model.backbone)."""
    return backbone_class(cfg.model.backbone).network(cfg)
