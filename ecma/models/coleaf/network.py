"""CoLeaF's networks (Sardari et al., ECCV 2024): the main (anchor) network and the auxiliary unimodal ones.

Main network, for audio (B, T, Da), a visual stream per frame (B, T*k, Dv) or (B, T, k, Dv), and an
optional per-segment second visual stream (B, T, D3):
  input      a = ELU(W_a audio); v = mean over each segment's k frames of ELU(W_v visual);
             with a second stream v = ELU(W_f [v ; ELU(W_3 visual_3d)])
  global     g_t = W_g (LReLU(E a_t) + LReLU(E v_t)) (one classifier for both modalities; logits (B, T, C))
             video_prob = mean_t sigmoid(g_t); video_uncertainty = C / sum_c (e(mean_t g_t,c) + 1)
  encoder    HAN layers, run without cross-modal attention (x_off) and with it (x_on)
             training ("mixed"): x = r x_on + (1 - r) x_off, r = train_cross_attention_ratio (0.8)
  heads      per segment, modality m and class c, two evidence logits:
             own  l0 = W_o x_m (the modality's own embedding, visual after dropout)
             interaction l1 = W_i (x_m + LReLU(W_m (x_a + x_v)))
             attentive MMIL pooling: L_m,c,k = sum_t softmax_t(W_att x)_t,m,c,k * l_t,m,c,k
  Dirichlet  alpha_k = e(l_k) + 1, e(l) = exp(clamp(l, -10, 10) / 0.8);
             p = alpha_0 / (alpha_0 + alpha_1), u = 2 / (alpha_0 + alpha_1)
             (segment-level from l, modality-level from L)
  inference  ("fused"): P = f P(mixed) + (1 - f) P(x_off alone), f = fuse_ratio (0.7), for the modality
             and segment probabilities and uncertainties.

The auxiliary networks (CoLeaF's "reference" branch) see one modality: C learnable class tokens are
prepended to its segments, self-attention layers run over them, and give a video-level probability by
attentive MMIL pooling, plus one from the class tokens (sigmoid of their mean feature).

Variable-length videos: every forward takes ``mask`` (B, T) bool, True on real segments (None: all real).
Padded segments are no attention's keys, get no weight in the attentive poolings, are left out of the
global branch's means over time, and their segment probabilities, uncertainties and embeddings are 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ecma.config import ModelConfig
from ecma.models.layers import ELU, Dropout  # each a quarter of torch's CPU cost (git log -p docs/benchmarks.md)

Passes = Literal["mixed", "off", "fused"]


def evidence(logits: torch.Tensor, temperature: float = 0.8, clamp: float = 10.0) -> torch.Tensor:
    """e(l) = exp(clamp(l, -clamp, clamp) / temperature): non-negative evidence from a logit."""
    return torch.exp(logits.clamp(-clamp, clamp) / temperature)


def two_channel_dirichlet(logits: torch.Tensor, temperature: float = 0.8, clamp: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(p, u) of the Dirichlet over (present, absent) whose evidence is e(logits[..., 0]), e(logits[..., 1]).

    alpha = e(l) + 1, S = alpha_0 + alpha_1: p = alpha_0 / S (its expected 'present' probability) and
    u = 2 / S (the subjective-logic uncertainty: K / S with K = 2 outcomes).
    """
    alpha = evidence(logits, temperature, clamp) + 1.0
    strength = alpha.sum(dim=-1)
    return alpha[..., 0] / strength, 2.0 / strength


def class_dirichlet_uncertainty(logits: torch.Tensor, temperature: float = 0.8, clamp: float = 10.0) -> torch.Tensor:
    """u = C / sum_c (e(l_c) + 1): the uncertainty of a Dirichlet over the C classes; logits (..., C)."""
    alpha = evidence(logits, temperature, clamp) + 1.0
    return logits.shape[-1] / alpha.sum(dim=-1)


def projection(d_in: int, d_out: int, activation: bool) -> nn.Sequential:
    """Linear (+ ELU for the main network; CoLeaF's auxiliary networks project without it)."""
    return nn.Sequential(nn.Linear(d_in, d_out), ELU() if activation else nn.Identity())


# frame rows projected at a time without autograd (VisualInput.project_frames): 16 of CoLeaF's 80-frame videos
NO_GRAD_FRAME_ROWS = 1280


def segment_average(x: torch.Tensor, frames_per_segment: int) -> torch.Tensor:
    """(B, T, k, d) or (B, T*k, d) per-frame features -> (B, T, d), each segment the mean of its k frames."""
    if x.dim() == 4:
        return x.mean(dim=2)
    b, n, d = x.shape
    if n % frames_per_segment:
        raise ValueError(f"{n} visual frames are not a whole number of segments of {frames_per_segment} frames")
    return x.view(b, n // frames_per_segment, frames_per_segment, d).mean(dim=2)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, ...) -> (B, ...): the mean over each video's real segments (``mask`` (B, T) bool)."""
    weights = mask.to(x.dtype).view(*mask.shape, *([1] * (x.dim() - 2)))
    return (x * weights).sum(dim=1) / weights.sum(dim=1)


def masked_time_softmax(logits: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Softmax over dim 1 (time) of (B, T, ...) logits, padded segments (``mask`` False) given no weight."""
    if mask is not None:
        logits = logits.masked_fill(~mask.view(*mask.shape, *([1] * (logits.dim() - 2))), float("-inf"))
    return torch.softmax(logits, dim=1)


def zero_padding(x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """(B, T, ...) with the padded segments' entries set to 0."""
    if mask is None:
        return x
    return x.masked_fill(~mask.view(*mask.shape, *([1] * (x.dim() - 2))), 0.0)


class VisualInput(nn.Module):
    """Frame-level visual features projected and averaged to segments, fused with an optional 3-D stream."""

    def __init__(self, visual_dim: int, d_model: int, frames_per_segment: int, visual_3d_dim: Optional[int], activation: bool):
        super().__init__()
        self.frames_per_segment, self.activation = frames_per_segment, activation
        self.frame_proj = projection(visual_dim, d_model, activation)
        self.clip_proj = projection(visual_3d_dim, d_model, activation) if visual_3d_dim else None
        self.fusion = projection(2 * d_model, d_model, activation) if visual_3d_dim else None

    def forward(self, visual: torch.Tensor, visual_3d: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.activation:  # project each frame, then average: the ELU does not commute with the mean
            v = self.project_frames(visual)
        else:  # a linear map does: average first, a k-th of the projection's work (the auxiliary visual network)
            v = self.frame_proj(segment_average(visual, self.frames_per_segment))
        if self.fusion is None:
            if visual_3d is not None:
                raise ValueError("a second visual stream was given to a model configured without one (visual_3d_dim)")
            return v
        if visual_3d is None:
            raise ValueError("this model fuses a second visual stream (visual_3d_dim) but none was given")
        if visual_3d.shape[1] != v.shape[1]:
            raise ValueError(f"visual_3d has {visual_3d.shape[1]} segments, the frame stream {v.shape[1]}")
        return self.fusion(torch.cat([v, self.clip_proj(visual_3d)], dim=-1))

    def project_frames(self, visual: torch.Tensor) -> torch.Tensor:
        """Segment means of the projected frames. Without autograd (inference, the teacher's masks) a few videos
        at a time: the projected frames and the ELU's float32 temporaries then stay in the cache (a tenth less
        time for CoLeaF's 128 x 80 x 2048 frames on two cores), with the same numbers. With autograd the whole
        batch at once: chunks would change how the weight's gradient is rounded."""
        if torch.is_grad_enabled():
            return segment_average(self.frame_proj(visual), self.frames_per_segment)
        videos = max(1, NO_GRAD_FRAME_ROWS // max(1, visual.shape[1]))
        return torch.cat([segment_average(self.frame_proj(chunk), self.frames_per_segment) for chunk in visual.split(videos)])


class CoLeaFEncoderLayer(nn.Module):
    """One HAN layer: self-attention (plus, when given the other modality, cross-attention to it), residual and
    LayerNorm, then a feed-forward block, residual and LayerNorm. Dropout as nn.MultiheadAttention and HAN
    put it: on the attention weights, on each attention's output, inside and after the feed-forward block."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float, cross: bool = True):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} is not divisible by num_heads {num_heads}")
        self.self_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True) if cross else None
        self.feed_forward = nn.Sequential(nn.Linear(d_model, d_ff), nn.ReLU(), Dropout(dropout), nn.Linear(d_ff, d_model))
        self.norm_attn = nn.LayerNorm(d_model)
        self.norm_ff = nn.LayerNorm(d_model)
        self.drop_self = Dropout(dropout)
        self.drop_cross = Dropout(dropout)
        self.drop_ff = Dropout(dropout)

    def forward(self, x: torch.Tensor, other: Optional[torch.Tensor] = None, padding: Optional[torch.Tensor] = None,
                attended_self: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``padding`` (B, T) bool, True on keys to ignore (torch's key_padding_mask), for both attentions.
        ``attended_self``: ``self.self_attention(x, padding)`` when already computed (without dropout, the
        passes with and without cross-attention share it)."""
        if attended_self is None:
            attended_self = self.self_attention(x, padding)
        if other is None:
            x = self.norm_attn(x + attended_self)
        else:
            attended_cross = self.drop_cross(attend(self.cross_attn, x, other, padding))
            x = self.norm_attn(x + attended_cross + attended_self)
        return self.norm_ff(x + self.drop_ff(self.feed_forward(x)))

    def self_attention(self, x: torch.Tensor, padding: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.drop_self(attend(self.self_attn, x, x, padding))

    def forward_shared_prefix(self, prefix: torch.Tensor, x: torch.Tensor, padding: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``forward(cat([prefix] * B, x))`` without cross-attention, for a prefix (P, d) that every video
        shares (the auxiliary networks' class tokens): the prefix's attention projections are computed once
        instead of once per video (25 of the 35 rows of CoLeaF's auxiliary networks). ``padding`` (B, P + T)."""
        h = torch.cat([prefix.expand(len(x), -1, -1), x], dim=1)
        attended = self.drop_self(shared_prefix_self_attention(self.self_attn, prefix, x, padding))
        h = self.norm_attn(h + attended)
        return self.norm_ff(h + self.drop_ff(self.feed_forward(h)))


def attend(attention: nn.MultiheadAttention, query: torch.Tensor, keys: torch.Tensor, padding: Optional[torch.Tensor]) -> torch.Tensor:
    """``attention(query, keys, keys, key_padding_mask=padding)[0]`` for batch-first (B, T, d) tensors.

    Without autograd (inference, the teacher's masks), torch turns the batch-first module's in-projection of
    its transposed inputs into a batched matmul over one copy of the weight per time step; time-first
    contiguous inputs give the same arithmetic as one matrix product."""
    if torch.is_grad_enabled():
        return attention(query, keys, keys, key_padding_mask=padding, need_weights=False)[0]
    q = query.transpose(0, 1).contiguous()
    k = q if keys is query else keys.transpose(0, 1).contiguous()  # the same object: one packed projection
    out = F.multi_head_attention_forward(
        q, k, k, attention.embed_dim, attention.num_heads, attention.in_proj_weight, attention.in_proj_bias,
        attention.bias_k, attention.bias_v, attention.add_zero_attn, attention.dropout, attention.out_proj.weight,
        attention.out_proj.bias, training=attention.training, key_padding_mask=padding, need_weights=False,
    )[0]
    return out.transpose(0, 1)


def shared_prefix_self_attention(attention: nn.MultiheadAttention, prefix: torch.Tensor, x: torch.Tensor,
                                 padding: Optional[torch.Tensor]) -> torch.Tensor:
    """``attention(h, h, h, key_padding_mask=padding)`` for h = cat([prefix] * B, x) (B, P + T, d), with
    nn.MultiheadAttention's arithmetic (packed in-projection, scaled dot product, dropout on the attention
    weights in training, out-projection) and its parameters, the prefix's rows projected once."""
    b, t, d = x.shape
    p, heads = prefix.shape[0], attention.num_heads
    w, bias = attention.in_proj_weight, attention.in_proj_bias
    qkv = torch.cat([F.linear(prefix, w, bias).expand(b, p, 3 * d), F.linear(x, w, bias)], dim=1)
    q, k, v = qkv.view(b, p + t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)  # each (B, heads, P + T, d / heads)
    keep = None if padding is None else ~padding[:, None, None, :]  # SDPA's boolean mask: True takes part
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=attention.dropout if attention.training else 0.0)
    return F.linear(out.transpose(1, 2).reshape(b, p + t, d), attention.out_proj.weight, attention.out_proj.bias)


class CoLeaFEncoder(nn.Module):
    """HAN layers shared by both modalities, both updated from the layer's inputs; cross-attention optional."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.layers = nn.ModuleList(
            CoLeaFEncoderLayer(cfg.d_model, cfg.num_heads, cfg.d_ff, cfg.dropout) for _ in range(cfg.num_layers)
        )

    def forward(self, a: torch.Tensor, v: torch.Tensor, cross_attention: bool,
                mask: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        x, padding = stack_modalities(a, v, mask)
        for layer in self.layers:
            x = layer(x, other_modality(x) if cross_attention else None, padding)
        return x.chunk(2)

    def both_passes(self, a: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor] = None
                    ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """``(forward(a, v, False, mask), forward(a, v, True, mask))``. Without dropout (eval mode) both passes
        see the same first-layer input, so its self-attention is computed once (inference and the teacher's
        masks); in training each pass draws its own dropout, as CoLeaF's two passes do."""
        if self.training:
            return self(a, v, False, mask), self(a, v, True, mask)
        x, padding = stack_modalities(a, v, mask)
        first, rest = self.layers[0], self.layers[1:]
        attended_self = first.self_attention(x, padding)
        off = first(x, None, padding, attended_self)
        on = first(x, other_modality(x), padding, attended_self)
        for layer in rest:
            off = layer(off, None, padding)
            on = layer(on, other_modality(on), padding)
        return off.chunk(2), on.chunk(2)


def stack_modalities(a: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor]) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Both modalities as one batch (2B, T, d), so that a layer's weights serve both in one call, with their
    key padding (2B, T) (True on padded segments) or None."""
    return torch.cat([a, v]), None if mask is None else ~torch.cat([mask, mask])


def other_modality(x: torch.Tensor) -> torch.Tensor:
    """Each row's cross-attention keys in a stacked (2B, T, d) batch: the same video's other modality."""
    n = len(x) // 2
    return torch.cat([x[n:], x[:n]])


class GlobalBranch(nn.Module):
    """One classifier for both modalities' projected features: a video-level probability and its uncertainty."""

    def __init__(self, d_model: int, num_classes: int, leaky_slope: float):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(d_model, d_model), nn.LeakyReLU(leaky_slope))
        self.classifier = nn.Linear(d_model, num_classes)

    def forward(self, a: torch.Tensor, v: torch.Tensor, temperature: float, clamp: float,
                mask: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.classifier(self.embed(a) + self.embed(v))  # (B, T, C)
        if mask is None:
            prob, mean_logits = torch.sigmoid(logits).mean(dim=1), logits.mean(dim=1)
        else:  # means over each video's real segments
            prob, mean_logits = masked_mean(torch.sigmoid(logits), mask), masked_mean(logits, mask)
        return prob, class_dirichlet_uncertainty(mean_logits, temperature, clamp)


class EvidentialHead(nn.Module):
    """Two evidence logits per segment, modality and class (own embedding; audio-visual interaction), pooled
    over time by attention per (modality, class, channel)."""

    def __init__(self, d_model: int, num_classes: int, dropout: float, leaky_slope: float):
        super().__init__()
        self.num_classes = num_classes
        self.own = nn.Linear(d_model, num_classes)
        self.interaction = nn.Linear(d_model, num_classes)
        self.to_audio = nn.Sequential(nn.Linear(d_model, d_model), Dropout(dropout), nn.LeakyReLU(leaky_slope))
        self.to_visual = nn.Sequential(nn.Linear(d_model, d_model), Dropout(dropout), nn.LeakyReLU(leaky_slope))
        self.attention = nn.Linear(d_model, 2 * num_classes)  # output index 2c + k: class c, channel k

    def forward(self, a: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Segment logits (B, T, 2, C, 2) and modality-level pooled logits (B, 2, C, 2)."""
        x = torch.stack([a, v], dim=2)  # (B, T, 2, d)
        b, t = a.shape[:2]
        joint = a + v
        interacting = torch.stack([a + self.to_audio(joint), v + self.to_visual(joint)], dim=2)
        segment_logits = torch.stack([self.own(x), self.interaction(interacting)], dim=-1)
        attention = masked_time_softmax(self.attention(x).view(b, t, 2, self.num_classes, 2), mask)
        return segment_logits, (attention * segment_logits).sum(dim=1)


@dataclass
class CoLeaFOutput:
    """What the main network gives. Names shared with E-CMA's output: video_prob, segment_prob, audio_emb,
    visual_emb; audio_prob/visual_prob are the segment-level probabilities, a_prob/v_prob the modality-level."""

    video_prob: torch.Tensor  # (B, C) the global branch's video-level probability
    video_uncertainty: torch.Tensor  # (B,)
    a_prob: torch.Tensor  # (B, C) modality-level (pooled) probabilities
    v_prob: torch.Tensor  # (B, C)
    a_uncertainty: torch.Tensor  # (B, C)
    v_uncertainty: torch.Tensor  # (B, C)
    segment_prob: torch.Tensor  # (B, T, 2, C): [..., 0, :] audio, [..., 1, :] visual
    segment_uncertainty: torch.Tensor  # (B, T, 2, C)
    audio_emb: torch.Tensor  # (B, T, d_model) encoder output (mixed pass): CMA's and the NCE loss's space
    visual_emb: torch.Tensor  # (B, T, d_model), before the classifier dropout
    mask: Optional[torch.Tensor] = None  # (B, T) bool, True on real segments; None: all real

    @property
    def audio_prob(self) -> torch.Tensor:  # (B, T, C)
        return self.segment_prob[:, :, 0]

    @property
    def visual_prob(self) -> torch.Tensor:  # (B, T, C)
        return self.segment_prob[:, :, 1]


def fuse_outputs(with_ca: CoLeaFOutput, without_ca: CoLeaFOutput, ratio: float) -> CoLeaFOutput:
    """CoLeaF's inference: ratio * (pass with cross-attention) + (1 - ratio) * (pass without), for the
    modality- and segment-level probabilities and uncertainties; the global branch and the embeddings are
    those of the pass with cross-attention (the global branch does not depend on the encoder)."""

    def mix(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x * ratio + y * (1.0 - ratio)

    return CoLeaFOutput(
        with_ca.video_prob, with_ca.video_uncertainty,
        mix(with_ca.a_prob, without_ca.a_prob), mix(with_ca.v_prob, without_ca.v_prob),
        mix(with_ca.a_uncertainty, without_ca.a_uncertainty), mix(with_ca.v_uncertainty, without_ca.v_uncertainty),
        mix(with_ca.segment_prob, without_ca.segment_prob), mix(with_ca.segment_uncertainty, without_ca.segment_uncertainty),
        with_ca.audio_emb, with_ca.visual_emb, with_ca.mask,
    )


@dataclass
class CoLeaFInputs:
    """The main network's projected inputs and its global branch's output, for ``CoLeaFNet.from_inputs``."""

    audio: torch.Tensor  # (B, T, d_model)
    visual: torch.Tensor  # (B, T, d_model), segments (frames averaged, streams fused)
    video_prob: torch.Tensor  # (B, C)
    video_uncertainty: torch.Tensor  # (B,)
    mask: Optional[torch.Tensor] = None  # (B, T) bool, True on real segments; None: all real

    def detach(self) -> "CoLeaFInputs":
        return CoLeaFInputs(self.audio.detach(), self.visual.detach(), self.video_prob.detach(), self.video_uncertainty.detach(),
                            self.mask)


class CoLeaFNet(nn.Module):
    """CoLeaF's main network; E-CMA's student and teacher when the backbone is CoLeaF."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.audio_input = projection(cfg.audio_dim, cfg.d_model, activation=True)
        self.visual_input = VisualInput(cfg.visual_dim, cfg.d_model, cfg.visual_frames_per_segment, cfg.visual_3d_dim or None, activation=True)
        self.global_branch = GlobalBranch(cfg.d_model, cfg.num_classes, cfg.leaky_slope)
        self.encoder = CoLeaFEncoder(cfg)
        self.visual_dropout = Dropout(cfg.classifier_dropout)  # CoLeaF drops the visual embedding only
        self.head = EvidentialHead(cfg.d_model, cfg.num_classes, cfg.interaction_dropout, cfg.leaky_slope)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor, visual_3d: Optional[torch.Tensor] = None,
                mask: Optional[torch.Tensor] = None, *, passes: Optional[Passes] = None) -> CoLeaFOutput:
        """``passes``: 'mixed' (training: one output from r x_on + (1 - r) x_off), 'off' (no cross-attention),
        'fused' (inference: f P(mixed) + (1 - f) P(off)); None: 'mixed' in training, 'fused' in eval mode.
        ``mask`` (B, T) bool, True on real segments (None: all are)."""
        return self.from_inputs(self.embed_inputs(audio, visual, visual_3d, mask), passes=passes)

    def embed_inputs(self, audio: torch.Tensor, visual: torch.Tensor, visual_3d: Optional[torch.Tensor] = None,
                     mask: Optional[torch.Tensor] = None) -> "CoLeaFInputs":
        """The input stage and the global branch: deterministic (no dropout), so one computation can serve
        several passes of a training step (the denoising pass takes it detached)."""
        c = self.cfg
        a = self.audio_input(audio)
        v = self.visual_input(visual, visual_3d)
        if a.shape[1] != v.shape[1]:
            raise ValueError(f"audio has {a.shape[1]} segments, visual {v.shape[1]}")
        # Heads and probabilities in float32 even under autocast: evidence is an exponential of the logits.
        with torch.autocast(a.device.type, enabled=False):
            video_prob, video_uncertainty = self.global_branch(a.float(), v.float(), c.evidence_temperature, c.evidence_clamp, mask)
        return CoLeaFInputs(a, v, video_prob, video_uncertainty, mask)

    def from_inputs(self, inputs: "CoLeaFInputs", *, passes: Optional[Passes] = None) -> CoLeaFOutput:
        """The encoder passes and the heads on embedded inputs (``forward`` = ``from_inputs(embed_inputs())``)."""
        passes = passes or ("mixed" if self.training else "fused")
        if passes not in ("mixed", "off", "fused"):
            raise ValueError(f"passes must be 'mixed', 'off' or 'fused', got {passes!r}")
        c = self.cfg
        a, v, mask, video = inputs.audio, inputs.visual, inputs.mask, (inputs.video_prob, inputs.video_uncertainty)
        if passes == "off":
            return self._heads(*self.encoder(a, v, cross_attention=False, mask=mask), *video, mask)
        (a_off, v_off), (a_on, v_on) = self.encoder.both_passes(a, v, mask)
        r = c.train_cross_attention_ratio
        mixed = self._heads(a_on * r + a_off * (1.0 - r), v_on * r + v_off * (1.0 - r), *video, mask)
        if passes == "mixed":
            return mixed
        return fuse_outputs(mixed, self._heads(a_off, v_off, *video, mask), c.fuse_ratio)

    def _heads(self, a: torch.Tensor, v: torch.Tensor, video_prob: torch.Tensor, video_uncertainty: torch.Tensor,
               mask: Optional[torch.Tensor] = None) -> CoLeaFOutput:
        c = self.cfg
        with torch.autocast(a.device.type, enabled=False):
            a, v = a.float(), v.float()
            segment_logits, modality_logits = self.head(a, self.visual_dropout(v), mask)
            segment_prob, segment_uncertainty = two_channel_dirichlet(segment_logits, c.evidence_temperature, c.evidence_clamp)
            modality_prob, modality_uncertainty = two_channel_dirichlet(modality_logits, c.evidence_temperature, c.evidence_clamp)
        if mask is not None:  # padded segments: no prediction, no embedding
            segment_prob, segment_uncertainty = zero_padding(segment_prob, mask), zero_padding(segment_uncertainty, mask)
            a, v = zero_padding(a, mask), zero_padding(v, mask)
        return CoLeaFOutput(
            video_prob, video_uncertainty,
            modality_prob[:, 0], modality_prob[:, 1], modality_uncertainty[:, 0], modality_uncertainty[:, 1],
            segment_prob, segment_uncertainty, a, v, mask,
        )


@dataclass
class UnimodalOutput:
    prob: torch.Tensor  # (B, C) attentive MMIL pooling of the segment probabilities
    segment_prob: torch.Tensor  # (B, T, C)
    token_prob: torch.Tensor  # (B, C) sigmoid of each class token's mean feature
    emb: torch.Tensor  # (B, T, d_model) the segments' encoder output


class UnimodalNet(nn.Module):
    """CoLeaF's auxiliary network for one modality: class tokens + self-attention + MMIL pooling.

    As in the reference, the audio network pools with attention computed from the embedding before the
    classifier dropout and the visual network from the embedding after it (``attend_after_dropout``).
    """

    def __init__(self, cfg: ModelConfig, attend_after_dropout: bool):
        super().__init__()
        self.num_classes = cfg.num_classes
        self.attend_after_dropout = attend_after_dropout
        self.class_tokens = nn.Parameter(torch.zeros(1, cfg.num_classes, cfg.d_model))  # zeros, as the reference
        self.layers = nn.ModuleList(
            CoLeaFEncoderLayer(cfg.d_model, cfg.num_heads, cfg.d_ff, cfg.dropout, cross=False)
            for _ in range(cfg.num_layers)
        )
        self.dropout = Dropout(cfg.classifier_dropout)
        self.classifier = nn.Linear(cfg.d_model, cfg.num_classes)
        self.attention = nn.Linear(cfg.d_model, cfg.num_classes)

    def _classify(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> UnimodalOutput:
        padding = None  # keys to ignore: the padded segments (never the class tokens)
        if mask is not None:
            padding = torch.cat([mask.new_zeros(len(x), self.num_classes), ~mask], dim=1)
        # the first layer sees the same class tokens in every video: their projections once, not per video
        h = self.layers[0].forward_shared_prefix(self.class_tokens[0], x, padding)
        for layer in self.layers[1:]:
            h = layer(h, None, padding)
        h = h.float()
        tokens, emb = h[:, : self.num_classes], h[:, self.num_classes :]
        # The head in float32 even under autocast, as the main network's: the losses take logs of these.
        with torch.autocast(h.device.type, enabled=False):
            dropped = self.dropout(emb)
            segment_prob = torch.sigmoid(self.classifier(dropped))
            attention = masked_time_softmax(self.attention(dropped if self.attend_after_dropout else emb), mask)
            segment_prob = zero_padding(segment_prob, mask)
            prob = (attention * segment_prob).sum(dim=1)
            return UnimodalOutput(prob, segment_prob, torch.sigmoid(tokens.mean(dim=-1)), zero_padding(emb, mask))


class AudioOnlyNet(UnimodalNet):
    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg, attend_after_dropout=False)
        self.audio_input = projection(cfg.audio_dim, cfg.d_model, activation=False)

    def forward(self, audio: torch.Tensor, mask: Optional[torch.Tensor] = None) -> UnimodalOutput:
        return self._classify(self.audio_input(audio), mask)


class VisualOnlyNet(UnimodalNet):
    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg, attend_after_dropout=True)
        self.visual_input = VisualInput(cfg.visual_dim, cfg.d_model, cfg.visual_frames_per_segment, cfg.visual_3d_dim or None, activation=False)

    def forward(self, visual: torch.Tensor, visual_3d: Optional[torch.Tensor] = None,
                mask: Optional[torch.Tensor] = None) -> UnimodalOutput:
        return self._classify(self.visual_input(visual, visual_3d), mask)
