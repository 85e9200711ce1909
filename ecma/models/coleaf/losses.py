"""CoLeaF's losses, each with its equation; read from CoLeaF's code (``main.py``, ``mutual_loss.py``,
``utils/eval_metrics.py``) where the paper does not give them. Probabilities in, float32; call them outside
autocast. Notation: B videos, T segments, C classes; y (B, C) the weak labels; P^a, P^v (B, C) the
modality targets (smoothed y, then denoised); sg() stops the gradient.

A training step of the main network (CoLeaF's ``main.py``), given the auxiliary networks' outputs:
  L = w_a BCE(p^a, P^a) + w_v BCE(p^v, P^v) + w_video BCE(p, y) + w_nce L_nce(x^a, x^v) + w_mutual L_mutual
      + [from epoch ``collaborative_start_epoch``] w_cc,a L_cc(p^a, q^a) + w_cc,v L_cc(p^v, q^v)
      + w_aux,a L_nce(z^a, x^a; w^a) + w_aux,v L_nce(z^v, x^v; w^v)
(z: the auxiliary networks' segment embeddings, q: co-occurrence targets, w: modality-only weights).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ecma.errors import EcmaError
from ecma.models.coleaf.network import CoLeaFOutput, UnimodalOutput
from ecma.models.coleaf.settings import CoLeaFSettings


# --- targets: JoMoLD's label denoising (the smoothing is ecma.models.layers.smooth_labels) -------------------------------------------------------

def load_noise_ratios(spec: str, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(audio, visual) per-class noise ratios, float64 (C,): 'han' (the ones CoLeaF ships for HAN's features,
    package data), a .json file with 'audio' and 'visual' lists, or an .npz file with those arrays."""
    if spec == "han":
        text = resources.files("ecma.models.coleaf").joinpath("data/noise_ratios_han.json").read_text()
        raw = json.loads(text)
        where = "ecma/models/coleaf/data/noise_ratios_han.json"
    else:
        path = Path(spec)
        if not path.is_file():
            raise EcmaError(f"{path}: noise ratios file not found")
        where = str(path)
        try:
            raw = json.loads(path.read_text()) if path.suffix == ".json" else dict(np.load(path))
        except Exception as e:  # json and numpy raise many types for a file that is not theirs
            raise EcmaError(f"{path}: not a noise ratios file ({type(e).__name__}: {e})") from None
    ratios = []
    for key in ("audio", "visual"):
        if key not in raw:
            raise EcmaError(f"{where}: no '{key}' noise ratios")
        r = torch.as_tensor(np.asarray(raw[key], dtype=np.float64))
        if r.shape != (num_classes,):
            raise EcmaError(f"{where}: '{key}' has shape {tuple(r.shape)}, expected ({num_classes},)")
        if not bool(((r >= 0) & (r <= 1)).all()):
            raise EcmaError(f"{where}: '{key}' noise ratios must lie in [0, 1]")
        ratios.append(r)
    return ratios[0], ratios[1]


def warmed_noise_ratios(ratios: torch.Tensor, epoch: int, step: int, steps_per_epoch: int, warmup_epochs: Optional[float]) -> torch.Tensor:
    """r(epoch, step) = r_0 prod_{j=0..step} min(1, (epoch S + j) / (W S)), S steps per epoch, epoch 0-based.

    This is what CoLeaF's (and JoMoLD's) warm-up computes: each step it replaces r by min(r, r p_j) and r_0
    is reloaded at every epoch's start, so the factors multiply. With W = 0.9 the ratios are 0 for all of
    the first epoch (p_0 = 0) and r_0 from the second on (all p >= 1); ``warmup_epochs`` None: r_0.
    """
    if not warmup_epochs:
        return ratios
    progress = (epoch * steps_per_epoch + torch.arange(step + 1, dtype=torch.float64)) / (warmup_epochs * steps_per_epoch)
    return ratios * progress.clamp(max=1.0).prod()


def _chosen(loss: torch.Tensor, positive: torch.Tensor, n: int, largest: bool) -> torch.Tensor:
    """(B,) bool: the n positive videos with the largest (or smallest) loss; ties by video order."""
    chosen = torch.zeros_like(positive)
    index = torch.nonzero(positive).squeeze(1)
    order = index[torch.argsort(loss[index], stable=True)]
    chosen[order[-n:] if largest else order[:n]] = True
    return chosen


@torch.no_grad()
def denoise_modality_labels(
    a_prob: torch.Tensor, v_prob: torch.Tensor, audio_target: torch.Tensor, visual_target: torch.Tensor,
    audio_ratios: torch.Tensor, visual_ratios: torch.Tensor, clamp: float = 1e-7,
) -> tuple[torch.Tensor, torch.Tensor]:
    """JoMoLD's label denoising as CoLeaF applies it to a batch; returns new (P^a, P^v).

    With l^m = BCE(clamp(p^m), P^m) per video and class (p^m from the pass without cross-attention), and for
    each class c, n^m_c = floor(r^m_c |{b: P^m_bc > 0.5}|):
      the visual label of video b is set to 0 when b is among the n^v_c visual positives with the SMALLEST
      audio loss and among the n^v_c visual positives with the LARGEST visual loss;
      the audio label is set to 0 when b is among the n^a_c audio positives with the LARGEST audio loss and
      among the n^a_c audio positives with the SMALLEST visual loss.
    A removed label becomes 0 (not the smoothed 0.05).
    """
    a_loss = F.binary_cross_entropy(a_prob.float().clamp(clamp, 1 - clamp), audio_target, reduction="none")
    v_loss = F.binary_cross_entropy(v_prob.float().clamp(clamp, 1 - clamp), visual_target, reduction="none")
    pos_a, pos_v = audio_target > 0.5, visual_target > 0.5
    new_a, new_v = audio_target.clone(), visual_target.clone()
    for c in range(audio_target.shape[1]):
        n_v = int(visual_ratios[c].item() * int(pos_v[:, c].sum()))  # truncation, as the reference's IntTensor cast
        if n_v > 0:
            noisy = _chosen(a_loss[:, c], pos_v[:, c], n_v, largest=False) & _chosen(v_loss[:, c], pos_v[:, c], n_v, largest=True)
            new_v[noisy, c] = 0.0
        n_a = int(audio_ratios[c].item() * int(pos_a[:, c].sum()))
        if n_a > 0:
            noisy = _chosen(a_loss[:, c], pos_a[:, c], n_a, largest=True) & _chosen(v_loss[:, c], pos_a[:, c], n_a, largest=False)
            new_a[noisy, c] = 0.0
    return new_a, new_v


# --- the main network's terms -------------------------------------------------------------------------------

def clamped_bce(prob: torch.Tensor, target: torch.Tensor, clamp: float = 1e-7) -> torch.Tensor:
    """mean_(b,c) BCE(clamp(p, eps, 1 - eps), P): the modality-level (p^a vs P^a, p^v vs P^v) and the
    video-level (p vs y) terms."""
    return F.binary_cross_entropy(prob.float().clamp(clamp, 1 - clamp), target.float())


def segment_nce_loss(query: torch.Tensor, key: torch.Tensor, temperature: float = 0.2, smoothing: float = 0.1,
                     weights: Optional[torch.Tensor] = None, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Noise-contrastive loss between two sequences of segment embeddings of the same videos, (B, T, d).

    With q^, k^ L2-normalised, s_bts = <q^_bt, k^_bs> / tau, pi_bts = softmax_s(s_bt.), the smoothed target
    m_ts = 1 - eps if s = t else eps / (T - 1):
      L = -(1 / (B T)) sum_(b,t) w_b log( sum_s m_ts pi_bts )     (w_b = 1 without weights)
    (the log of the target-weighted probability, as CoLeaF's LabelSmoothingNCELoss computes it, not the
    cross-entropy sum_s m_ts log pi_bts). Segment t of one modality is the positive of segment t of the
    other; the other segments of the same video are the negatives.

    With ``mask`` (B, T) bool (variable-length videos, True on real segments), a padded segment is neither
    a positive nor a negative nor a query: T above is each video's own length T_b, and the mean is over the
    sum_b T_b real segments.
    """
    q = F.normalize(query.float(), p=2, dim=-1)
    k = F.normalize(key.float(), p=2, dim=-1)
    if mask is not None:
        return _masked_segment_nce(q, k, temperature, smoothing, weights, mask)
    t = q.shape[1]
    prob = torch.softmax(q @ k.transpose(1, 2) / temperature, dim=-1)  # (B, T, T)
    eye = torch.eye(t, device=prob.device, dtype=prob.dtype)
    target = eye * (1.0 - smoothing) + (1.0 - eye) * (smoothing / (t - 1))
    log_mass = torch.log((prob * target).sum(dim=-1))  # (B, T)
    if weights is not None:
        log_mass = log_mass * weights.float()[:, None]
    return -log_mass.mean()


def _masked_segment_nce(q: torch.Tensor, k: torch.Tensor, temperature: float, smoothing: float,
                        weights: Optional[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """segment_nce_loss on normalised q, k of videos padded to a common T (``mask`` True on real segments)."""
    t = q.shape[1]
    logits = (q @ k.transpose(1, 2) / temperature).masked_fill(~mask[:, None, :], float("-inf"))
    prob = torch.softmax(logits, dim=-1)  # (B, T, T), 0 on padded keys
    length = mask.sum(dim=1).to(prob.dtype)  # (B,) each video's T_b
    eye = torch.eye(t, device=prob.device, dtype=prob.dtype)
    # a one-segment video has no negatives: its off-diagonal share is 0 (and is not divided by 0)
    off = (smoothing / (length - 1).clamp(min=1.0))[:, None, None]
    target = eye * (1.0 - smoothing) + (1.0 - eye) * off
    log_mass = torch.log((prob * target).sum(dim=-1))  # (B, T); padded queries are dropped below
    if weights is not None:
        log_mass = log_mass * weights.float()[:, None]
    return -(log_mass.masked_fill(~mask, 0.0)).sum() / length.sum()


def modality_only_weights(aux_a_prob: torch.Tensor, aux_v_prob: torch.Tensor, threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per video, from the auxiliary networks' predictions A = [p^a_aux >= th], V = [p^v_aux >= th]:
      w^a = n_(A only) / max(n_(A only) + n_(A and V), 1),  w^v = n_(V only) / max(n_(V only) + n_(A and V), 1)
    (n: counts over classes): the share of a video's audible (visible) events that only one modality has,
    the weights of the auxiliary-main contrastive losses."""
    a = (aux_a_prob >= threshold).float()
    v = (aux_v_prob >= threshold).float()
    audio_only, visual_only, both = (a * (1 - v)).sum(1), (v * (1 - a)).sum(1), (a * v).sum(1)
    return audio_only / (audio_only + both).clamp(min=1.0), visual_only / (visual_only + both).clamp(min=1.0)


def mutual_learning_loss(
    y: torch.Tensor, video_prob: torch.Tensor, a_prob: torch.Tensor, v_prob: torch.Tensor,
    a_uncertainty: torch.Tensor, v_uncertainty: torch.Tensor, video_uncertainty: torch.Tensor,
    step: int, *, uncertainty_floor: float = 0.9, lamb: float = 1.0,
) -> torch.Tensor:
    """Uncertainty-weighted mutual learning between the global branch and the modality branches.

    g = max(u_video, floor) (B,); per class, p_max = max(p^a, p^v) with u_max the uncertainty of that
    modality (audio on ties), p_mean = (p^a + p^v) / 2, u_mean = (u^a + u^v) / 2. On odd steps the global
    branch learns from the modalities, on even steps the modalities from the global branch:
      odd:  pos = g (1 - u_max) (p - sg(p_max))^2 y,     neg = g (1 - u_mean) (p - sg(p_mean))^2 (1 - y)
      even: pos = (1 - g) (1 - u_max) (sg(p) - p_max)^2 y, neg = (1 - g) (1 - u_mean) (sg(p) - p_mean)^2 (1 - y)
      L = mean_(b,c) (pos + lamb neg)
    ``step``: the batch index within the epoch (CoLeaF's batch_idx). The uncertainties carry gradients.
    """
    g = video_uncertainty.float().clamp(min=uncertainty_floor)[:, None]
    probs = torch.stack([a_prob, v_prob], dim=-1).float()
    uncertainties = torch.stack([a_uncertainty, v_uncertainty], dim=-1).float()
    p_max, which = probs.max(dim=-1)
    u_max = uncertainties.gather(-1, which[..., None]).squeeze(-1)
    p_mean, u_mean = probs.mean(dim=-1), uncertainties.mean(dim=-1)
    p = video_prob.float()
    if step % 2:
        weight = g
        pos_gap, neg_gap = p - p_max.detach(), p - p_mean.detach()
    else:
        weight = 1.0 - g
        pos_gap, neg_gap = p.detach() - p_max, p.detach() - p_mean
    pos = weight * (1.0 - u_max) * pos_gap**2 * y
    neg = weight * (1.0 - u_mean) * neg_gap**2 * (1.0 - y)
    return (pos + lamb * neg).mean()


@torch.no_grad()
def cooccurrence_target(main_prob: torch.Tensor, aux_prob: torch.Tensor, modality_target: torch.Tensor,
                        high: float, low: float) -> torch.Tensor:
    """q = m p_aux + (1 - m) sg(p_main), m = ([p_aux >= high] + [p_aux <= low]) P^m: the auxiliary network's
    prediction where it is confident, weighted by the (denoised, possibly smoothed) modality target."""
    m = ((aux_prob >= high).float() + (aux_prob <= low).float()) * modality_target
    return m * aux_prob + (1.0 - m) * main_prob


def cooccurrence_loss(prob: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Class co-occurrence consistency: with S = p p^T and Q = q q^T per video (C x C),
      L = (B / C) sum_(b,i,j) (Q_bij - S_bij)^2
    (CoLeaF's cc_loss writes sum / C * B, which multiplies by the batch size; kept, its weight is 1e-4)."""
    b, c = prob.shape
    s = prob[:, :, None] * prob[:, None, :]
    q = target[:, :, None] * target[:, None, :]
    return ((q - s) ** 2).sum() / c * b


# --- the auxiliary networks ---------------------------------------------------------------------------------

def asymmetric_loss(prob: torch.Tensor, target: torch.Tensor, gamma_pos: float = 1.0, gamma_neg: float = 1.0,
                    clip: float = 0.05, eps: float = 1e-8) -> torch.Tensor:
    """Asymmetric loss (Ridnik et al., 2021) on probabilities, summed (not averaged) over batch and classes:
      p_- = min(1 - p + clip, 1),  pt = p y + p_- (1 - y),  gamma = gamma_pos y + gamma_neg (1 - y)
      L = -sum (1 - pt)^gamma [ y log max(p, eps) + (1 - y) log max(p_-, eps) ]
    with the focusing weight (1 - pt)^gamma treated as a constant (no gradient)."""
    prob = prob.float()
    neg = (1.0 - prob + clip).clamp(max=1.0) if clip else 1.0 - prob
    log_likelihood = target * torch.log(prob.clamp(min=eps)) + (1.0 - target) * torch.log(neg.clamp(min=eps))
    with torch.no_grad():
        pt = prob * target + neg * (1.0 - target)
        focus = torch.pow(1.0 - pt, gamma_pos * target + gamma_neg * (1.0 - target))
    return -(log_likelihood * focus).sum()


def aux_target(main_prob: torch.Tensor, modality_target: torch.Tensor, threshold: float) -> torch.Tensor:
    """The main network's binarised modality prediction kept where the modality target is: [p >= th] P^m."""
    return (main_prob.detach() >= threshold).float() * modality_target


def aux_loss(out: UnimodalOutput, modality_target: torch.Tensor, main_target: Optional[torch.Tensor],
             w_label: float, w_tokens: float, w_main: float, cfg: CoLeaFSettings) -> torch.Tensor:
    """An auxiliary network's loss: w_label ASL(p, P^m) + w_tokens ASL(p_tokens, P^m) + w_main ASL(p, t^m),
    t^m = aux_target(main network's p^m); no third term without ``main_target`` (the warm-up)."""

    def asl(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return asymmetric_loss(p, t, cfg.asl_gamma_pos, cfg.asl_gamma_neg, cfg.asl_clip, cfg.asl_eps)

    loss = w_label * asl(out.prob, modality_target) + w_tokens * asl(out.token_prob, modality_target)
    if main_target is not None:
        loss = loss + w_main * asl(out.prob, main_target)
    return loss


def aux_audio_loss(out: UnimodalOutput, audio_target: torch.Tensor, main_a_prob: torch.Tensor, epoch: int, cfg: CoLeaFSettings) -> torch.Tensor:
    """The audio-only network's loss at a 0-based ``epoch``: warm-up weights before ``aux_warmup_epochs``."""
    if epoch < cfg.aux_warmup_epochs:
        return aux_loss(out, audio_target, None, cfg.aux_audio_w_label_warmup, cfg.aux_audio_w_tokens_warmup, 0.0, cfg)
    target = aux_target(main_a_prob, audio_target, cfg.aux_target_threshold_audio)
    return aux_loss(out, audio_target, target, cfg.aux_audio_w_label, cfg.aux_audio_w_tokens, cfg.aux_audio_w_main, cfg)


def aux_visual_loss(out: UnimodalOutput, visual_target: torch.Tensor, main_v_prob: torch.Tensor, epoch: int, cfg: CoLeaFSettings) -> torch.Tensor:
    """The visual-only network's loss at a 0-based ``epoch``."""
    if epoch < cfg.aux_warmup_epochs:
        return aux_loss(out, visual_target, None, cfg.aux_visual_w_label_warmup, cfg.aux_visual_w_tokens_warmup, 0.0, cfg)
    target = aux_target(main_v_prob, visual_target, cfg.aux_target_threshold_visual)
    return aux_loss(out, visual_target, target, cfg.aux_visual_w_label, cfg.aux_visual_w_tokens, cfg.aux_visual_w_main, cfg)


# --- the main network's total -------------------------------------------------------------------------------

@dataclass
class CoLeaFLossTerms:
    total: torch.Tensor
    audio: torch.Tensor
    visual: torch.Tensor
    video: torch.Tensor
    nce: torch.Tensor
    mutual: torch.Tensor
    cooccurrence_audio: torch.Tensor
    cooccurrence_visual: torch.Tensor
    aux_nce_audio: torch.Tensor
    aux_nce_visual: torch.Tensor


def coleaf_main_loss(
    out: CoLeaFOutput, y: torch.Tensor, audio_target: torch.Tensor, visual_target: torch.Tensor,
    aux_audio: UnimodalOutput, aux_visual: UnimodalOutput, cfg: CoLeaFSettings, *, epoch: int, step: int,
) -> CoLeaFLossTerms:
    """The main network's loss (module docstring) at a 0-based ``epoch`` and batch index ``step`` in it.

    ``out``: the training ('mixed') pass; ``audio_target``/``visual_target``: P^a, P^v after denoising;
    ``aux_audio``/``aux_visual``: the auxiliary networks' outputs after their own step, without gradients.
    """
    eps = cfg.clamp
    video = out.video_prob.float().clamp(eps, 1 - eps)
    a = out.a_prob.float().clamp(eps, 1 - eps)
    v = out.v_prob.float().clamp(eps, 1 - eps)
    audio = F.binary_cross_entropy(a, audio_target)
    visual = F.binary_cross_entropy(v, visual_target)
    video_term = F.binary_cross_entropy(video, y)
    mask = getattr(out, "mask", None)  # (B, T) on variable-length batches: padded segments take no part
    nce = segment_nce_loss(out.audio_emb, out.visual_emb, cfg.nce_temperature, cfg.nce_smoothing, mask=mask)
    mutual = mutual_learning_loss(
        y, video, a, v, out.a_uncertainty, out.v_uncertainty, out.video_uncertainty, step,
        uncertainty_floor=cfg.mutual_uncertainty_floor, lamb=cfg.mutual_lambda,
    )
    total = (cfg.w_audio * audio + cfg.w_visual * visual + cfg.w_video * video_term + cfg.w_nce * nce
             + cfg.w_mutual * mutual)
    zero = total.new_zeros(())
    cc_a = cc_v = aux_a = aux_v = zero
    if epoch >= cfg.collaborative_start_epoch:
        s_a, s_v = aux_audio.prob.detach().float(), aux_visual.prob.detach().float()
        q_a = cooccurrence_target(a, s_a, audio_target, cfg.confident_high_audio, cfg.confident_low_audio)
        q_v = cooccurrence_target(v, s_v, visual_target, cfg.confident_high_visual, cfg.confident_low_visual)
        cc_a, cc_v = cooccurrence_loss(a, q_a), cooccurrence_loss(v, q_v)
        w_a, w_v = modality_only_weights(s_a, s_v, cfg.modality_only_threshold)
        aux_a = segment_nce_loss(aux_audio.emb.detach(), out.audio_emb, cfg.nce_temperature, cfg.nce_smoothing, w_a, mask)
        aux_v = segment_nce_loss(aux_visual.emb.detach(), out.visual_emb, cfg.nce_temperature, cfg.nce_smoothing, w_v, mask)
        total = (total + cfg.w_cooccurrence_audio * cc_a + cfg.w_cooccurrence_visual * cc_v
                 + cfg.w_aux_nce_audio * aux_a + cfg.w_aux_nce_visual * aux_v)
    return CoLeaFLossTerms(total, audio, visual, video_term, nce, mutual, cc_a, cc_v, aux_a, aux_v)
