"""One CoLeaF training step: label denoising, the auxiliary networks' steps, then the main network's step.

The trainer owns the loop, the data and the checkpoints; this module owns what happens to one batch, so
that a trainer (E-CMA's, with its teacher and extra terms, or a plain CoLeaF run) can call it. The order is
CoLeaF's ``main.py train()``:
  1. targets P^a, P^v = smoothed y, denoised (JoMoLD) with the warmed noise ratios, from a pass of the main
     network without cross-attention (training mode, no gradient; its input stage, which has no dropout, is
     the training pass's, computed once);
  2. the main network's training ('mixed') pass, with gradient;
  3. each auxiliary network: its loss against P^m (and, after its warm-up, against the main network's
     binarised p^m), backward, its own optimiser's step;
  4. the auxiliary networks again, without gradient, after their step;
  5. the main network's loss, with ``extra_loss`` (E-CMA's terms) added, backward, its optimiser's step.
Reading taken: CoLeaF takes the main network's p^m for step 3 from a separate no-gradient pass before the
auxiliary steps; here it comes from the training pass of step 2 (detached). The main network's weights are
the same in both, so the two differ only by dropout noise, and a forward pass is saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

import torch

from ecma.config import ModelConfig, TrainConfig
from ecma.models.coleaf.losses import (
    CoLeaFLossTerms, aux_audio_loss, aux_visual_loss, coleaf_main_loss, denoise_modality_labels, warmed_noise_ratios,
)
from ecma.models.coleaf.network import AudioOnlyNet, CoLeaFInputs, CoLeaFNet, CoLeaFOutput, VisualOnlyNet
from ecma.models.layers import smooth_labels

if TYPE_CHECKING:
    from ecma.config import EcmaConfig


@dataclass
class CoLeaFNets:
    main: CoLeaFNet
    audio_only: AudioOnlyNet
    visual_only: VisualOnlyNet

    @classmethod
    def build(cls, model: ModelConfig) -> "CoLeaFNets":
        return cls(CoLeaFNet(model), AudioOnlyNet(model), VisualOnlyNet(model))

    def train(self) -> None:
        for net in (self.main, self.audio_only, self.visual_only):
            net.train()


@dataclass
class CoLeaFOptimizers:
    main: torch.optim.Optimizer
    audio_only: torch.optim.Optimizer
    visual_only: torch.optim.Optimizer

    @classmethod
    def adam(cls, nets: CoLeaFNets, cfg: TrainConfig) -> "CoLeaFOptimizers":
        """Each network its own Adam, as CoLeaF trains them (lr 5e-4, no weight decay)."""
        def adam(net: torch.nn.Module) -> torch.optim.Optimizer:
            return torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)  # one fused call per op
        return cls(adam(nets.main), adam(nets.audio_only), adam(nets.visual_only))

    def step_lr(self, cfg: TrainConfig) -> list[torch.optim.lr_scheduler.StepLR]:
        """One StepLR(lr_step_epochs, lr_gamma) per optimiser, stepped once per epoch."""
        return [torch.optim.lr_scheduler.StepLR(o, cfg.lr_step_epochs, cfg.lr_gamma)
                for o in (self.main, self.audio_only, self.visual_only)]


@dataclass
class CoLeaFStepResult:
    main: CoLeaFLossTerms
    aux_audio: torch.Tensor
    aux_visual: torch.Tensor
    audio_target: torch.Tensor  # P^a after denoising
    visual_target: torch.Tensor
    output: CoLeaFOutput  # the main network's training pass (before its update)


def coleaf_targets(nets: CoLeaFNets, inputs: CoLeaFInputs, y: torch.Tensor, cfg: EcmaConfig, *, epoch: int,
                   step: int, steps_per_epoch: int, noise_ratios: Optional[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """P^a, P^v for a batch: smoothed labels (section ``loss``), denoised when ``noise_ratios`` is given and
    coleaf.denoise. ``inputs``: the main network's embedded inputs of the batch (``CoLeaFNet.embed_inputs``)."""
    lc = cfg.coleaf
    pa, pv = smooth_labels(y, cfg.loss.audio_smoothing), smooth_labels(y, cfg.loss.visual_smoothing)
    if not (lc.denoise and noise_ratios is not None):
        return pa, pv
    ra, rv = (warmed_noise_ratios(r, epoch, step, steps_per_epoch, lc.denoise_warmup_epochs) for r in noise_ratios)
    if float(ra.max()) == 0.0 and float(rv.max()) == 0.0:
        return pa, pv  # nothing to remove (the first epoch under CoLeaF's warm-up): skip the pass
    with torch.no_grad():
        off = nets.main.from_inputs(inputs.detach(), passes="off")
    return denoise_modality_labels(off.a_prob, off.v_prob, pa, pv, ra, rv, lc.clamp)


def coleaf_train_step(
    nets: CoLeaFNets, optimizers: CoLeaFOptimizers, audio: torch.Tensor, visual: torch.Tensor,
    visual_3d: Optional[torch.Tensor], y: torch.Tensor, cfg: EcmaConfig, *, epoch: int, step: int,
    steps_per_epoch: int, noise_ratios: Optional[tuple[torch.Tensor, torch.Tensor]],
    extra_loss: Optional[Callable[[CoLeaFOutput], torch.Tensor]] = None,
    clip_grad: Optional[float] = None, mask: Optional[torch.Tensor] = None,
) -> CoLeaFStepResult:
    """Steps 1-5 of the module docstring on one batch; ``epoch`` 0-based, ``step`` the batch index in it;
    ``mask`` (B, T) bool, True on real segments (None: all are), for every network."""
    lc = cfg.coleaf
    # The input stage has no dropout: computed once, it serves the denoising pass (detached) and the training pass.
    inputs = nets.main.embed_inputs(audio, visual, visual_3d, mask)
    pa, pv = coleaf_targets(nets, inputs, y, cfg, epoch=epoch, step=step, steps_per_epoch=steps_per_epoch,
                            noise_ratios=noise_ratios)
    out = nets.main.from_inputs(inputs, passes="mixed")

    optimizers.audio_only.zero_grad(set_to_none=True)
    loss_a = aux_audio_loss(nets.audio_only(audio, mask), pa, out.a_prob.detach(), epoch, lc)
    loss_a.backward()
    optimizers.audio_only.step()
    optimizers.visual_only.zero_grad(set_to_none=True)
    loss_v = aux_visual_loss(nets.visual_only(visual, visual_3d, mask), pv, out.v_prob.detach(), epoch, lc)
    loss_v.backward()
    optimizers.visual_only.step()

    with torch.no_grad():
        aux_a, aux_v = nets.audio_only(audio, mask), nets.visual_only(visual, visual_3d, mask)
    terms = coleaf_main_loss(out, y, pa, pv, aux_a, aux_v, lc, epoch=epoch, step=step)
    total = terms.total + (extra_loss(out) if extra_loss is not None else 0.0)
    optimizers.main.zero_grad(set_to_none=True)
    total.backward()
    if clip_grad:
        torch.nn.utils.clip_grad_norm_(nets.main.parameters(), clip_grad)
    optimizers.main.step()
    return CoLeaFStepResult(terms, loss_a.detach(), loss_v.detach(), pa, pv, out)
