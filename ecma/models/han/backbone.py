"""The HAN backbone's training: L_AVVP (:mod:`ecma.models.han.losses`), one Adam with StepLR, and E-CMA's terms
added to the loss through the backbone interface (:class:`ecma.models.contracts.Backbone`)."""

from __future__ import annotations

from typing import Optional

import torch

from ecma.config import EcmaConfig
from ecma.device import autocast
from ecma.models.contracts import Backbone, Batch, ExtraLoss, finish_step
from ecma.models.han.losses import avvp_loss
from ecma.models.han.network import HANNet


class HANBackbone(Backbone):
    """HAN + MMIL head, trained with L_AVVP (BCE of the video- and modality-level probabilities), one Adam
    with StepLR, and the gradient clipped to train.grad_clip."""

    name = "han"
    loss_terms = ("avvp",)

    def __init__(self, net: HANNet, cfg: EcmaConfig, device: torch.device, precision: Optional[torch.dtype]):
        tc = cfg.train
        self.cfg, self.net, self.device, self.precision = cfg, net, device, precision
        # foreach: one fused call per update step over all parameters (torch picks it on CUDA only by default).
        self.optimizer = torch.optim.Adam(net.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, foreach=True)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=tc.lr_step_epochs, gamma=tc.lr_gamma)

    @classmethod
    def network(cls, cfg: EcmaConfig) -> HANNet:
        return HANNet(cfg.model)

    @classmethod
    def build(cls, cfg: EcmaConfig, *, steps_per_epoch: int, device: torch.device, precision: Optional[torch.dtype]) -> "HANBackbone":
        return cls(HANNet(cfg.model).to(device), cfg, device, precision)

    def train_step(self, batch: Batch, *, epoch: int, step: int, extra_loss: Optional[ExtraLoss] = None) -> dict[str, torch.Tensor]:
        lc = self.cfg.loss
        with autocast(self.device, self.precision):
            out = self.net(batch.audio, batch.visual, batch.visual_3d, batch.mask)
        avvp = avvp_loss(out, batch.labels, lc.audio_smoothing, lc.visual_smoothing)
        total, terms = finish_step(lc.w_avvp * avvp, {"avvp": avvp}, extra_loss(out) if extra_loss else None)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.cfg.train.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.train.grad_clip)
        self.optimizer.step()
        return terms

    def end_epoch(self) -> None:
        self.scheduler.step()

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def training_state(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_training_state(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
