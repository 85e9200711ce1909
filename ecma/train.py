"""Training E-CMA: student, EMA teacher, periodic pseudo masks, validation and checkpoints.

The output folder gets ``model.pt`` (the checkpoint with the best validation segment-level Type@AV),
``last.pt`` (everything needed to resume after an interruption, the best epoch's weights included, so
that a resumed run always ends with ``model.pt``), ``history.csv``/``history.json`` (per
epoch: loss terms, mask density, validation metrics, time) and ``curves.png``.
Runs are reproducible for a fixed seed on the CPU: batches come from a per-epoch seeded permutation and the
global RNG state (dropout) is saved with ``last.pt``.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from ecma.checkpoint import read_checkpoint, save_checkpoint
from ecma.config import EcmaConfig
from ecma.data import SplitData, check_feature_dims
from ecma.device import amp_dtype, autocast, keep_freed_memory, precision_name, resolve_device
from ecma.ema import ema_update_, make_teacher
from ecma.errors import EcmaError
from ecma.inference import run_model
from ecma.io import atomic_path, write_json
from ecma.losses import total_loss, variant_switches
from ecma.metrics import score
from ecma.model import ECMANet
from ecma.pseudo_masks import pseudo_masks

HISTORY_FIELDS = (
    "epoch", "lr", "loss", "loss_avvp", "loss_pseudo", "loss_cma", "mask_density",
    "val_segment_type_av", "val_segment_event_av", "val_event_type_av", "val_event_event_av",
    "val_segment_audio", "val_segment_visual", "val_segment_audio_visual", "seconds",
)


@dataclass
class TrainResult:
    best_epoch: int
    best_score: float
    history: list[dict]
    resumed_from: int | None


def _check_data(cfg: EcmaConfig, data: SplitData, what: str) -> None:
    check_feature_dims(cfg.model, data.features, what)
    if data.labels.shape[1] != cfg.model.num_classes:
        raise EcmaError(f"{what}: {data.labels.shape[1]} classes but model.num_classes is {cfg.model.num_classes}")


def validate(model: torch.nn.Module, data: SplitData, cfg: EcmaConfig, device: torch.device) -> dict:
    out = run_model(model, data.features.audio, data.features.visual, batch_size=cfg.eval.batch_size, device=device,
                    precision=amp_dtype(device, cfg.train.amp), visual_3d=data.features.visual_3d)
    return score(
        out.video_prob, out.audio_prob, out.visual_prob, data.gt_audio, data.gt_visual,
        video_threshold=cfg.eval.video_threshold, segment_threshold=cfg.eval.segment_threshold,
    )


def _teacher_masks(teacher, train: SplitData, cfg: EcmaConfig, device) -> torch.Tensor:
    out = run_model(teacher, train.features.audio, train.features.visual, batch_size=max(cfg.eval.batch_size, cfg.train.batch_size),
                    device=device, precision=amp_dtype(device, cfg.train.amp), visual_3d=train.features.visual_3d)
    seg = torch.from_numpy(np.stack([out.audio_prob, out.visual_prob], axis=2))
    p = cfg.pseudo
    return pseudo_masks(seg, torch.from_numpy(train.labels), rule=p.rule, gamma=p.gamma, k=p.k, restrict_to_labels=p.restrict_to_labels)


def _write_history(out_dir: Path, history: list[dict]) -> None:
    write_json(out_dir / "history.json", history)
    with atomic_path(out_dir / "history.csv") as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
            w.writeheader()
            w.writerows(history)


def _resume_key(cfg: EcmaConfig, train_data: SplitData, val_data: SplitData) -> dict:
    """What a resumed run must share with the interrupted one: settings (bar the epoch count) and data."""
    d = cfg.to_dict()
    d["train"] = {k: v for k, v in d["train"].items() if k not in ("epochs", "threads", "device")}
    d.pop("extract")
    digest = hashlib.blake2b(digest_size=32)
    for split in (train_data, val_data):
        digest.update("\n".join(split.filenames).encode() + b"\0")
        # the values too: a video re-extracted under the same name must not resume the old run
        for array in (split.features.audio, split.features.visual, split.labels):
            digest.update(np.ascontiguousarray(array).data)
    d["data"] = {"fingerprint": train_data.features.fingerprint, "videos_sha256": digest.hexdigest()}
    return d


def train(
    cfg: EcmaConfig,
    train_data: SplitData,
    val_data: SplitData,
    output_dir: str | os.PathLike,
    *,
    classes: Sequence[str],
    fingerprint: dict,
    progress: bool = True,
    stop_after_epochs: int | None = None,
) -> TrainResult:
    """Train the configured variant; ``stop_after_epochs`` ends early (to test resumption)."""
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_data(cfg, train_data, "training")
    _check_data(cfg, val_data, "validation")
    if val_data.gt_audio is None:
        raise EcmaError("validation data needs segment-level truth (eval audio/visual csvs)")
    tc = cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = resolve_device(tc.device)
    if device.type == "cpu":
        keep_freed_memory()
    use_teacher, use_cma = variant_switches(tc.variant)
    precision = amp_dtype(device, tc.amp)
    print(f"training {tc.variant} on {device} ({precision_name(precision)})", file=sys.stderr)

    torch.manual_seed(tc.seed)
    student = ECMANet(cfg.model).to(device)
    teacher = make_teacher(student) if use_teacher else None
    # foreach: one fused call per update step over all parameters (torch picks it on CUDA only by default).
    optimizer = torch.optim.Adam(student.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, foreach=True)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=tc.lr_step_epochs, gamma=tc.lr_gamma)

    history: list[dict] = []
    start_epoch, best_score, best_epoch, resumed_from = 0, -math.inf, -1, None
    best: dict | None = None  # the best epoch's weights and scores: model.pt is written from them at the end
    step, masks = 0, None
    last_path = out_dir / "last.pt"
    resume_key = _resume_key(cfg, train_data, val_data)
    if last_path.exists():
        state = read_checkpoint(last_path)
        if state.get("resume_config") == resume_key and state["epoch"] + 1 >= tc.epochs:
            print(f"{last_path}: that run is complete; training afresh", file=sys.stderr)
        elif state.get("resume_config") == resume_key:
            student.load_state_dict(state["state_dict"])
            if teacher is not None:
                teacher.load_state_dict(state["teacher"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["rng"])
            history, step, masks = state["history"], state["step"], state["masks"]
            start_epoch, best_score, best_epoch = state["epoch"] + 1, state["best_score"], state["best_epoch"]
            best = state["best"]
            resumed_from = state["epoch"]
            print(f"resuming after epoch {resumed_from + 1} from {last_path}", file=sys.stderr)
        else:
            print(f"{last_path}: written with other settings or data; training afresh", file=sys.stderr)

    audio = torch.from_numpy(train_data.features.audio)
    visual = torch.from_numpy(train_data.features.visual)
    visual_3d = None if train_data.features.visual_3d is None else torch.from_numpy(train_data.features.visual_3d)
    labels = torch.from_numpy(train_data.labels)
    n = len(train_data)
    steps_per_epoch = math.ceil(n / tc.batch_size)
    end_epoch = tc.epochs if stop_after_epochs is None else min(tc.epochs, stop_after_epochs)

    for epoch in range(start_epoch, end_epoch):
        t0 = time.perf_counter()
        student.train()
        pseudo_on = use_teacher and epoch >= cfg.pseudo.warmup_epochs
        if pseudo_on and cfg.pseudo.update_every_steps is None:
            masks = _teacher_masks(teacher, train_data, cfg, device)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(tc.seed * 100003 + epoch))
        sums = dict(loss=0.0, loss_avvp=0.0, loss_pseudo=0.0, loss_cma=0.0)
        mask_density = 0.0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{tc.epochs}", unit="batch", disable=not progress, leave=False, file=sys.stderr)
        for b in bar:
            idx = order[b * tc.batch_size : (b + 1) * tc.batch_size]
            if pseudo_on and cfg.pseudo.update_every_steps is not None and (masks is None or step % cfg.pseudo.update_every_steps == 0):
                masks = _teacher_masks(teacher, train_data, cfg, device)
            a, v, y = audio[idx].to(device), visual[idx].to(device), labels[idx].to(device)
            v3 = None if visual_3d is None else visual_3d[idx].to(device)
            with autocast(device, precision):
                out = student(a, v, v3)
            batch_masks = masks[idx].to(device) if pseudo_on else None
            terms = total_loss(out, y, cfg.loss, masks=batch_masks, use_cma=use_cma)
            optimizer.zero_grad(set_to_none=True)
            terms.total.backward()
            if tc.grad_clip:
                torch.nn.utils.clip_grad_norm_(student.parameters(), tc.grad_clip)
            optimizer.step()
            if teacher is not None:
                ema_update_(teacher, student, tc.ema_alpha)
            step += 1
            k = len(idx)
            sums["loss"] += terms.total.item() * k
            sums["loss_avvp"] += terms.avvp.item() * k
            sums["loss_pseudo"] += terms.pseudo.item() * k
            sums["loss_cma"] += terms.cma.item() * k
            if batch_masks is not None:
                mask_density += batch_masks.mean().item() * k
            bar.set_postfix(loss=f"{terms.total.item():.3f}")
        bar.close()
        scheduler.step()

        metrics = validate(student, val_data, cfg, device)
        row = {
            "epoch": epoch + 1,
            "lr": optimizer.param_groups[0]["lr"],
            **{k: v / n for k, v in sums.items()},
            "mask_density": mask_density / n,
            "val_segment_type_av": metrics["segment"]["type_av"],
            "val_segment_event_av": metrics["segment"]["event_av"],
            "val_event_type_av": metrics["event"]["type_av"],
            "val_event_event_av": metrics["event"]["event_av"],
            "val_segment_audio": metrics["segment"]["audio"],
            "val_segment_visual": metrics["segment"]["visual"],
            "val_segment_audio_visual": metrics["segment"]["audio_visual"],
            "seconds": time.perf_counter() - t0,
        }
        history.append(row)
        improved = row["val_segment_type_av"] > best_score
        if improved:
            best_score, best_epoch = row["val_segment_type_av"], epoch
            best = {"state_dict": {k: v.detach().cpu().clone() for k, v in student.state_dict().items()},
                    "epoch": epoch + 1, "val_metrics": metrics}
            _save_best(out_dir / "model.pt", best, cfg, classes, fingerprint, precision)
        print(
            f"epoch {epoch + 1}/{tc.epochs}: loss {row['loss']:.4f} (avvp {row['loss_avvp']:.4f}, pseudo "
            f"{row['loss_pseudo']:.4f}, cma {row['loss_cma']:.4f}) val seg Type@AV {row['val_segment_type_av']:.2f}"
            f"{' *' if improved else ''} [{row['seconds']:.1f}s]",
            file=sys.stderr,
        )
        _write_history(out_dir, history)
        save_checkpoint(
            last_path, student, cfg, classes=classes, fingerprint=fingerprint,
            resume_config=resume_key, epoch=epoch, step=step, history=history, masks=masks,
            teacher=teacher.state_dict() if teacher is not None else None,
            optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(), rng=torch.get_rng_state(),
            best_score=best_score, best_epoch=best_epoch, best=best,
        )
    if end_epoch == tc.epochs and best is not None:
        # Also after a resume past the best epoch, when Snakemake has deleted the model.pt written then.
        _save_best(out_dir / "model.pt", best, cfg, classes, fingerprint, precision)
    return TrainResult(best_epoch + 1, best_score, history, resumed_from)


def _save_best(path: Path, best: dict, cfg: EcmaConfig, classes, fingerprint: dict, precision) -> None:
    save_checkpoint(path, best["state_dict"], cfg, classes=classes, fingerprint=fingerprint, epoch=best["epoch"],
                    val_metrics=best["val_metrics"], precision=precision_name(precision))
