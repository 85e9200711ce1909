"""The EMA update and both pseudo-mask rules on hand-made tensors."""

import pytest
import torch
from torch import nn

from ecma.training.ema import ema_update_, make_teacher
from ecma.training.pseudo_masks import mask_density, pseudo_masks


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, -2.0]))
        self.register_buffer("count", torch.tensor(0.0))


def test_ema_update_follows_the_formula_and_copies_buffers():
    student = Tiny()
    teacher = make_teacher(student)
    assert not any(p.requires_grad for p in teacher.parameters())
    assert not teacher.training
    with torch.no_grad():
        student.w.copy_(torch.tensor([3.0, 0.0]))
        student.count.fill_(7.0)
    ema_update_(teacher, student, 0.9)
    # 0.9 * [1, -2] + 0.1 * [3, 0]
    assert torch.allclose(teacher.w, torch.tensor([1.2, -1.8]))
    assert teacher.count.item() == 7.0
    ema_update_(teacher, student, 0.9)
    assert torch.allclose(teacher.w, torch.tensor([0.9 * 1.2 + 0.3, 0.9 * -1.8]))
    ema_update_(teacher, student, 0.0)  # alpha 0: the teacher becomes the student
    assert torch.equal(teacher.w, student.w.detach())
    with pytest.raises(ValueError):
        ema_update_(teacher, student, 1.0)


def _seg(fused_a, fused_v):
    """(1, T, 2, C) from per-modality (T, C) lists."""
    return torch.stack([torch.tensor(fused_a), torch.tensor(fused_v)], dim=1)[None]


def test_adaptive_masks_threshold_at_gamma_times_the_temporal_mean():
    # class 0: fused = [0.8, 0.2, 0.5, 0.1] -> mean 0.4; class 1: fused = [0.3, 0.3, 0.3, 0.3] -> mean 0.3
    a = [[0.8, 0.3], [0.2, 0.3], [0.6, 0.3], [0.1, 0.3]]
    v = [[0.8, 0.3], [0.2, 0.3], [0.4, 0.3], [0.1, 0.3]]
    y = torch.tensor([[1.0, 1.0]])
    m = pseudo_masks(_seg(a, v), y, rule="adaptive", gamma=1.0)
    assert m[0, :, 0].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert m[0, :, 1].tolist() == [1.0, 1.0, 1.0, 1.0]  # P >= tau includes equality
    m = pseudo_masks(_seg(a, v), y, rule="adaptive", gamma=1.5)  # tau_0 = 0.6
    assert m[0, :, 0].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert m[0, :, 1].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_topk_masks_mark_the_k_highest_segments():
    a = [[0.9, 0.1], [0.1, 0.2], [0.5, 0.3], [0.7, 0.4]]
    y = torch.tensor([[1.0, 1.0]])
    m = pseudo_masks(_seg(a, a), y, rule="topk", k=2)
    assert m[0, :, 0].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert m[0, :, 1].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert pseudo_masks(_seg(a, a), y, rule="topk", k=9).sum().item() == 8.0  # k > T: every segment


def test_masks_are_restricted_to_labelled_classes_unless_asked_not_to():
    a = [[0.9, 0.9], [0.1, 0.1]]
    y = torch.tensor([[0.0, 1.0]])
    m = pseudo_masks(_seg(a, a), y, rule="topk", k=1)
    assert m[0, :, 0].tolist() == [0.0, 0.0]
    assert m[0, :, 1].tolist() == [1.0, 0.0]
    m = pseudo_masks(_seg(a, a), y, rule="topk", k=1, restrict_to_labels=False)
    assert m[0, :, 0].tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="unknown pseudo-mask rule"):
        pseudo_masks(_seg(a, a), y, rule="median")


def test_mask_density_counts_real_segments_only():
    masks = torch.zeros(2, 4, 3)
    masks[0, 0, :] = 1.0  # 3 of 12 cells
    masks[1, :2, 0] = 1.0  # 2 cells; the second video has 2 real segments of 4: 2 of 6
    segment_mask = torch.tensor([[True] * 4, [True, True, False, False]])
    assert torch.allclose(mask_density(masks, segment_mask), torch.tensor([3 / 12, 2 / 6]))
    assert torch.allclose(mask_density(masks), torch.tensor([3 / 12, 2 / 12]))  # equal lengths: the plain mean
