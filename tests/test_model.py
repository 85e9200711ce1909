"""The HAN + MMIL forward pass against the head's formulas computed by hand from its own weights."""

import torch

from ecma.config import ModelConfig
from ecma.model import ECMANet


def test_mmil_pooling_matches_the_formulas():
    torch.manual_seed(0)
    cfg = ModelConfig(audio_dim=7, visual_dim=5, num_classes=4, d_model=8, num_layers=2, num_heads=2, d_ff=16, dropout=0.0)
    model = ECMANet(cfg).eval()
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
    assert torch.allclose(out.audio_prob, (w_t[:, :, 0] * p[:, :, 0]).sum(dim=1), atol=1e-6)
    assert torch.allclose(out.visual_prob, (w_t[:, :, 1] * p[:, :, 1]).sum(dim=1), atol=1e-6)
    for prob in (out.video_prob, out.audio_prob, out.visual_prob, out.segment_prob):
        assert prob.min() >= 0 and prob.max() <= 1


def test_han_layer_mixes_modalities_and_time():
    torch.manual_seed(0)
    cfg = ModelConfig(audio_dim=4, visual_dim=4, num_classes=3, d_model=8, num_layers=1, num_heads=2, d_ff=8, dropout=0.0)
    model = ECMANet(cfg).eval()
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
