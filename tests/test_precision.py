"""Mixed precision: where bf16 autocast is chosen, and what stays float32 under it."""

import pytest
import torch

import ecma.device
from ecma.config import ModelConfig
from ecma.device import amp_dtype, autocast, precision_name
from ecma.models.han.network import HANNet

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("native", [True, False])
def test_bf16_only_where_asked_for_and_native(monkeypatch, native):
    monkeypatch.setattr(ecma.device, "cpu_has_native_bf16", lambda: native)
    assert amp_dtype(CPU, True) == (torch.bfloat16 if native else None)
    assert amp_dtype(CPU, False) is None
    assert amp_dtype(CUDA, True) == torch.bfloat16
    assert amp_dtype(CUDA, False) is None


def test_precision_names():
    assert precision_name(None) == "float32"
    assert precision_name(torch.bfloat16) == "bf16-autocast"
    assert precision_name(torch.float16) == "fp16-autocast"


def test_native_bf16_check_agrees_with_the_kernel_cpu_flags():
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo flags on this system")
    if "avx512_bf16" in flags:
        assert ecma.device.cpu_has_native_bf16() is True
    elif "amx_tile" not in flags:  # (AMX alone: torch may also ask the kernel for tile permission)
        assert ecma.device.cpu_has_native_bf16() is False


def test_under_cpu_autocast_matmuls_are_bf16_and_the_rest_float32():
    torch.manual_seed(0)
    cfg = ModelConfig(audio_dim=12, visual_dim=10, num_classes=5, d_model=16, num_layers=2, num_heads=2, d_ff=32, dropout=0.0)
    model = HANNet(cfg).eval()
    a, v = torch.randn(3, 10, 12), torch.randn(3, 10, 10)
    seen = []
    model.encoder.layers[0].feed_forward[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    with torch.no_grad():
        exact = model(a, v)
        with autocast(CPU, torch.bfloat16):
            mixed = model(a, v)
    assert seen == [torch.float32, torch.bfloat16]  # the matmul really ran in bf16 the second time
    for name in ("video_prob", "a_prob", "v_prob", "segment_prob", "audio_emb", "visual_emb"):
        got, want = getattr(mixed, name), getattr(exact, name)
        assert got.dtype == torch.float32, name
        # bf16 keeps 8 significant bits: ~0.4% relative per rounding, a few percent through two layers
        assert torch.allclose(got, want, atol=0.05), (name, (got - want).abs().max())
        assert not torch.equal(got, want), name  # the bf16 path was taken
    # the head ran in float32 on the embeddings: its probabilities are exactly float32's from those
    with torch.no_grad():
        x = torch.stack([mixed.audio_emb, mixed.visual_emb], dim=2)
        assert torch.equal(mixed.segment_prob, torch.sigmoid(model.head.classifier(x)))


def test_float64_models_stay_float64():
    cfg = ModelConfig(audio_dim=6, visual_dim=6, num_classes=3, d_model=8, num_layers=1, num_heads=2, d_ff=8, dropout=0.0)
    out = HANNet(cfg).double().eval()(torch.randn(2, 10, 6, dtype=torch.float64), torch.randn(2, 10, 6, dtype=torch.float64))
    assert out.segment_prob.dtype == out.audio_emb.dtype == torch.float64
