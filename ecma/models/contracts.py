"""The contracts between the backbones and the rest: what a batch is, what a network's forward gives, and the
interface every backbone gives the trainer, the EMA teacher, the pseudo masks, CMA and prediction.

A backbone owns its network (``net``, the student; the EMA teacher is a copy of it), its own loss terms,
optimisers and schedulers (CoLeaF's auxiliary networks and their Adams among them), and how one batch
trains. Its network's forward(audio, visual, visual_3d, mask=None) returns an output with at least the fields of
:class:`ModelOutput`:
  video_prob (B, C), a_prob / v_prob (B, C) modality-level, segment_prob (B, T, 2, C) (audio_prob /
  visual_prob (B, T, C) are its two halves), audio_emb / visual_emb (B, T, d) the encoder's segment embeddings,
in training mode the training pass and in eval mode the inference pass, and ``mask`` (B, T) or None. With a
mask (variable-length videos), padded segments are keys of no attention, weigh nothing in any pooling or mean
over time, and their segment outputs (probabilities, embeddings) are 0: a video's numbers do not depend on
how far its batch is padded. E-CMA's additions (pseudo masks from
the teacher's ``segment_prob``, L_pseudo on the student's, L_CMA on the embeddings) need nothing more, so they
apply to any backbone through ``train_step``'s ``extra_loss``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

import torch
from torch import nn

if TYPE_CHECKING:
    from ecma.config import EcmaConfig


@dataclass
class ModelOutput:
    """What every backbone's forward gives (CoLeaF's output has these fields and more): modality-level
    ``a_prob``/``v_prob`` (B, C), segment-level ``audio_prob``/``visual_prob`` (B, T, C)."""

    video_prob: torch.Tensor  # (B, C)
    a_prob: torch.Tensor  # (B, C) audio modality-level (video-level) probability
    v_prob: torch.Tensor  # (B, C)
    segment_prob: torch.Tensor  # (B, T, 2, C): [..., 0, :] audio, [..., 1, :] visual
    audio_emb: torch.Tensor  # (B, T, d_model) encoder output, the space L_CMA aligns
    visual_emb: torch.Tensor  # (B, T, d_model)
    mask: Optional[torch.Tensor] = None  # (B, T) bool, True on real segments; None: all real

    @property
    def audio_prob(self) -> torch.Tensor:  # (B, T, C) segment-level
        return self.segment_prob[:, :, 0]

    @property
    def visual_prob(self) -> torch.Tensor:  # (B, T, C)
        return self.segment_prob[:, :, 1]


@dataclass
class Batch:
    audio: torch.Tensor  # (B, T, Da)
    visual: torch.Tensor  # (B, T * k, Dv)
    visual_3d: Optional[torch.Tensor]  # (B, T, D3) or None
    labels: torch.Tensor  # (B, C) weak labels
    # (B, T) bool, True on a video's real segments, False on the zero padding of shorter videos
    # (ecma.data.batching); None: every segment is real (equal-length data such as LLP: the unmasked fast path).
    mask: Optional[torch.Tensor] = None


# What E-CMA adds to a backbone's loss: the student's output and the batch in, named unweighted terms and
# their weighted sum out.
ExtraLoss = Callable[[object], tuple[torch.Tensor, dict[str, torch.Tensor]]]


class Backbone:
    """Base of the backbones; subclasses set ``name``, ``loss_terms`` and implement the methods below."""

    name: str = ""
    loss_terms: tuple[str, ...] = ()  # the backbone's own terms, as train_step names them
    net: nn.Module

    @classmethod
    def network(cls, cfg: EcmaConfig) -> nn.Module:
        """The network alone (what model.pt holds): for prediction, import and the teacher."""
        raise NotImplementedError

    @classmethod
    def build(cls, cfg: EcmaConfig, *, steps_per_epoch: int, device: torch.device, precision: Optional[torch.dtype]) -> "Backbone":
        """Network, extra modules, optimisers and schedulers for training on ``device`` (seeded by the
        caller); forward passes run under autocast to ``precision`` (None: float32)."""
        raise NotImplementedError

    def train_step(self, batch: Batch, *, epoch: int, step: int, extra_loss: Optional[ExtraLoss] = None) -> dict[str, torch.Tensor]:
        """Train on one batch (``epoch`` 0-based, ``step`` the batch index within it): the backbone's loss
        plus ``extra_loss``'s, backward, every optimiser's step. Returns detached terms: the backbone's own
        (``loss_terms``), 'backbone' (their weighted sum), the extra terms, and 'total'."""
        raise NotImplementedError

    def end_epoch(self) -> None:
        """Step the schedulers."""
        raise NotImplementedError

    @property
    def lr(self) -> float:
        raise NotImplementedError

    def training_state(self) -> dict:
        """Everything beyond ``net``'s weights that an exact resume needs (tensors and plain values only)."""
        raise NotImplementedError

    def load_training_state(self, state: dict) -> None:
        raise NotImplementedError


def finish_step(loss: torch.Tensor, terms: dict[str, torch.Tensor], extra: Optional[tuple[torch.Tensor, dict]]) -> tuple[torch.Tensor, dict]:
    """total = backbone's loss + extra's; the named terms detached, for the history."""
    named = {k: v.detach() for k, v in terms.items()}
    named["backbone"] = loss.detach()
    total = loss
    if extra is not None:
        extra_total, extra_terms = extra
        total = total + extra_total
        named.update({k: v.detach() for k, v in extra_terms.items()})
    named["total"] = total.detach()
    return total, named
