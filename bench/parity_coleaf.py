"""Forward parity of ecma's CoLeaF backbone with CoLeaF's own main network.

    python bench/parity_coleaf.py --reference PATH_TO_COLEAF_CHECKOUT [--batch 4] [--seeds 3] [--float64]
                                  [--no-step]

Builds the reference's ``MMIL_Net`` on the CPU from the checkout (its module imported by path, with its own
random initialisation), maps its state dict into ``CoLeaFNet`` with ``import_coleaf_state_dict``, and
compares both networks in eval mode on the same random inputs of HAN's feature shapes (10 x 128 audio,
80 x 2048 frame-level and 10 x 512 clip-level visual): the video, modality-level and segment-level
probabilities and uncertainties and the normalised embeddings, without cross-attention (with_ca=False), with
it (with_ca=True, CoLeaF's 0.8/0.2 mix) and fused as CoLeaF's eval() fuses the two (fuse_ratio 0.7).
Nothing of the checkpoint is copied into this repository.

Then (unless --no-step) one training epoch of two batches, both ways, from the same weights: the reference's
own ``train()`` of ``main.py`` (its device moved to the CPU by patching ``Tensor.to``/``.cuda``, its logging
modules stubbed) and ``ecma.models.coleaf.step.coleaf_train_step``, at epochs 1, 2 and 5 (1-based: basic
terms only; with the collaborative terms and denoising; after the auxiliary warm-up). Dropout is off in all
six networks so that both sides compute the same thing, and SGD (lr 1e-3) replaces Adam so that the weights'
change is the gradient: the figure is the largest difference of (w_after - w_before) / lr, i.e. of the
gradients, of the main and both auxiliary networks.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from coleaf_reference import load_reference, load_reference_training, without_dropout  # noqa: E402

from ecma.models.coleaf.network import CoLeaFNet  # noqa: E402
from ecma.config import ModelConfig, config_from_dict  # noqa: E402
from ecma.models.coleaf.settings import REFERENCE_FEATURE_SIZES  # noqa: E402
from ecma.models.coleaf.checkpoint_import import import_coleaf_aux_state_dict, import_coleaf_state_dict  # noqa: E402
from ecma.models.coleaf.losses import load_noise_ratios  # noqa: E402
from ecma.models.coleaf.step import CoLeaFNets, CoLeaFOptimizers, coleaf_train_step  # noqa: E402

TARGET = 1e-5


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


def step_parity(checkout: Path, seeds: int, lr: float = 1e-3, batch: int = 32, steps: int = 2) -> dict[str, float]:
    """Largest |gradient difference| per (epoch, network) over ``seeds``, and the largest gradient."""
    import argparse as _argparse

    ref_main = load_reference_training(checkout)
    nets_module = sys.modules[ref_main.MMIL_Net.__module__]
    cfg = config_from_dict({"model": {**REFERENCE_FEATURE_SIZES, "dropout": 0.0, "classifier_dropout": 0.0,
                                      "interaction_dropout": 0.0}})
    m = cfg.model
    args = _argparse.Namespace(
        noise_ratio_file=str(checkout / "noise_ratios.npz"), warm_up_epoch=0.9, clamp=1e-7, second_warm_up_epoch=3,
        audio_weight=2.0, visual_weight=1.0, video_weight=2.0, nce_weight=1.0, mutual_weight=1.0,
        log_interval=10**9, without_wandb=True,
    )
    ratios = load_noise_ratios("han", m.num_classes)
    worst: dict[str, float] = {}
    for seed in range(seeds):
        for epoch in (1, 2, 5):
            torch.manual_seed(seed)
            theirs = [without_dropout(net) for net in (nets_module.MMIL_Net(m.num_layers), nets_module.Self_Audio_Net(m.num_layers),
                                                      nets_module.Self_Video_Net(m.num_layers))]
            ours = CoLeaFNets.build(m)
            ours.main.load_state_dict(import_coleaf_state_dict(theirs[0].state_dict(), m))
            ours.audio_only.load_state_dict(import_coleaf_aux_state_dict(theirs[1].state_dict(), m, "audio"))
            ours.visual_only.load_state_dict(import_coleaf_aux_state_dict(theirs[2].state_dict(), m, "visual"))
            before = [{k: v.clone() for k, v in net.state_dict().items()} for net in (ours.main, ours.audio_only, ours.visual_only)]
            g = torch.Generator().manual_seed(1000 + seed)
            loader = []
            for _ in range(steps):
                y = (torch.rand(batch, m.num_classes, generator=g) < 0.3).double()
                loader.append({
                    "audio": torch.randn(batch, 10, m.audio_dim, generator=g),
                    "video_s": torch.randn(batch, 10 * m.visual_frames_per_segment, m.visual_dim, generator=g),
                    "video_st": torch.randn(batch, 10, m.visual_3d_dim, generator=g),
                    "label": y, "Pa": y * 1.0 + 0.0, "Pv": y * 0.9 + 0.05,
                })
            criterions = [torch.nn.BCELoss(), ref_main.AsymmetricLoss(), ref_main.cc_loss, ref_main.NCE_loss,
                          ref_main.MutualLearningLoss(eta=1.0)]
            sgd = [torch.optim.SGD(net.parameters(), lr=lr) for net in theirs]
            ref_main.train(args, *theirs, [dict(s, Pa=s["Pa"].clone(), Pv=s["Pv"].clone()) for s in loader],
                           *sgd, criterions, epoch=epoch)
            ours.train()
            optimizers = CoLeaFOptimizers(*(torch.optim.SGD(net.parameters(), lr=lr) for net in (ours.main, ours.audio_only, ours.visual_only)))
            for step, sample in enumerate(loader):
                coleaf_train_step(ours, optimizers, sample["audio"], sample["video_s"], sample["video_st"], sample["label"].float(),
                                  cfg, epoch=epoch - 1, step=step, steps_per_epoch=steps, noise_ratios=ratios)
            mapped = [import_coleaf_state_dict(theirs[0].state_dict(), m),
                      import_coleaf_aux_state_dict(theirs[1].state_dict(), m, "audio"),
                      import_coleaf_aux_state_dict(theirs[2].state_dict(), m, "visual")]
            for name, net, ref_after, init in zip(("main", "audio-only", "visual-only"), (ours.main, ours.audio_only, ours.visual_only), mapped, before):
                ours_after = net.state_dict()
                diff = max(((ours_after[k] - ref_after[k]).abs().max().item() for k in init), default=0.0) / lr
                grad = max(((ref_after[k] - init[k]).abs().max().item() for k in init), default=0.0) / lr
                key = f"epoch {epoch}/{name}"
                worst[key] = max(worst.get(key, 0.0), diff)
                worst[key + " (largest gradient)"] = max(worst.get(key + " (largest gradient)", 0.0), grad)
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", required=True, type=Path, help="a checkout of github.com/faeghehsardari/coleaf")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--float64", action="store_true", help="both networks in float64 (isolates rounding)")
    ap.add_argument("--no-step", action="store_true", help="skip the training-step comparison")
    args = ap.parse_args()
    torch.set_num_threads(2)
    dtype = torch.float64 if args.float64 else torch.float32
    module = load_reference(args.reference)
    cfg = ModelConfig(**REFERENCE_FEATURE_SIZES)  # HAN's shapes: 128, 2048 x 8 frames, 512; d 512, one layer, one head
    worst: dict[str, float] = {}
    for seed in range(args.seeds):
        torch.manual_seed(seed)
        ref = module.MMIL_Net(num_layers=cfg.num_layers).eval().to(dtype)
        ours = CoLeaFNet(cfg)
        ours.load_state_dict(import_coleaf_state_dict(ref.state_dict(), cfg), strict=True)
        ours = ours.eval().to(dtype)
        b, t = args.batch, 10
        audio = torch.randn(b, t, cfg.audio_dim, dtype=dtype)
        visual = torch.randn(b, t * cfg.visual_frames_per_segment, cfg.visual_dim, dtype=dtype)
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
    ok = overall < TARGET
    if not args.no_step:
        print("\none training epoch of 2 batches of 32, dropout off, SGD lr 1e-3: max |gradient difference|")
        for key, value in step_parity(args.reference, args.seeds).items():
            print(f"{key:44s} {value:.3e}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
