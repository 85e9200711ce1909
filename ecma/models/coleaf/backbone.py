"""The CoLeaF backbone: CoLeaF's main network as the student (and, copied, the EMA teacher), its auxiliary
audio-only and visual-only networks with their own Adam and StepLR, and CoLeaF's training step
(:mod:`ecma.models.coleaf.step`), with E-CMA's terms added to the main network's loss."""

from __future__ import annotations

from typing import Optional

import torch

from ecma.config import EcmaConfig
from ecma.device import autocast
from ecma.models.coleaf.losses import load_noise_ratios
from ecma.models.coleaf.network import CoLeaFNet
from ecma.models.coleaf.step import CoLeaFNets, CoLeaFOptimizers, coleaf_train_step
from ecma.models.contracts import Backbone, Batch, ExtraLoss, finish_step

# The main network's terms as coleaf_main_loss names them (CoLeaFLossTerms), then the auxiliary networks' losses.
MAIN_TERMS = ("audio", "visual", "video", "nce", "mutual", "cooccurrence_audio", "cooccurrence_visual",
              "aux_nce_audio", "aux_nce_visual")


class CoLeaFBackbone(Backbone):
    name = "coleaf"
    loss_terms = MAIN_TERMS + ("aux_audio", "aux_visual")

    def __init__(self, cfg: EcmaConfig, steps_per_epoch: int, device: torch.device, precision: Optional[torch.dtype]):
        self.cfg = cfg
        self.steps_per_epoch, self.device, self.precision = steps_per_epoch, device, precision
        self.nets = CoLeaFNets.build(cfg.model)
        for net in (self.nets.main, self.nets.audio_only, self.nets.visual_only):
            net.to(device)
        self.net = self.nets.main
        self.optimizers = CoLeaFOptimizers.adam(self.nets, cfg.train)
        self.schedulers = self.optimizers.step_lr(cfg.train)
        lc = cfg.coleaf
        self.noise_ratios = None
        if lc.denoise and lc.noise_ratios:
            self.noise_ratios = tuple(r.to(device) for r in load_noise_ratios(lc.noise_ratios, cfg.model.num_classes))

    @classmethod
    def network(cls, cfg: EcmaConfig) -> CoLeaFNet:
        return CoLeaFNet(cfg.model)

    @classmethod
    def build(cls, cfg: EcmaConfig, *, steps_per_epoch: int, device: torch.device, precision: Optional[torch.dtype]) -> "CoLeaFBackbone":
        return cls(cfg, steps_per_epoch, device, precision)

    def train_step(self, batch: Batch, *, epoch: int, step: int, extra_loss: Optional[ExtraLoss] = None) -> dict[str, torch.Tensor]:
        self.nets.train()
        captured: dict = {}

        def main_extra(out) -> torch.Tensor:  # E-CMA's terms, on the main network's training pass
            captured["extra"] = extra_loss(out)
            return captured["extra"][0]

        with autocast(self.device, self.precision):
            result = coleaf_train_step(
                self.nets, self.optimizers, batch.audio, batch.visual, batch.visual_3d, batch.labels, self.cfg,
                epoch=epoch, step=step, steps_per_epoch=self.steps_per_epoch, noise_ratios=self.noise_ratios,
                extra_loss=main_extra if extra_loss else None, clip_grad=self.cfg.train.grad_clip, mask=batch.mask,
            )
        terms = {name: getattr(result.main, name) for name in MAIN_TERMS}
        terms.update(aux_audio=result.aux_audio, aux_visual=result.aux_visual)
        return finish_step(result.main.total, terms, captured.get("extra"))[1]

    def end_epoch(self) -> None:
        for scheduler in self.schedulers:
            scheduler.step()

    @property
    def lr(self) -> float:
        return self.optimizers.main.param_groups[0]["lr"]

    def training_state(self) -> dict:
        o = self.optimizers
        return {
            "audio_only": self.nets.audio_only.state_dict(), "visual_only": self.nets.visual_only.state_dict(),
            "optimizers": [o.main.state_dict(), o.audio_only.state_dict(), o.visual_only.state_dict()],
            "schedulers": [s.state_dict() for s in self.schedulers],
        }

    def load_training_state(self, state: dict) -> None:
        self.nets.audio_only.load_state_dict(state["audio_only"])
        self.nets.visual_only.load_state_dict(state["visual_only"])
        o = self.optimizers
        for optimizer, saved in zip((o.main, o.audio_only, o.visual_only), state["optimizers"]):
            optimizer.load_state_dict(saved)
        for scheduler, saved in zip(self.schedulers, state["schedulers"]):
            scheduler.load_state_dict(saved)
