"""Running CoLeaF's released code (github faeghehsardari/coleaf) from a checkout, on the CPU, for the bench scripts.

Nothing of the checkout is copied here: its modules are imported by path from ``--reference PATH``. Shared by
``parity_coleaf.py`` (forward and gradient parity), ``bench_train.py --reference`` (its training loop's speed)
and ``parity_learning.py`` (what its training loop learns).

- :func:`load_reference`: ``nets/net_audiovisual.py`` as a module (``MMIL_Net``, ``Self_Audio_Net``, ...).
- :func:`load_reference_training`: ``main.py`` as a module, its ``'cuda'`` moves made no-ops and its logging
  modules (``wandb``, ``openpyxl``) stubbed, so that its own ``train()`` runs on the CPU.
- :func:`reference_args`: the option namespace of its ``option.py`` defaults (its own parser).
- :func:`ReferenceSetup`: the three networks, their Adams and StepLRs and the criterions, built as its
  ``main()`` builds them.
- :class:`BatchLoader`: in-memory features served as its ``LLP_dataset``/``DataLoader`` serve them (dicts of
  ``audio``, ``video_s``, ``video_st``, ``label``, ``Pa``, ``Pv``), timing each batch.
- :func:`reference_eval_outputs`: the fused outputs its ``eval()`` computes (with and without cross-attention,
  mixed by ``fuse_ratio``).
- :meth:`ReferenceSetup.validate`: its own ``eval()`` (the validation its ``main()`` runs after every epoch's
  ``train()``) on in-memory features, the truth written to the tab-separated files it reads.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


def _check(checkout: Path, rel: str) -> Path:
    path = Path(checkout) / rel
    if not path.is_file():
        sys.exit(f"{path}: not found (is --reference a CoLeaF checkout?)")
    return path


def load_reference(checkout: Path):
    """The checkout's ``nets/net_audiovisual.py`` as a module."""
    path = _check(checkout, "nets/net_audiovisual.py")
    spec = importlib.util.spec_from_file_location("coleaf_reference_nets", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_MAIN = None


def load_reference_training(checkout: Path):
    """CoLeaF's main.py as a module, on the CPU: logging modules stubbed, 'cuda' moves made no-ops.

    Patches ``torch.Tensor.to`` and ``.cuda`` for the whole process (the reference hard-codes ``'cuda'``);
    loaded once per process."""
    global _MAIN
    if _MAIN is not None:
        return _MAIN
    path = _check(checkout, "main.py")
    for name in ("wandb", "openpyxl"):
        stub = types.ModuleType(name)
        stub.load_workbook = None
        sys.modules.setdefault(name, stub)
    original_to = torch.Tensor.to

    def to_cpu(self, *args, **kwargs):
        args = tuple("cpu" if a == "cuda" else a for a in args)
        if kwargs.get("device") == "cuda":
            kwargs["device"] = "cpu"
        return original_to(self, *args, **kwargs)

    torch.Tensor.to = to_cpu
    torch.Tensor.cuda = lambda self, *a, **k: self
    sys.path.insert(0, str(Path(checkout)))
    spec = importlib.util.spec_from_file_location("coleaf_reference_main", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _MAIN = module
    return module


def reference_args(checkout: Path, ref_main, **overrides):
    """Its ``option.build_args()`` defaults (parsed by its own parser), logging off, paths into the checkout."""
    saved = sys.argv
    sys.argv = ["main.py", "--without_wandb"]
    try:
        args = ref_main.build_args()
    finally:
        sys.argv = saved
    args.noise_ratio_file = str(Path(checkout) / "noise_ratios.npz")
    args.with_ca = True  # main() sets it before training
    for k, v in overrides.items():
        setattr(args, k, v)
    return args


def without_dropout(net: torch.nn.Module) -> torch.nn.Module:
    for m in net.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
        if isinstance(m, torch.nn.MultiheadAttention):
            m.dropout = 0.0
    return net


@dataclass
class ReferenceSetup:
    """The reference's three networks, optimisers, schedulers and criterions, as its ``main()`` builds them."""

    ref: types.ModuleType
    args: object
    model: torch.nn.Module
    a_model: torch.nn.Module
    v_model: torch.nn.Module
    optimizers: list
    schedulers: list
    criterions: list

    @classmethod
    def build(cls, checkout: Path, seed: int, **overrides) -> "ReferenceSetup":
        ref = load_reference_training(checkout)
        args = reference_args(checkout, ref, **overrides)
        ref.set_random_seed(seed)
        model = ref.MMIL_Net(args.num_layers, args.temperature)
        a_model = ref.Self_Audio_Net(num_layers=args.num_layers, temperature=args.temperature)
        v_model = ref.Self_Video_Net(num_layers=args.num_layers, temperature=args.temperature)
        optimizers = [torch.optim.Adam(m.parameters(), lr=args.lr, weight_decay=args.weight_decay)
                      for m in (model, a_model, v_model)]
        schedulers = [torch.optim.lr_scheduler.StepLR(o, step_size=args.lr_step_size, gamma=args.lr_gamma) for o in optimizers]
        criterions = [torch.nn.BCELoss(), ref.AsymmetricLoss(), ref.cc_loss, ref.NCE_loss,
                      ref.MutualLearningLoss(eta=args.mutual_eta)]
        return cls(ref, args, model, a_model, v_model, optimizers, schedulers, criterions)

    def train_epoch(self, loader, epoch: int) -> None:
        """Its own ``train()`` for one epoch (1-based, as its main() counts), then its schedulers' step."""
        self.ref.train(self.args, self.model, self.a_model, self.v_model, loader, *self.optimizers, self.criterions, epoch=epoch)
        for s in self.schedulers:
            s.step()

    def validate(self, audio, visual, visual_3d, labels, gt_audio, gt_visual, workdir: Path) -> float:
        """Its own ``eval()`` over these videos, as its ``main()`` validates after each epoch; returns its
        selection score (the mean of its ten audible/visible-only metrics).

        The truth goes to the files its ``eval()`` reads (``--label_val``, ``--eval_audio``, ``--eval_video``, in
        LLP's tab-separated layout) under ``workdir``; the videos are served one at a time, as its validation
        DataLoader serves them (batch 1, in the file's order)."""
        names = self.ref.categories
        video_ids = [f"v{i:011d}" for i in range(len(labels))]
        workdir.mkdir(parents=True, exist_ok=True)
        weak = ["filename\tevent_labels"] + [
            f"{vid}\t{','.join(names[c] for c in np.flatnonzero(row))}" for vid, row in zip(video_ids, labels)]
        (workdir / "val.csv").write_text("\n".join(weak) + "\n")
        for key, truth in (("eval_audio", gt_audio), ("eval_video", gt_visual)):
            rows = ["filename\tonset\toffset\tevent_labels"]
            for vid, per_class in zip(video_ids, truth):  # (C, T): each run of ones is one event
                for c, seq in enumerate(per_class):
                    edges = np.flatnonzero(np.diff(np.concatenate([[0], seq, [0]])))
                    rows += [f"{vid}\t{on}\t{off}\t{names[c]}" for on, off in zip(edges[::2], edges[1::2])]
            (workdir / f"{key}.csv").write_text("\n".join(rows) + "\n")
            setattr(self.args, key, str(workdir / f"{key}.csv"))
        self.args.label_val = str(workdir / "val.csv")

        def one_by_one():
            for i in range(len(labels)):
                yield {"audio": torch.from_numpy(audio[i : i + 1]), "video_s": torch.from_numpy(visual[i : i + 1]),
                       "video_st": torch.from_numpy(visual_3d[i : i + 1]),
                       "label": torch.from_numpy(labels[i : i + 1].astype(np.float64))}

        score = self.ref.eval(self.args, self.model, one_by_one(), self.args.label_val)
        self.model.train()
        return float(score[-1])  # its eval() returns the ten metrics and their mean, last


class BatchLoader:
    """In-memory features served as the reference's loader serves them: shuffled batches of dicts with
    ``audio`` (B, T, 128), ``video_s`` (B, 8T, 2048), ``video_st`` (B, T, 512), ``label`` (float64, as its
    ``ids_to_multinomial``), ``Pa`` = a_smooth y + (1 - a_smooth) / 2 and ``Pv`` likewise (its dataloader.py).

    ``max_batches`` stops early; ``times`` holds ``time.perf_counter()`` at each batch handed out and at the end
    of the iteration (so ``diff(times)[i]`` is the reference's step on batch i, loading included)."""

    def __init__(self, audio, visual, visual_3d, labels, batch_size, *, a_smooth, v_smooth, seed=0, max_batches=None):
        self.audio, self.visual, self.visual_3d, self.labels = audio, visual, visual_3d, labels
        self.batch_size, self.a_smooth, self.v_smooth = batch_size, a_smooth, v_smooth
        self.generator = torch.Generator().manual_seed(seed)
        n = len(labels)
        self.n_batches = -(-n // batch_size) if max_batches is None else min(max_batches, -(-n // batch_size))
        self.times: list[float] = []

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self):
        order = torch.randperm(len(self.labels), generator=self.generator).numpy()
        self.times = []
        for b in range(self.n_batches):
            idx = np.sort(order[b * self.batch_size : (b + 1) * self.batch_size])
            label = torch.from_numpy(self.labels[idx].astype(np.float64))
            sample = {"audio": torch.from_numpy(self.audio[idx]), "video_s": torch.from_numpy(self.visual[idx]),
                      "video_st": torch.from_numpy(self.visual_3d[idx]), "label": label,
                      "Pa": self.a_smooth * label + (1 - self.a_smooth) * 0.5,
                      "Pv": self.v_smooth * label + (1 - self.v_smooth) * 0.5}
            self.times.append(time.perf_counter())
            yield sample
        self.times.append(time.perf_counter())


@torch.no_grad()
def reference_eval_outputs(model, audio, visual, visual_3d, fuse_ratio: float, batch_size: int = 128):
    """What its ``eval()`` computes, batched: the global video probability (B, C) and the segment
    probabilities of both passes (with_ca=True and False) mixed fuse_ratio : 1 - fuse_ratio, split into audio
    and visual (B, T, C) each; plus the fused modality-level a_prob and v_prob (B, C)."""
    was = model.training
    model.eval()
    video, seg, a_prob, v_prob = [], [], [], []
    for s in range(0, len(audio), batch_size):
        a = torch.from_numpy(np.ascontiguousarray(audio[s : s + batch_size]))
        v = torch.from_numpy(np.ascontiguousarray(visual[s : s + batch_size]))
        st = torch.from_numpy(np.ascontiguousarray(visual_3d[s : s + batch_size]))
        on = model(a, v, st, with_ca=True)
        off = model(a, v, st, with_ca=False)
        video.append(on[0])
        a_prob.append(on[1] * fuse_ratio + off[1] * (1 - fuse_ratio))
        v_prob.append(on[2] * fuse_ratio + off[2] * (1 - fuse_ratio))
        seg.append(on[3] * fuse_ratio + off[3] * (1 - fuse_ratio))
    model.train(was)
    segment = torch.cat(seg).numpy()  # (N, T, 2, C)
    return types.SimpleNamespace(video_prob=torch.cat(video).numpy(), audio_prob=segment[:, :, 0, :],
                                 visual_prob=segment[:, :, 1, :], a_prob=torch.cat(a_prob).numpy(),
                                 v_prob=torch.cat(v_prob).numpy())
