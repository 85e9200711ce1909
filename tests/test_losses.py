"""Each loss equation on hand-made tensors, against values computed by hand."""

import math

import pytest
import torch

from ecma.config import LossConfig
from ecma.models.contracts import ModelOutput
from ecma.models.han.losses import avvp_loss
from ecma.models.layers import smooth_labels
from ecma.training.losses import cma_loss, cma_pairs, ecma_loss, pseudo_loss
from ecma.registry import variant, variants

VARIANT_TABLE = variants()


def bce(p, y):
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def _out(video, audio, visual, seg, a_emb=None, v_emb=None):
    B, T = seg.shape[0], seg.shape[1]
    a_emb = a_emb if a_emb is not None else torch.ones(B, T, 2)
    v_emb = v_emb if v_emb is not None else torch.ones(B, T, 2)
    return ModelOutput(torch.tensor(video), torch.tensor(audio), torch.tensor(visual), seg, a_emb, v_emb)


def test_smooth_labels_gives_hans_visual_target():
    y = torch.tensor([0.0, 1.0])
    assert torch.allclose(smooth_labels(y, 0.1), torch.tensor([0.05, 0.95]))
    assert torch.equal(smooth_labels(y, 0.0), y)


def test_avvp_loss_by_hand():
    y = torch.tensor([[1.0, 0.0]])
    out = _out([[0.8, 0.3]], [[0.6, 0.1]], [[0.7, 0.2]], torch.zeros(1, 1, 2, 2))
    expected = (
        (bce(0.8, 1) + bce(0.3, 0)) / 2
        + (bce(0.6, 1) + bce(0.1, 0)) / 2
        + (bce(0.7, 0.95) + bce(0.2, 0.05)) / 2
    )
    assert avvp_loss(out, y, 0.0, 0.1).item() == pytest.approx(expected, rel=1e-6)


def test_pseudo_loss_is_the_masked_mean_of_bce_to_one_on_fused_probs():
    seg = torch.zeros(1, 3, 2, 2)
    seg[0, :, 0, 0] = torch.tensor([0.9, 0.5, 0.1])  # audio, class 0
    seg[0, :, 1, 0] = torch.tensor([0.7, 0.3, 0.1])  # visual, class 0 -> fused 0.8, 0.4, 0.1
    seg[0, :, 0, 1] = 0.6
    seg[0, :, 1, 1] = 0.2  # fused 0.4
    masks = torch.zeros(1, 3, 2)
    masks[0, 0, 0] = masks[0, 1, 0] = masks[0, 2, 1] = 1.0
    expected = (-math.log(0.8) - math.log(0.4) - math.log(0.4)) / 3
    assert pseudo_loss(seg, masks).item() == pytest.approx(expected, rel=1e-6)


def test_pseudo_loss_is_zero_for_an_empty_mask_and_still_differentiable():
    seg = torch.full((2, 3, 2, 4), 0.3, requires_grad=True)
    loss = pseudo_loss(seg, torch.zeros(2, 3, 4))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.count_nonzero(seg.grad) == 0


def test_cma_pairs_need_both_modalities_above_threshold_and_the_label():
    seg = torch.zeros(1, 2, 2, 3)
    seg[0, 0, 0] = torch.tensor([0.9, 0.9, 0.9])  # audio at t=0
    seg[0, 0, 1] = torch.tensor([0.9, 0.5, 0.9])  # visual at t=0: class 1 exactly at tau (strict >)
    seg[0, 1, 0] = torch.tensor([0.4, 0.9, 0.9])
    seg[0, 1, 1] = torch.tensor([0.9, 0.9, 0.9])
    y = torch.tensor([[1.0, 1.0, 0.0]])  # class 2 is not in the label
    omega = cma_pairs(seg, y, 0.5, 0.5)
    expected = torch.tensor([[[True, False, False], [False, True, False]]])
    assert torch.equal(omega, expected)


def test_cma_loss_is_the_mean_of_one_minus_cosine_over_omega():
    seg = torch.full((1, 3, 2, 2), 0.9)
    seg[0, 2, 0, :] = 0.1  # t=2 has no pair
    y = torch.tensor([[1.0, 1.0]])
    a = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]])
    v = torch.tensor([[[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]]])  # cos 1, 0, -1
    out = ModelOutput(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), seg, a, v)
    # Omega = {(0,0),(0,1),(1,0),(1,1)}: (1-1)*2 + (1-0)*2 over 4 pairs
    assert cma_loss(out, y).item() == pytest.approx(0.5, abs=1e-6)
    y0 = torch.zeros(1, 2)
    assert cma_loss(out, y0).item() == 0.0


def test_ecma_loss_weights_and_switches():
    torch.manual_seed(0)
    seg = torch.rand(2, 4, 2, 3) * 0.98 + 0.01
    out = ModelOutput(torch.rand(2, 3) * 0.9 + 0.05, torch.rand(2, 3) * 0.9 + 0.05, torch.rand(2, 3) * 0.9 + 0.05,
                      seg, torch.randn(2, 4, 5), torch.randn(2, 4, 5))
    y = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    masks = torch.ones(2, 4, 3)
    cfg = LossConfig(w_avvp=0.5, w_pseudo=2.0, w_cma=3.0, cma_tau_a=0.0, cma_tau_v=0.0)
    total, t = ecma_loss(out, y, cfg, masks=masks, use_cma=True)
    assert total.item() == pytest.approx(2.0 * t["pseudo"].item() + 3.0 * t["cma"].item(), rel=1e-6)
    assert t["pseudo"].item() == pytest.approx(pseudo_loss(seg, masks).item()) and t["cma"].item() > 0
    total, off = ecma_loss(out, y, cfg, masks=None, use_cma=False)
    assert off["pseudo"].item() == 0.0 and off["cma"].item() == 0.0 and total.item() == 0.0


def test_variants_name_their_backbone_and_the_terms_they_switch_on():
    table = {name: (v.backbone, v.terms) for name, v in VARIANT_TABLE.items()}
    assert table == {
        "coleaf": ("coleaf", ()), "no_cma": ("coleaf", ("pseudo",)), "no_ema": ("coleaf", ("cma",)),
        "ecma": ("coleaf", ("pseudo", "cma")),
        "han": ("han", ()), "han_no_cma": ("han", ("pseudo",)), "han_no_ema": ("han", ("cma",)),
        "han_ecma": ("han", ("pseudo", "cma")),
    }
    assert list(VARIANT_TABLE)[:4] == ["coleaf", "no_cma", "no_ema", "ecma"]  # Table 3's rows, in its order
    with pytest.raises(ValueError, match="unknown variant"):
        variant("full")
