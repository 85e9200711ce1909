"""CoLeaF's backbone: shapes, the evidential probabilities, the fuse ratio, each loss on hand-made tensors
(values computed here, by hand or with plain math), and the import of CoLeaF's state dict."""

import dataclasses
import math

import pytest
import torch

from ecma.errors import EcmaError
from ecma.models.coleaf.network import (
    AudioOnlyNet, CoLeaFEncoderLayer, CoLeaFNet, UnimodalOutput, VisualOnlyNet, class_dirichlet_uncertainty, segment_average,
    two_channel_dirichlet,
)
from ecma.config import ModelConfig, config_from_dict
from ecma.models.coleaf.checkpoint_import import import_coleaf_state_dict
from ecma.models.coleaf.losses import (
    asymmetric_loss, aux_audio_loss, aux_visual_loss, clamped_bce, coleaf_main_loss, cooccurrence_loss,
    cooccurrence_target, denoise_modality_labels, load_noise_ratios, modality_only_weights, mutual_learning_loss,
    segment_nce_loss, warmed_noise_ratios,
)
from ecma.models.coleaf.settings import CoLeaFSettings
from ecma.models.layers import smooth_labels

B, T, K, C = 2, 4, 3, 3


def small_config(**kw) -> ModelConfig:
    base = dict(audio_dim=6, visual_dim=5, visual_frames_per_segment=K, visual_3d_dim=4, num_classes=C, d_model=8,
                num_layers=2, num_heads=2, d_ff=16)
    base.update(kw)
    base["visual_3d_dim"] = base["visual_3d_dim"] or 0  # 0: no second visual stream
    return ModelConfig(**base)


def inputs(cfg: ModelConfig, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    audio = torch.randn(B, T, cfg.audio_dim, generator=g)
    visual = torch.randn(B, T * cfg.visual_frames_per_segment, cfg.visual_dim, generator=g)
    visual_3d = torch.randn(B, T, cfg.visual_3d_dim, generator=g) if cfg.visual_3d_dim else None
    return audio, visual, visual_3d


def bce(p, y):
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


# --- evidential probabilities ------------------------------------------------------------------------------

def test_two_channel_dirichlet_by_hand():
    p, u = two_channel_dirichlet(torch.tensor([[2.0, -1.0], [20.0, 0.0]]))
    a0, a1 = math.exp(2.0 / 0.8) + 1, math.exp(-1.0 / 0.8) + 1
    assert p[0].item() == pytest.approx(a0 / (a0 + a1), rel=1e-6)
    assert u[0].item() == pytest.approx(2 / (a0 + a1), rel=1e-6)
    b0, b1 = math.exp(10.0 / 0.8) + 1, 2.0  # evidence logits are clamped to [-10, 10]
    assert p[1].item() == pytest.approx(b0 / (b0 + b1), rel=1e-6)
    assert u[1].item() == pytest.approx(2 / (b0 + b1), rel=1e-6)


def test_class_dirichlet_uncertainty_by_hand():
    u = class_dirichlet_uncertainty(torch.tensor([[0.0, 0.8, -0.8]]))
    strength = 2.0 + (math.e + 1) + (math.exp(-1) + 1)
    assert u.item() == pytest.approx(3 / strength, rel=1e-6)


# --- network -----------------------------------------------------------------------------------------------

def test_segment_average_of_frames():
    x = torch.arange(12.0).view(1, 6, 2)
    expected = torch.tensor([[[2.0, 3.0], [8.0, 9.0]]])  # frames 0-2 and 3-5
    assert torch.equal(segment_average(x, 3), expected)
    assert torch.equal(segment_average(x.view(1, 2, 3, 2), 3), expected)
    with pytest.raises(ValueError, match="whole number"):
        segment_average(x, 4)


@pytest.mark.parametrize("activation", [True, False])
def test_visual_input_projects_each_frame_then_averages(activation):
    # CoLeaF: mean over a segment's frames of ELU(W x + b) (main network), of W x + b (auxiliary network, which
    # we compute as W mean(x) + b): both against the per-frame formula written out here
    from ecma.models.coleaf.network import VisualInput

    torch.manual_seed(0)
    layer = VisualInput(visual_dim=3, d_model=2, frames_per_segment=4, visual_3d_dim=None, activation=activation)
    frames = torch.randn(2, 8, 3)  # 2 videos, 2 segments of 4 frames
    w, b = layer.frame_proj[0].weight, layer.frame_proj[0].bias
    per_frame = frames @ w.T + b
    if activation:
        per_frame = torch.where(per_frame > 0, per_frame, per_frame.exp() - 1)
    expected = per_frame.view(2, 2, 4, 2).mean(dim=2)
    assert torch.allclose(layer(frames), expected, atol=1e-6)


@pytest.mark.parametrize("visual_3d_dim", [4, None])
def test_forward_shapes_with_one_and_two_visual_streams(visual_3d_dim):
    cfg = small_config(visual_3d_dim=visual_3d_dim)
    model = CoLeaFNet(cfg)
    audio, visual, visual_3d = inputs(cfg)
    for passes in ("mixed", "off", "fused"):
        out = model(audio, visual, visual_3d, passes=passes)
        assert out.video_prob.shape == (B, C) and out.video_uncertainty.shape == (B,)
        assert out.a_prob.shape == out.v_prob.shape == out.a_uncertainty.shape == (B, C)
        assert out.segment_prob.shape == out.segment_uncertainty.shape == (B, T, 2, C)
        assert out.audio_prob.shape == out.visual_prob.shape == (B, T, C)
        assert torch.equal(out.audio_prob, out.segment_prob[:, :, 0])
        assert out.audio_emb.shape == out.visual_emb.shape == (B, T, cfg.d_model)
        assert ((out.segment_prob > 0) & (out.segment_prob < 1)).all()


def test_frame_level_input_as_frames_or_per_segment_blocks():
    cfg = small_config()
    model = CoLeaFNet(cfg).eval()
    audio, visual, visual_3d = inputs(cfg)
    flat = model(audio, visual, visual_3d)
    blocked = model(audio, visual.view(B, T, K, cfg.visual_dim), visual_3d)
    assert torch.allclose(flat.segment_prob, blocked.segment_prob, atol=1e-6)


def test_visual_streams_must_match_the_config():
    one = CoLeaFNet(small_config(visual_3d_dim=None))
    two = CoLeaFNet(small_config())
    audio, visual, visual_3d = inputs(small_config())
    with pytest.raises(ValueError, match="without one"):
        one(audio, visual, visual_3d)
    with pytest.raises(ValueError, match="none was given"):
        two(audio, visual)
    with pytest.raises(ValueError, match="segments"):
        two(audio[:, :3], visual, visual_3d)


def test_global_branch_by_hand():
    cfg = small_config()
    model = CoLeaFNet(cfg).eval()
    audio, visual, visual_3d = inputs(cfg)
    out = model(audio, visual, visual_3d)
    with torch.no_grad():
        a = torch.nn.functional.elu(audio @ model.audio_input[0].weight.T + model.audio_input[0].bias)
        vi = model.visual_input
        frames = torch.nn.functional.elu(visual @ vi.frame_proj[0].weight.T + vi.frame_proj[0].bias)
        seg = frames.view(B, T, K, -1).mean(2)
        clip = torch.nn.functional.elu(visual_3d @ vi.clip_proj[0].weight.T + vi.clip_proj[0].bias)
        v = torch.nn.functional.elu(torch.cat([seg, clip], -1) @ vi.fusion[0].weight.T + vi.fusion[0].bias)
        e, w = model.global_branch.embed[0], model.global_branch.classifier
        lrelu = lambda x: torch.where(x > 0, x, 0.2 * x)  # noqa: E731
        logits = (lrelu(a @ e.weight.T + e.bias) + lrelu(v @ e.weight.T + e.bias)) @ w.weight.T + w.bias
        prob = torch.sigmoid(logits).mean(1)
        alpha = torch.exp(logits.mean(1).clamp(-10, 10) / 0.8) + 1
    assert torch.allclose(out.video_prob, prob, atol=1e-6)
    assert torch.allclose(out.video_uncertainty, C / alpha.sum(-1), atol=1e-6)


def test_evidential_head_pooling_by_hand():
    cfg = small_config()
    model = CoLeaFNet(cfg).eval()
    head = model.head
    g = torch.Generator().manual_seed(1)
    a, v = torch.randn(1, T, cfg.d_model, generator=g), torch.randn(1, T, cfg.d_model, generator=g)
    seg_logits, pooled = head(a, v)
    with torch.no_grad():
        for m, x in enumerate((a, v)):
            to_self = head.to_audio if m == 0 else head.to_visual
            lin = to_self[0]
            inter_in = x + torch.nn.functional.leaky_relu((a + v) @ lin.weight.T + lin.bias, 0.2)
            for c in range(C):
                own = x[0] @ head.own.weight[c] + head.own.bias[c]  # (T,)
                inter = inter_in[0] @ head.interaction.weight[c] + head.interaction.bias[c]
                for k, logit in enumerate((own, inter)):
                    row = 2 * c + k  # the attention's output layout: class c, channel k
                    att = torch.softmax(x[0] @ head.attention.weight[row] + head.attention.bias[row], dim=0)
                    assert torch.allclose(seg_logits[0, :, m, c, k], logit, atol=1e-6)
                    assert pooled[0, m, c, k].item() == pytest.approx((att * logit).sum().item(), abs=1e-6)


def test_passes_and_the_fuse_ratio():
    cfg = small_config(fuse_ratio=0.7, train_cross_attention_ratio=0.8)
    model = CoLeaFNet(cfg).eval()
    audio, visual, visual_3d = inputs(cfg)
    with torch.no_grad():
        mixed = model(audio, visual, visual_3d, passes="mixed")
        off = model(audio, visual, visual_3d, passes="off")
        fused = model(audio, visual, visual_3d)  # eval mode: fused by default
        a = model.audio_input(audio)
        v = model.visual_input(visual, visual_3d)
        a_on, v_on = model.encoder(a, v, cross_attention=True)
    for name in ("a_prob", "v_prob", "segment_prob", "a_uncertainty", "segment_uncertainty"):
        expected = 0.7 * getattr(mixed, name) + 0.3 * getattr(off, name)
        assert torch.allclose(getattr(fused, name), expected, atol=1e-7), name
    assert torch.equal(fused.video_prob, off.video_prob)  # the global branch does not see the encoder
    assert torch.allclose(mixed.audio_emb, 0.8 * a_on + 0.2 * off.audio_emb, atol=1e-6)
    assert torch.allclose(mixed.visual_emb, 0.8 * v_on + 0.2 * off.visual_emb, atol=1e-6)
    assert not torch.allclose(mixed.segment_prob, off.segment_prob)
    model.train()
    torch.manual_seed(0)
    train_default = model(audio, visual, visual_3d)
    torch.manual_seed(0)
    train_mixed = model(audio, visual, visual_3d, passes="mixed")
    assert torch.equal(train_default.segment_prob, train_mixed.segment_prob)


def test_auxiliary_networks_shapes():
    cfg = small_config()
    audio, visual, visual_3d = inputs(cfg)
    a = AudioOnlyNet(cfg)(audio)
    v = VisualOnlyNet(cfg)(visual, visual_3d)
    for out in (a, v):
        assert out.prob.shape == out.token_prob.shape == (B, C)
        assert out.segment_prob.shape == (B, T, C) and out.emb.shape == (B, T, cfg.d_model)
    assert torch.allclose(a.token_prob, torch.full((B, C), 0.5), atol=0.5)  # zero tokens: LayerNorm'd, sigmoid


# --- targets and denoising ---------------------------------------------------------------------------------

def test_smoothing_gives_coleafs_visual_target():
    assert torch.allclose(smooth_labels(torch.tensor([0.0, 1.0]), 0.1), torch.tensor([0.05, 0.95]))


def test_noise_ratios_shipped_for_hans_features():
    audio, visual = load_noise_ratios("han", 25)
    assert audio.shape == visual.shape == (25,)
    assert audio[0].item() == pytest.approx(0.06455493183640738)
    assert visual[0].item() == pytest.approx(0.9939855653568564)  # Speech is rarely visible
    with pytest.raises(EcmaError, match="expected \\(10,\\)"):
        load_noise_ratios("han", 10)


def test_noise_ratio_warm_up_as_coleaf_computes_it():
    r0 = torch.tensor([0.2, 0.4], dtype=torch.float64)
    assert torch.equal(warmed_noise_ratios(r0, 0, 5, 10, 0.9), torch.zeros(2, dtype=torch.float64))
    assert torch.equal(warmed_noise_ratios(r0, 1, 0, 10, 0.9), r0)
    # W = 2 epochs, S = 2 steps: epoch 1 step 0: p = 2/4; step 1: p = 2/4, 3/4 multiply
    assert torch.allclose(warmed_noise_ratios(r0, 1, 0, 2, 2.0), r0 * 0.5)
    assert torch.allclose(warmed_noise_ratios(r0, 1, 1, 2, 2.0), r0 * 0.375)
    assert torch.equal(warmed_noise_ratios(r0, 0, 0, 2, None), r0)


def test_denoising_by_hand():
    # Five videos, one class; the first four carry it. a_prob ranks audio losses 0 < 1 < 2 < 3; visual
    # losses (target 0.95) rank 3 < 1 < 2 < 0. Ratio 0.5 of 4 positives: 2 per modality.
    y = torch.tensor([[1.0], [1.0], [1.0], [1.0], [0.0]])
    pa, pv = smooth_labels(y, 0.0), smooth_labels(y, 0.1)
    a_prob = torch.tensor([[0.9], [0.8], [0.3], [0.2], [0.9]])
    v_prob = torch.tensor([[0.1], [0.9], [0.2], [0.95], [0.9]])
    half = torch.tensor([0.5], dtype=torch.float64)
    new_a, new_v = denoise_modality_labels(a_prob, v_prob, pa, pv, half, half)
    # visual: smallest audio loss {0, 1} and largest visual loss {0, 2} -> video 0 loses its visual label
    assert new_v[:, 0].tolist() == pytest.approx([0.0, 0.95, 0.95, 0.95, 0.05])
    # audio: largest audio loss {2, 3} and smallest visual loss {3, 1} -> video 3 loses its audio label
    assert new_a[:, 0].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    same_a, same_v = denoise_modality_labels(a_prob, v_prob, pa, pv, half * 0, half * 0)
    assert torch.equal(same_a, pa) and torch.equal(same_v, pv)


# --- the main network's losses -----------------------------------------------------------------------------

def test_clamped_bce_by_hand():
    p = torch.tensor([[0.8, 0.0]])
    y = torch.tensor([[1.0, 0.0]])
    assert clamped_bce(p, y).item() == pytest.approx((bce(0.8, 1) + bce(1e-7, 0)) / 2, rel=1e-5)
    top = torch.tensor(1 - 1e-7).item()  # 1 - 1e-7 as float32 rounds it: 1 - 1.19e-7
    assert clamped_bce(torch.tensor([[1.0]]), torch.tensor([[0.0]])).item() == pytest.approx(-math.log(1 - top), rel=1e-5)


def test_segment_nce_loss_by_hand():
    q = torch.tensor([[[2.0, 0.0], [0.0, 3.0]]])  # normalised to the identity
    k = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    s = math.exp(1 / 0.5) / (math.exp(1 / 0.5) + 1)  # softmax of (2, 0)
    mass = 0.9 * s + 0.1 * (1 - s)  # both rows alike
    assert segment_nce_loss(q, k, 0.5, 0.1).item() == pytest.approx(-math.log(mass), rel=1e-6)
    k_same = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])  # row 0: (2, 2); row 1: (0, 0) -> both 1/2
    expected = -math.log(0.5)
    assert segment_nce_loss(q, k_same, 0.5, 0.1).item() == pytest.approx(expected, rel=1e-6)
    two = torch.cat([q, q]), torch.cat([k, k_same])
    weighted = segment_nce_loss(*two, 0.5, 0.1, weights=torch.tensor([1.0, 0.0]))
    assert weighted.item() == pytest.approx(-math.log(mass) / 2, rel=1e-6)


def test_modality_only_weights_by_hand():
    aux_a = torch.tensor([[0.9, 0.6, 0.1], [0.1, 0.2, 0.3], [0.9, 0.9, 0.9]])
    aux_v = torch.tensor([[0.2, 0.7, 0.8], [0.1, 0.2, 0.3], [0.1, 0.2, 0.9]])
    w_a, w_v = modality_only_weights(aux_a, aux_v)
    # video 0: audio only {0}, visual only {2}, both {1}; video 1: nothing; video 2: audio only {0, 1}, both {2}
    assert w_a.tolist() == pytest.approx([0.5, 0.0, 2 / 3])
    assert w_v.tolist() == pytest.approx([0.5, 0.0, 0.0])


def _mutual_by_hand(y, p, pa, pv, ua, uv, gu, odd):
    g = max(gu, 0.9)
    total = 0.0
    for c in range(len(y)):
        p_max, u_max = (pa[c], ua[c]) if pa[c] >= pv[c] else (pv[c], uv[c])
        p_mean, u_mean = (pa[c] + pv[c]) / 2, (ua[c] + uv[c]) / 2
        w = g if odd else 1 - g
        total += w * (1 - u_max) * (p[c] - p_max) ** 2 * y[c] + w * (1 - u_mean) * (p[c] - p_mean) ** 2 * (1 - y[c])
    return total / len(y)


@pytest.mark.parametrize("step", [0, 1])
def test_mutual_learning_loss_by_hand(step):
    y, p = [1.0, 0.0], [0.7, 0.4]
    pa, pv, ua, uv = [0.9, 0.2], [0.5, 0.6], [0.3, 0.1], [0.2, 0.5]
    gu = 0.95
    tensors = [torch.tensor([x], requires_grad=True) for x in (p, pa, pv, ua, uv)]
    loss = mutual_learning_loss(torch.tensor([y]), *tensors[:3], *tensors[3:], torch.tensor([gu]), step)
    assert loss.item() == pytest.approx(_mutual_by_hand(y, p, pa, pv, ua, uv, gu, step % 2), rel=1e-6)
    loss.backward()
    p_t, pa_t = tensors[0], tensors[1]
    for t in (p_t, pa_t):
        t.grad = torch.zeros_like(t) if t.grad is None else t.grad
    if step % 2:  # odd: the global branch learns, the modalities are targets
        assert p_t.grad.abs().sum() > 0 and pa_t.grad.abs().sum() == 0
    else:
        assert p_t.grad.abs().sum() == 0 and pa_t.grad.abs().sum() > 0
    # the uncertainty floor: 0.5 counts as 0.9
    low = mutual_learning_loss(torch.tensor([y]), *[torch.tensor([x]) for x in (p, pa, pv, ua, uv)], torch.tensor([0.5]), step)
    assert low.item() == pytest.approx(_mutual_by_hand(y, p, pa, pv, ua, uv, 0.9, step % 2), rel=1e-6)


def test_cooccurrence_target_and_loss_by_hand():
    main = torch.tensor([[0.6, 0.3]])
    aux = torch.tensor([[0.85, 0.5]])  # class 0 confident (>= 0.8), class 1 not
    target = torch.tensor([[1.0, 1.0]])
    q = cooccurrence_target(main, aux, target, 0.8, 0.1)
    assert q.tolist()[0] == pytest.approx([0.85, 0.3])
    soft = cooccurrence_target(main, aux, torch.tensor([[0.95, 1.0]]), 0.8, 0.1)  # m = 0.95
    assert soft[0, 0].item() == pytest.approx(0.95 * 0.85 + 0.05 * 0.6)
    p = torch.tensor([[0.5, 0.2], [1.0, 0.0]])
    t = torch.tensor([[0.6, 0.2], [1.0, 0.0]])
    diff = (0.36 - 0.25) ** 2 + 2 * (0.12 - 0.10) ** 2 + 0.0
    assert cooccurrence_loss(p, t).item() == pytest.approx(diff / 2 * 2, rel=1e-5)


# --- the auxiliary networks' losses ------------------------------------------------------------------------

def _asl_by_hand(p, y, clip=0.05):
    if y == 1:
        return -(1 - p) * math.log(p)
    neg = min(1 - p + clip, 1.0)
    return -(1 - neg) * math.log(neg)


def test_asymmetric_loss_by_hand():
    p = torch.tensor([[0.7, 0.2, 0.97, 0.03]], requires_grad=True)
    y = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    loss = asymmetric_loss(p, y)
    expected = _asl_by_hand(0.7, 1) + _asl_by_hand(0.2, 0) + _asl_by_hand(0.97, 0) + _asl_by_hand(0.03, 0)
    assert _asl_by_hand(0.03, 0) == 0.0  # 1 - 0.03 + clip > 1: clipped to 1, an easy negative costs nothing
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    # the focusing weight is a constant: d/dp of -w log p (positive), of -w log(1.05 - p) (negative)
    assert p.grad[0, 0].item() == pytest.approx(-(1 - 0.7) / 0.7, rel=1e-5)
    assert p.grad[0, 1].item() == pytest.approx((1 - 0.85) / 0.85, rel=1e-5)
    assert p.grad[0, 2].item() == pytest.approx((1 - 0.08) / 0.08, rel=1e-4)
    assert p.grad[0, 3].item() == 0.0


def test_aux_losses_switch_weights_after_the_warm_up():
    cfg = CoLeaFSettings()
    out = UnimodalOutput(torch.tensor([[0.7, 0.2]]), torch.zeros(1, 2, 2), torch.tensor([[0.6, 0.3]]), torch.zeros(1, 2, 4))
    pa = torch.tensor([[1.0, 0.0]])
    main = torch.tensor([[0.4, 0.9]])  # binarised at 0.5 and kept where P^a: (0, 0)
    asl = lambda p, y: sum(_asl_by_hand(pi, yi) for pi, yi in zip(p, y))  # noqa: E731
    warm = 1.0 * asl([0.7, 0.2], [1, 0]) + 1.2 * asl([0.6, 0.3], [1, 0])
    after = 0.5 * asl([0.7, 0.2], [1, 0]) + 0.001 * asl([0.6, 0.3], [1, 0]) + 0.5 * asl([0.7, 0.2], [0, 0])
    assert aux_audio_loss(out, pa, main, 2, cfg).item() == pytest.approx(warm, rel=1e-6)
    assert aux_audio_loss(out, pa, main, 3, cfg).item() == pytest.approx(after, rel=1e-6)
    main_v = torch.tensor([[0.65, 0.9]])  # visual threshold 0.6: (1, 0) where P^v
    after_v = 0.5 * asl([0.7, 0.2], [1, 0]) + 0.0 + 0.5 * asl([0.7, 0.2], [1, 0])
    assert aux_visual_loss(out, pa, main_v, 3, cfg).item() == pytest.approx(after_v, rel=1e-6)


def test_main_loss_sums_its_terms_with_coleafs_weights():
    cfg_model = small_config()
    model = CoLeaFNet(cfg_model).train()
    audio, visual, visual_3d = inputs(cfg_model)
    out = model(audio, visual, visual_3d)
    y = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    pa, pv = smooth_labels(y, 0.0), smooth_labels(y, 0.1)
    aux_a = AudioOnlyNet(cfg_model)(audio)
    aux_v = VisualOnlyNet(cfg_model)(visual, visual_3d)
    cfg = CoLeaFSettings()
    first = coleaf_main_loss(out, y, pa, pv, aux_a, aux_v, cfg, epoch=0, step=0)
    base = 2 * first.audio + first.visual + 2 * first.video + first.nce + first.mutual
    assert first.total.item() == pytest.approx(base.item(), rel=1e-6)
    assert first.cooccurrence_audio.item() == 0.0 and first.aux_nce_visual.item() == 0.0
    later = coleaf_main_loss(out, y, pa, pv, aux_a, aux_v, cfg, epoch=1, step=0)
    full = (base + 1e-4 * later.cooccurrence_audio + 1e-4 * later.cooccurrence_visual
            + 0.009 * later.aux_nce_audio + 1.0 * later.aux_nce_visual)
    assert later.total.item() == pytest.approx(full.item(), rel=1e-6)
    assert later.aux_nce_visual.item() >= 0.0
    assert first.audio.item() == pytest.approx(clamped_bce(out.a_prob, pa).item(), rel=1e-6)
    aux_a2 = AudioOnlyNet(cfg_model)
    later2 = coleaf_main_loss(out, y, pa, pv, aux_a2(audio), aux_v, cfg, epoch=1, step=0)
    later2.total.backward()
    assert all(p.grad is not None for p in model.head.parameters())
    assert all(p.grad is None for p in aux_a2.parameters())  # the main loss does not train the auxiliary nets


# --- importing CoLeaF's checkpoints ------------------------------------------------------------------------

def reference_state_dict(cfg: ModelConfig, seed: int = 0) -> dict:
    """A state dict with the names and shapes CoLeaF's MMIL_Net saves, written out here from its layout."""
    d, c, f = cfg.d_model, cfg.num_classes, cfg.d_ff
    shapes = {
        "fc_prob.weight": (c, d), "fc_prob.bias": (c,), "fc_prob_beta.weight": (c, d), "fc_prob_beta.bias": (c,),
        "fc_frame_att.weight": (2 * c, d), "fc_frame_att.bias": (2 * c,),
        "fc_global.0.weight": (d, d), "fc_global.0.bias": (d,), "fc_global.2.weight": (c, d), "fc_global.2.bias": (c,),
        "fc_a.0.weight": (d, cfg.audio_dim), "fc_a.0.bias": (d,), "fc_v.0.weight": (d, cfg.visual_dim), "fc_v.0.bias": (d,),
        "fc_st.0.weight": (d, cfg.visual_3d_dim), "fc_st.0.bias": (d,),
        "fc_fusion.0.weight": (d, 2 * d), "fc_fusion.0.bias": (d,),
        "hat_encoder.norm1.weight": (d,), "hat_encoder.norm1.bias": (d,),
        "hat_encoder.norm2.weight": (d,), "hat_encoder.norm2.bias": (d,),
        "v2a.0.weight": (d, d), "v2a.0.bias": (d,), "a2v.0.weight": (d, d), "a2v.0.bias": (d,),
        "classifier1.0.weight": (d, d), "classifier1.0.bias": (d,), "classifier2.weight": (c, d), "classifier2.bias": (c,),
    }
    for i in range(cfg.num_layers):
        p = f"hat_encoder.layers.{i}."
        shapes.update({p + "cls_tokens_a": (1, c, d), p + "cls_tokens_v": (1, c, d)})
        for attn in ("self_attn", "cm_attn"):
            shapes.update({p + attn + ".in_proj_weight": (3 * d, d), p + attn + ".in_proj_bias": (3 * d,),
                           p + attn + ".out_proj.weight": (d, d), p + attn + ".out_proj.bias": (d,)})
        shapes.update({p + "linear1.weight": (f, d), p + "linear1.bias": (f,), p + "linear2.weight": (d, f),
                       p + "linear2.bias": (d,), p + "norm1.weight": (d,), p + "norm1.bias": (d,),
                       p + "norm2.weight": (d,), p + "norm2.bias": (d,)})
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=g) for k, s in shapes.items()}


def test_import_maps_every_parameter():
    cfg = small_config()
    theirs = reference_state_dict(cfg)
    ours = import_coleaf_state_dict({"model": theirs, "epochs": 10}, cfg)  # main.py's saved dict
    model = CoLeaFNet(cfg)
    model.load_state_dict(ours, strict=True)
    pairs = {
        "fc_prob_beta.weight": "head.interaction.weight", "fc_frame_att.bias": "head.attention.bias",
        "v2a.0.weight": "head.to_audio.0.weight", "a2v.0.bias": "head.to_visual.0.bias",
        "classifier1.0.weight": "global_branch.embed.0.weight", "classifier2.bias": "global_branch.classifier.bias",
        "fc_a.0.weight": "audio_input.0.weight", "fc_v.0.weight": "visual_input.frame_proj.0.weight",
        "fc_st.0.bias": "visual_input.clip_proj.0.bias", "fc_fusion.0.weight": "visual_input.fusion.0.weight",
        "hat_encoder.layers.1.cm_attn.in_proj_weight": "encoder.layers.1.cross_attn.in_proj_weight",
        "hat_encoder.layers.0.self_attn.out_proj.bias": "encoder.layers.0.self_attn.out_proj.bias",
        "hat_encoder.layers.0.linear1.weight": "encoder.layers.0.feed_forward.0.weight",
        "hat_encoder.layers.1.linear2.bias": "encoder.layers.1.feed_forward.3.bias",
        "hat_encoder.layers.0.norm1.weight": "encoder.layers.0.norm_attn.weight",
        "hat_encoder.layers.1.norm2.bias": "encoder.layers.1.norm_ff.bias",
    }
    for theirs_name, ours_name in pairs.items():
        assert torch.equal(model.state_dict()[ours_name], theirs[theirs_name]), theirs_name
    prefixed = import_coleaf_state_dict({"module." + k: v for k, v in theirs.items()}, cfg)
    assert prefixed.keys() == ours.keys()


def test_import_refuses_a_wrong_shape_a_missing_and_an_unknown_parameter():
    cfg = small_config()
    wrong = reference_state_dict(cfg)
    wrong["fc_prob.weight"] = torch.zeros(cfg.num_classes + 1, cfg.d_model)
    with pytest.raises(EcmaError, match=r"'fc_prob.weight' has shape \(4, 8\).*\(3, 8\)"):
        import_coleaf_state_dict(wrong, cfg)
    missing = reference_state_dict(cfg)
    del missing["hat_encoder.layers.1.cm_attn.out_proj.bias"]
    with pytest.raises(EcmaError, match="'hat_encoder.layers.1.cm_attn.out_proj.bias' is missing"):
        import_coleaf_state_dict(missing, cfg)
    unknown = reference_state_dict(cfg)
    unknown["fc_extra.weight"] = torch.zeros(1)
    with pytest.raises(EcmaError, match="'fc_extra.weight' is not one of"):
        import_coleaf_state_dict(unknown, cfg)
    with pytest.raises(EcmaError, match="'fc_st.0.weight'.*second visual stream"):
        import_coleaf_state_dict(reference_state_dict(cfg), small_config(visual_3d_dim=None))
    with pytest.raises(EcmaError, match="more encoder layers"):
        import_coleaf_state_dict(reference_state_dict(cfg), small_config(num_layers=1))


def test_training_step_updates_all_three_networks_and_denoises_its_targets():
    from ecma.models.coleaf.step import CoLeaFNets, CoLeaFOptimizers, coleaf_train_step

    cfg = config_from_dict({"model": dataclasses.asdict(small_config())})
    nets = CoLeaFNets.build(cfg.model)
    adam = CoLeaFOptimizers.adam(nets, cfg.train)
    schedulers = adam.step_lr(cfg.train)
    assert [s.step_size for s in schedulers] == [6, 6, 6] and schedulers[0].gamma == 0.25
    assert adam.audio_only.param_groups[0]["params"][0] is nets.audio_only.class_tokens  # one per network
    # SGD for the step itself: torch's first Adam step imports its compiler (seconds), not what is tested here
    optimizers = CoLeaFOptimizers(*(torch.optim.SGD(n.parameters(), lr=0.1) for n in (nets.main, nets.audio_only, nets.visual_only)))
    audio, visual, visual_3d = inputs(cfg.model)
    y = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    before = [{k: v.clone() for k, v in n.state_dict().items()} for n in (nets.main, nets.audio_only, nets.visual_only)]
    everything = (torch.ones(C, dtype=torch.float64), torch.ones(C, dtype=torch.float64))
    result = coleaf_train_step(nets, optimizers, audio, visual, visual_3d, y, cfg, epoch=3, step=1, steps_per_epoch=4,
                               noise_ratios=everything)
    for net, init in zip((nets.main, nets.audio_only, nets.visual_only), before):
        assert any(not torch.equal(v, init[k]) for k, v in net.state_dict().items())
    # ratio 1: every positive is among the n lowest and n highest losses, so every label is removed
    assert torch.equal(result.audio_target, torch.zeros_like(y))
    assert torch.equal(result.visual_target, smooth_labels(y, 0.1) * (1 - y))
    first_epoch = coleaf_train_step(nets, optimizers, audio, visual, visual_3d, y, cfg, epoch=0, step=0, steps_per_epoch=4,
                                    noise_ratios=everything)
    assert torch.equal(first_epoch.audio_target, y)  # CoLeaF's warm-up: no denoising in the first epoch


def test_ecma_terms_and_inference_take_the_coleaf_output():
    """E-CMA's pseudo-mask loss, CMA and batch inference read only names CoLeaFOutput shares with ModelOutput."""
    import numpy as np

    from ecma.evaluation.inference import run_model
    from ecma.training.losses import cma_loss, pseudo_loss

    cfg = small_config(visual_3d_dim=None, visual_frames_per_segment=1)
    model = CoLeaFNet(cfg)
    audio, visual, _ = inputs(cfg)
    out = model.train()(audio, visual)
    y = torch.ones(B, C)
    masks = torch.zeros(B, T, C)
    masks[0, 1, 2] = 1.0
    fused = (out.segment_prob[0, 1, 0, 2] + out.segment_prob[0, 1, 1, 2]) / 2
    assert pseudo_loss(out.segment_prob, masks).item() == pytest.approx(-math.log(fused.item()), rel=1e-5)
    cos = torch.nn.functional.cosine_similarity(out.audio_emb, out.visual_emb, dim=-1)
    chosen = ((out.segment_prob[:, :, 0] > 0) & (out.segment_prob[:, :, 1] > 0)).float()  # thresholds 0: all
    expected = ((1 - cos)[:, :, None] * chosen).sum() / chosen.sum()
    assert cma_loss(out, y, 0.0, 0.0).item() == pytest.approx(expected.item(), rel=1e-5)
    split = run_model(model, audio.numpy(), visual.numpy(), batch_size=1, device=torch.device("cpu"))
    with torch.no_grad():
        reference = model.eval()(audio, visual)  # eval: the fused output
    assert np.allclose(split.audio_prob, reference.audio_prob.numpy(), atol=1e-6)
    assert np.allclose(split.video_prob, reference.video_prob.numpy(), atol=1e-6)


def test_config_defaults_are_coleafs_and_bad_values_are_refused():
    cfg = config_from_dict({})
    assert (cfg.train.batch_size, cfg.train.lr, cfg.train.lr_step_epochs, cfg.train.lr_gamma, cfg.train.epochs) == (128, 5e-4, 6, 0.25, 10)
    assert (cfg.model.fuse_ratio, cfg.model.train_cross_attention_ratio) == (0.7, 0.8)
    with pytest.raises(EcmaError, match="fuse_ratio"):
        config_from_dict({"model": {"fuse_ratio": 1.5}})


def test_heads_stay_float32_under_bf16_autocast():
    cfg = small_config()
    audio, visual, visual_3d = inputs(cfg)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        main = CoLeaFNet(cfg).train()(audio, visual, visual_3d)
        aux = AudioOnlyNet(cfg)(audio)
    for t in (main.segment_prob, main.a_prob, main.video_prob, main.audio_emb, aux.prob, aux.token_prob, aux.emb):
        assert t.dtype == torch.float32


def test_fast_elu_equals_torchs_elu_and_its_gradient():
    from ecma.models.layers import ELU

    x = torch.tensor([-30.0, -2.0, -1e-3, -1e-7, 0.0, 1e-7, 0.5, 3.0], requires_grad=True)
    y = ELU()(x)
    expected = torch.tensor([math.exp(v) - 1 if v <= 0 else v for v in x.tolist()])  # by the formula
    assert torch.allclose(y, expected, atol=1e-7, rtol=0)
    assert torch.equal(y[x > 0], x[x > 0])  # positive inputs pass unchanged, bit for bit
    y.sum().backward()
    assert torch.allclose(x.grad, torch.tensor([math.exp(v) if v <= 0 else 1.0 for v in x.tolist()]), atol=1e-7)
    # bf16 (under autocast): small negative values keep their precision (exp(x) - 1 in bf16 would round to 0)
    small = torch.tensor([-1e-3, -0.01], dtype=torch.bfloat16)
    assert torch.equal(ELU()(small), torch.nn.functional.elu(small.float()).to(torch.bfloat16))
    # many values, float32: within a float32 step of 1 of torch's expm1, and the input left as it was
    many = torch.randn(10_000, generator=torch.Generator().manual_seed(0)) * 3
    before = many.clone()
    with torch.no_grad():
        assert torch.allclose(ELU()(many), torch.nn.functional.elu(many), atol=6e-8, rtol=0)
    assert torch.equal(many, before)


@pytest.mark.parametrize("with_padding", [False, True])
def test_shared_prefix_layer_equals_the_layer_on_the_concatenation(with_padding):
    # the auxiliary networks' first layer projects the class tokens once: the same numbers as the plain layer
    torch.manual_seed(0)
    layer = CoLeaFEncoderLayer(16, 2, 32, dropout=0.0, cross=False).eval()
    prefix, x = torch.randn(5, 16), torch.randn(3, 4, 16)
    padding = None
    if with_padding:
        padding = torch.zeros(3, 9, dtype=torch.bool)
        padding[1, 7:] = True  # the second video has 2 real segments of 4
    expected = layer(torch.cat([prefix.expand(3, -1, -1), x], dim=1), None, padding)
    got = layer.forward_shared_prefix(prefix, x, padding)
    assert torch.allclose(got, expected, atol=1e-6)
    # gradients reach the prefix (the class tokens) as through the expanded copy
    p1, p2 = prefix.clone().requires_grad_(), prefix.clone().requires_grad_()
    layer(torch.cat([p1.expand(3, -1, -1), x], dim=1), None, padding).square().sum().backward()
    layer.forward_shared_prefix(p2, x, padding).square().sum().backward()
    assert torch.allclose(p1.grad, p2.grad, atol=1e-5)


@pytest.mark.parametrize("cross", [False, True])
def test_inference_attention_equals_the_modules(cross):
    # without autograd the layer feeds torch's attention time-first tensors: the same numbers as the module
    from ecma.models.coleaf.network import attend

    torch.manual_seed(0)
    layer = CoLeaFEncoderLayer(16, 2, 32, dropout=0.0).eval()
    x, other = torch.randn(3, 5, 16), torch.randn(3, 5, 16)
    padding = torch.zeros(3, 5, dtype=torch.bool)
    padding[2, 3:] = True
    attention = layer.cross_attn if cross else layer.self_attn
    keys = other if cross else x
    expected = attention(x, keys, keys, key_padding_mask=padding, need_weights=False)[0].detach()
    with torch.no_grad():
        got = attend(attention, x, keys, padding)
        whole = layer(x, other if cross else None, padding)
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.allclose(whole, layer(x, other if cross else None, padding), atol=1e-6)  # with autograd: the module


@pytest.mark.parametrize("with_padding", [False, True])
def test_both_passes_share_the_first_self_attention_only_without_dropout(with_padding):
    # eval mode: the passes with and without cross-attention computed together equal two separate encoder calls
    from ecma.models.coleaf.network import CoLeaFEncoder

    torch.manual_seed(0)
    encoder = CoLeaFEncoder(small_config(num_layers=2, dropout=0.3)).eval()
    a, v = torch.randn(B, T, 8), torch.randn(B, T, 8)
    mask = None
    if with_padding:
        mask = torch.ones(B, T, dtype=torch.bool)
        mask[0, T - 2 :] = False
    off, on = encoder.both_passes(a, v, mask)
    for got, expected in ((off, encoder(a, v, False, mask)), (on, encoder(a, v, True, mask))):
        assert all(torch.allclose(g, e, atol=1e-6) for g, e in zip(got, expected))
    # training: each pass draws its own dropout, in the order of two separate calls (off, then on)
    encoder.train()
    torch.manual_seed(1)
    off, on = encoder.both_passes(a, v, mask)
    torch.manual_seed(1)
    expected_off, expected_on = encoder(a, v, False, mask), encoder(a, v, True, mask)
    assert all(torch.equal(g, e) for g, e in zip(off + on, expected_off + expected_on))
    assert not torch.allclose(off[0], encoder.eval()(a, v, False, mask)[0])  # dropout was on


def test_inference_projects_frames_a_few_videos_at_a_time_with_the_same_numbers(monkeypatch):
    import ecma.models.coleaf.network as coleaf

    cfg = small_config()
    model = CoLeaFNet(cfg).eval()
    audio, visual, visual_3d = inputs(cfg)
    with torch.no_grad():
        whole = model.visual_input.project_frames(visual)
        monkeypatch.setattr(coleaf, "NO_GRAD_FRAME_ROWS", T * K)  # one video per chunk
        chunked = model.visual_input.project_frames(visual)
    expected = segment_average(torch.nn.functional.elu(visual @ model.visual_input.frame_proj[0].weight.T
                                                       + model.visual_input.frame_proj[0].bias), K)
    assert chunked.shape == (B, T, cfg.d_model)
    assert torch.allclose(chunked, expected, atol=1e-6) and torch.allclose(whole, expected, atol=1e-6)
