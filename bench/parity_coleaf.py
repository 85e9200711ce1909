"""Forward parity of ecma's CoLeaF backbone with CoLeaF's own main network.

    python bench/parity_coleaf.py --reference PATH_TO_COLEAF_CHECKOUT [--batch 4] [--seeds 3] [--float64]

Builds the reference's ``MMIL_Net`` on the CPU from the checkout (its module imported by path, with its own
random initialisation), maps its state dict into ``CoLeaFNet`` with ``import_coleaf_state_dict``, and
compares both networks in eval mode on the same random inputs of HAN's feature shapes (10 x 128 audio,
80 x 2048 frame-level and 10 x 512 clip-level visual): the video, modality-level and segment-level
probabilities and uncertainties and the normalised embeddings, without cross-attention (with_ca=False), with
it (with_ca=True, CoLeaF's 0.8/0.2 mix) and fused as CoLeaF's eval() fuses the two (fuse_ratio 0.7).
Nothing of the checkpoint is copied into this repository.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecma.models.coleaf import CoLeaFNet  # noqa: E402
from ecma.models.coleaf_config import CoLeaFModelConfig  # noqa: E402
from ecma.models.coleaf_import import import_coleaf_state_dict  # noqa: E402

TARGET = 1e-5


def load_reference(checkout: Path):
    path = checkout / "nets" / "net_audiovisual.py"
    if not path.is_file():
        sys.exit(f"{path}: not found (is --reference a CoLeaF checkout?)")
    spec = importlib.util.spec_from_file_location("coleaf_reference_nets", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_outputs(ref, audio, visual, visual_3d, fuse_ratio):
    names = ("video_prob", "a_prob", "v_prob", "segment_prob", "audio_emb", "visual_emb", "_a_after", "_v_after",
             "video_uncertainty", "a_uncertainty", "v_uncertainty", "segment_uncertainty")
    on = dict(zip(names, ref(audio, visual, visual_3d, with_ca=True)))
    off = dict(zip(names, ref(audio, visual, visual_3d, with_ca=False)))
    fused = {k: on[k] * fuse_ratio + off[k] * (1 - fuse_ratio) for k in ("a_prob", "v_prob", "segment_prob")}
    return {"mixed": on, "off": off, "fused": fused}


def ours_outputs(model, audio, visual, visual_3d):
    result = {}
    for passes in ("mixed", "off", "fused"):
        out = model(audio, visual, visual_3d, passes=passes)
        d = {k: getattr(out, k) for k in ("video_prob", "a_prob", "v_prob", "segment_prob", "video_uncertainty",
                                           "a_uncertainty", "v_uncertainty", "segment_uncertainty")}
        d["audio_emb"] = F.normalize(out.audio_emb, p=2, dim=-1)  # the reference returns them normalised
        d["visual_emb"] = F.normalize(out.visual_emb, p=2, dim=-1)
        result[passes] = d
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", required=True, type=Path, help="a checkout of github.com/faeghehsardari/coleaf")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--float64", action="store_true", help="both networks in float64 (isolates rounding)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    dtype = torch.float64 if args.float64 else torch.float32
    module = load_reference(args.reference)
    cfg = CoLeaFModelConfig()  # HAN's shapes: 128, 2048 x 8 frames, 512; d 512, one layer, one head
    worst: dict[str, float] = {}
    for seed in range(args.seeds):
        torch.manual_seed(seed)
        ref = module.MMIL_Net(num_layers=cfg.num_layers).eval().to(dtype)
        ours = CoLeaFNet(cfg)
        ours.load_state_dict(import_coleaf_state_dict(ref.state_dict(), cfg), strict=True)
        ours = ours.eval().to(dtype)
        b, t = args.batch, 10
        audio = torch.randn(b, t, cfg.audio_dim, dtype=dtype)
        visual = torch.randn(b, t * cfg.frames_per_segment, cfg.visual_dim, dtype=dtype)
        visual_3d = torch.randn(b, t, cfg.visual_3d_dim, dtype=dtype)
        with torch.no_grad():
            theirs = reference_outputs(ref, audio, visual, visual_3d, cfg.fuse_ratio)
            mine = ours_outputs(ours, audio, visual, visual_3d)
        for passes, values in theirs.items():
            for name, ref_value in values.items():
                if name.startswith("_"):
                    continue
                diff = (mine[passes][name] - ref_value).abs().max().item()
                key = f"{passes}/{name}"
                worst[key] = max(worst.get(key, 0.0), diff)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {dtype}, "
          f"{args.seeds} seeds x batch {args.batch}")
    print(f"{'output':34s} max abs diff")
    for key, diff in worst.items():
        print(f"{key:34s} {diff:.3e}")
    overall = max(worst.values())
    print(f"largest: {overall:.3e} (target < {TARGET:g}): {'met' if overall < TARGET else 'NOT MET'}")
    sys.exit(0 if overall < TARGET else 1)


if __name__ == "__main__":
    main()
