"""The HAN + MMIL forward pass against the head's formulas computed by hand from its own weights."""

import pytest
import torch

from ecma.config import ModelConfig
from ecma.models.han.network import Dropout, HANNet, HybridAttentionLayer


def test_mmil_pooling_matches_the_formulas():
    torch.manual_seed(0)
    cfg = ModelConfig(audio_dim=7, visual_dim=5, num_classes=4, d_model=8, num_layers=2, num_heads=2, d_ff=16, dropout=0.0)
    model = HANNet(cfg).eval()
    audio, visual = torch.randn(3, 6, 7), torch.randn(3, 6, 5)
    out = model(audio, visual)
    a, v = out.audio_emb, out.visual_emb
    assert a.shape == v.shape == (3, 6, 8)
    head = model.head
    x = torch.stack([a, v], dim=2)
    p = torch.sigmoid(x @ head.classifier.weight.T + head.classifier.bias)
    w_t = torch.exp(x @ head.time_attention.weight.T + head.time_attention.bias)
    w_t = w_t / w_t.sum(dim=1, keepdim=True)
    w_m = torch.exp(x @ head.modality_attention.weight.T + head.modality_attention.bias)
    w_m = w_m / w_m.sum(dim=2, keepdim=True)
    assert torch.allclose(out.segment_prob, p, atol=1e-6)
    assert torch.allclose(out.video_prob, (w_t * w_m * p).sum(dim=(1, 2)), atol=1e-6)
    assert torch.allclose(out.a_prob, (w_t[:, :, 0] * p[:, :, 0]).sum(dim=1), atol=1e-6)
    assert torch.allclose(out.v_prob, (w_t[:, :, 1] * p[:, :, 1]).sum(dim=1), atol=1e-6)
    for prob in (out.video_prob, out.a_prob, out.v_prob, out.segment_prob):
        assert prob.min() >= 0 and prob.max() <= 1


def test_han_layer_mixes_modalities_and_time():
    torch.manual_seed(0)
    cfg = ModelConfig(audio_dim=4, visual_dim=4, num_classes=3, d_model=8, num_layers=1, num_heads=2, d_ff=8, dropout=0.0)
    model = HANNet(cfg).eval()
    audio, visual = torch.randn(1, 5, 4), torch.randn(1, 5, 4)
    base = model(audio, visual).audio_emb
    changed_visual = visual.clone()
    changed_visual[0, 4] += 3.0
    # cross-attention: the audio embedding of segment 0 depends on the visual stream (at another segment)
    assert not torch.allclose(model(audio, changed_visual).audio_emb[0, 0], base[0, 0])
    changed_audio = audio.clone()
    changed_audio[0, 4] += 3.0
    # self-attention: segment 0 depends on segment 4 of its own modality
    assert not torch.allclose(model(changed_audio, visual).audio_emb[0, 0], base[0, 0])


def test_fused_han_layer_equals_two_multihead_attention_calls():
    """The fused layer computes what nn.MultiheadAttention (self, then cross) + LayerNorm + feed-forward do."""
    torch.manual_seed(0)
    layer = HybridAttentionLayer(d_model=12, num_heads=3, d_ff=20, dropout=0.3).eval()
    for p in layer.parameters():  # away from the default init (zero biases) so that every term counts
        torch.nn.init.normal_(p, std=0.3)
    audio, visual = torch.randn(4, 7, 12), torch.randn(4, 7, 12)

    def reference(x, other):
        s = layer.self_attn(x, x, x, need_weights=False)[0]
        c = layer.cross_attn(x, other, other, need_weights=False)[0]
        x = layer.norm_attn(x + s + c)
        return layer.norm_ff(x + layer.feed_forward(x))

    got = layer(torch.cat([audio, visual]))
    torch.testing.assert_close(got[:4], reference(audio, visual), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got[4:], reference(visual, audio), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="divisible"):
        HybridAttentionLayer(d_model=10, num_heads=3, d_ff=8, dropout=0.0)


def test_cpu_dropout_rate_scale_gradient_and_seed():
    drop = Dropout(0.3).train()
    x = torch.full((400, 1000), 2.0, requires_grad=True)
    torch.manual_seed(5)
    y = drop(x)
    dropped = (y == 0).float().mean().item()
    # 400,000 draws: the rate is 0.3 within 5 standard deviations (sd = sqrt(0.3 * 0.7 / 4e5) = 7.2e-4)
    assert abs(dropped - 0.3) < 5 * 7.2e-4
    assert torch.allclose(y[y != 0], torch.tensor(2.0 / 0.7))  # kept values scaled by 1 / (1 - p)
    y.sum().backward()
    assert torch.equal(x.grad, (y / 2.0).detach())  # d y / d x is the scaled mask
    torch.manual_seed(5)
    assert torch.equal(drop(x), y)  # the global seed decides the mask: runs are reproducible
    assert not torch.equal(drop(x), y)
    odd = torch.ones(3, 5, 7)  # a size that is not a multiple of four 16-bit draws
    assert drop(odd).shape == odd.shape
    assert torch.equal(drop.eval()(x), x) and torch.equal(Dropout(0.0).train()(x), x)
    with pytest.raises(ValueError):
        Dropout(1.0)


def test_keep_freed_memory_sets_glibc_thresholds():
    import platform

    from ecma.device import keep_freed_memory

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    assert keep_freed_memory() is True
