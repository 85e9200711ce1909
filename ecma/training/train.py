"""Training E-CMA on any backbone: student, EMA teacher, periodic pseudo masks, validation and checkpoints.

The backbone (``model.backbone``, :mod:`ecma.models.contracts`) owns its network, its own loss terms and
optimisers and how one batch trains; this loop adds E-CMA's teacher, masks and terms through that interface.
The output folder gets ``model.pt`` (the checkpoint with the best validation score, ``train.select``),
``last.pt`` (everything needed to resume after an interruption, the best epoch's weights included, so
that a resumed run always ends with ``model.pt``), ``history.csv``/``history.json`` (per
epoch: loss terms, mask density, validation metrics, time) and ``curves.png``.
Runs are reproducible for a fixed seed on the CPU: batches come from a per-epoch seeded permutation and the
global RNG state (dropout) is saved with ``last.pt``.
Variable-length videos (``FeatureSet.lengths``): each batch is cut to its own longest video and carries a
mask (:mod:`ecma.data.batching`); batches are bucketed by length (``train.bucket_batches``) and videos longer than
``train.max_segments`` are trained on a random window of that many segments. Equal-length data (LLP) takes
none of these paths.
"""

from __future__ import annotations

import csv
import dataclasses
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

from ecma.config import EcmaConfig
from ecma.data.batching import RowGather, bucketed_order, crop_windows, segment_mask
from ecma.data.splits import SplitData, check_feature_dims
from ecma.device import amp_dtype, keep_freed_memory, precision_name, resolve_device, set_cpu_threads
from ecma.errors import EcmaError
from ecma.evaluation.inference import run_model
from ecma.evaluation.protocols import score_outputs, selection_score
from ecma.io import atomic_path, write_json
from ecma.locks import hold_output
from ecma.models.checkpoint import read_checkpoint, save_checkpoint
from ecma.models.contracts import Batch
from ecma.models.factory import backbone_class
from ecma.progress import format_seconds, log
from ecma.registry import variant
from ecma.runtime_env import describe as describe_runtime
from ecma.training.ema import ema_decay, ema_update_, make_teacher
from ecma.training.losses import ecma_loss
from ecma.training.pseudo_masks import mask_density, pseudo_masks

# The history's fixed columns; each backbone's own loss terms follow as loss_<term> (history.json and csv).
HISTORY_FIELDS = (
    "epoch", "lr", "loss", "loss_backbone", "loss_pseudo", "loss_cma", "mask_density", "ema_alpha",
    "val_segment_type_av", "val_segment_event_av", "val_event_type_av", "val_event_event_av",
    "val_segment_audio", "val_segment_visual", "val_segment_audio_visual", "val_select", "seconds",
)


@dataclass
class TrainResult:
    best_epoch: int
    best_score: float
    history: list[dict]
    resumed_from: int | None


def check_classes(cfg: EcmaConfig, classes: Sequence[str]) -> None:
    """The dataset's class list must be as long as the model's output."""
    if len(classes) != cfg.model.num_classes:
        raise EcmaError(f"the dataset has {len(classes)} classes but model.num_classes is {cfg.model.num_classes}")


# the validation score that picks model.pt (train.select), as the epoch lines name it
SELECT_NAMES = {"type_av": "seg Type@AV", "audio_visual": "seg AV", "average": "mean of all ten metrics"}


def _check_data(cfg: EcmaConfig, data: SplitData, what: str) -> None:
    check_feature_dims(cfg.model, data.features, what)
    if data.labels.shape[1] != cfg.model.num_classes:
        raise EcmaError(f"{what}: {data.labels.shape[1]} classes but model.num_classes is {cfg.model.num_classes}")


def validate(model: torch.nn.Module, data: SplitData, cfg: EcmaConfig, device: torch.device, classes: Sequence[str] | None = None) -> dict:
    out = run_model(model, data.features.audio, data.features.visual, batch_size=cfg.eval.batch_size, device=device,
                    precision=amp_dtype(device, cfg.train.amp), visual_3d=data.features.visual_3d, lengths=_lengths(data))
    return score_outputs(out, data.gt_audio, data.gt_visual, cfg.eval, classes, lengths=_lengths(data))


def _lengths(data: SplitData):
    """The split's per-video lengths where videos differ in length, else None (the equal-length fast path)."""
    return data.features.lengths if data.features.variable_length else None


def _teacher_masks(teacher, train: SplitData, cfg: EcmaConfig, device) -> torch.Tensor:
    lengths = _lengths(train)
    # training-sized batches: on the CPU, batches of 256 LLP videos were a fifth slower per video than 128 (the
    # elementwise work left the cache); with the frames now projected in chunks, 256 or 512 are no faster
    # (measured: git log -p docs/benchmarks.md)
    out = run_model(teacher, train.features.audio, train.features.visual, batch_size=cfg.train.batch_size,
                    device=device, precision=amp_dtype(device, cfg.train.amp), visual_3d=train.features.visual_3d, lengths=lengths)
    seg = torch.from_numpy(np.stack([out.audio_prob, out.visual_prob], axis=2))
    p = cfg.pseudo
    return pseudo_masks(seg, torch.from_numpy(train.labels), rule=p.rule, gamma=p.gamma, k=p.k, restrict_to_labels=p.restrict_to_labels,
                        lengths=None if lengths is None else torch.from_numpy(lengths))


def _write_history(out_dir: Path, history: list[dict]) -> None:
    write_json(out_dir / "history.json", history)
    fields = list(HISTORY_FIELDS) + [k for k in history[0] if k not in HISTORY_FIELDS]
    with atomic_path(out_dir / "history.csv") as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            w.writeheader()
            w.writerows(history)


def _resume_key(cfg: EcmaConfig, train_data: SplitData, val_data: SplitData) -> dict:
    """What a resumed run must share with the interrupted one: the settings that decide the numbers (bar the
    epoch count; runtime settings such as threads and device may differ) and the data."""
    d, _ = cfg.split_runtime([f.name for f in dataclasses.fields(cfg) if f.name != "extract"])
    del d["train"]["epochs"]
    digest = hashlib.blake2b(digest_size=32)
    for split in (train_data, val_data):
        digest.update("\n".join(split.filenames).encode() + b"\0")
        # the values too: a video re-extracted under the same name must not resume the old run
        for array in (split.features.audio, split.features.visual, split.labels):
            digest.update(np.ascontiguousarray(array).data)
        if split.features.variable_length:  # (equal-length data digests as before)
            digest.update(np.ascontiguousarray(split.features.lengths).data)
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
    """Train the configured variant; ``stop_after_epochs`` ends early (to test resumption). The output folder
    is held for the run (:mod:`ecma.locks`): a second trainer of the same folder stops with one line."""
    check_classes(cfg, classes)
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with hold_output(out_dir, "ecma train"):
        return _train(cfg, train_data, val_data, out_dir, classes=classes, fingerprint=fingerprint,
                      progress=progress, stop_after_epochs=stop_after_epochs)


def _train(cfg: EcmaConfig, train_data: SplitData, val_data: SplitData, out_dir: Path, *, classes: Sequence[str],
           fingerprint: dict, progress: bool, stop_after_epochs: int | None) -> TrainResult:
    _check_data(cfg, train_data, "training")
    _check_data(cfg, val_data, "validation")
    if val_data.gt_audio is None:
        raise EcmaError("validation data needs segment-level truth (eval audio/visual csvs)")
    tc = cfg.train
    threads = set_cpu_threads(tc.threads)
    device = resolve_device(tc.device)
    if device.type == "cpu":
        keep_freed_memory()
    v = variant(tc.variant)
    precision = amp_dtype(device, tc.amp)
    log.info("training %s (%s backbone) on %s (%s; %d CPU thread%s, %s)", tc.variant, cfg.model.backbone, device,
             precision_name(precision), threads, "" if threads == 1 else "s", describe_runtime())

    n = len(train_data)
    steps_per_epoch = math.ceil(n / tc.batch_size)
    torch.manual_seed(tc.seed)
    backbone = backbone_class(cfg.model.backbone).build(cfg, steps_per_epoch=steps_per_epoch, device=device, precision=precision)
    student = backbone.net
    teacher = make_teacher(student) if v.teacher else None

    history: list[dict] = []
    start_epoch, best_score, best_epoch, resumed_from = 0, -math.inf, -1, None
    best: dict | None = None  # the best epoch's weights and scores: model.pt is written from them at the end
    step, masks = 0, None
    last_path = out_dir / "last.pt"
    resume_key = _resume_key(cfg, train_data, val_data)
    if last_path.exists():
        state = read_checkpoint(last_path)
        if state.get("resume_config") == resume_key and state["epoch"] + 1 >= tc.epochs:
            log.info("%s: that run is complete; training afresh", last_path)
        elif state.get("resume_config") == resume_key:
            student.load_state_dict(state["state_dict"])
            if teacher is not None:
                teacher.load_state_dict(state["teacher"])
            backbone.load_training_state(state["backbone"])
            torch.set_rng_state(state["rng"])
            history, step, masks = state["history"], state["step"], state["masks"]
            start_epoch, best_score, best_epoch = state["epoch"] + 1, state["best_score"], state["best_epoch"]
            best = state["best"]
            resumed_from = state["epoch"]
            log.info("resuming after epoch %d from %s", resumed_from + 1, last_path)
        else:
            log.info("%s: written with other settings or data; training afresh", last_path)

    audio = torch.from_numpy(train_data.features.audio)
    visual = torch.from_numpy(train_data.features.visual)
    visual_3d = None if train_data.features.visual_3d is None else torch.from_numpy(train_data.features.visual_3d)
    labels = torch.from_numpy(train_data.labels)
    varying = train_data.features.variable_length or (tc.max_segments and audio.shape[1] > tc.max_segments)
    lengths = torch.from_numpy(train_data.features.lengths)
    # the largest input, gathered into one buffer for every step (equal-length data; variable-length batches
    # are cut to their own longest video instead)
    visual_rows = None if varying else RowGather(visual, tc.batch_size)
    end_epoch = tc.epochs if stop_after_epochs is None else min(tc.epochs, stop_after_epochs)
    alpha = tc.ema_alpha

    for epoch in range(start_epoch, end_epoch):
        t0 = time.perf_counter()
        student.train()
        pseudo_on = v.teacher and epoch >= cfg.pseudo.warmup_epochs
        if pseudo_on and cfg.pseudo.update_every_steps is None:
            masks = _teacher_masks(teacher, train_data, cfg, device)
        shuffle = torch.Generator().manual_seed(tc.seed * 100003 + epoch)
        order = torch.randperm(n, generator=shuffle)
        if varying:
            order = bucketed_order(order, lengths, tc.batch_size, tc.bucket_batches, shuffle)
        sums: dict[str, torch.Tensor] = {}  # summed on the device, read once per epoch (no sync per step)
        density_sum = 0.0  # of each video's mask density, for the epoch's mean
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{tc.epochs}", unit="batch", disable=not progress, leave=False, file=sys.stderr)
        for b in bar:
            idx = order[b * tc.batch_size : (b + 1) * tc.batch_size]
            if pseudo_on and cfg.pseudo.update_every_steps is not None and (masks is None or step % cfg.pseudo.update_every_steps == 0):
                masks = _teacher_masks(teacher, train_data, cfg, device)
            y = labels[idx].to(device)
            if varying:
                batch, batch_masks = _variable_length_batch(idx, audio, visual, visual_3d, y, lengths, masks if pseudo_on else None,
                                                            tc.max_segments, shuffle, device)
            else:
                batch = Batch(audio[idx].to(device), visual_rows(idx).to(device), None if visual_3d is None else visual_3d[idx].to(device), y)
                batch_masks = masks[idx].to(device) if pseudo_on else None
            extra = None
            if v.teacher or v.cma:
                def extra(out, y=y, batch_masks=batch_masks):
                    return ecma_loss(out, y, cfg.loss, masks=batch_masks, use_cma=v.cma)
            terms = backbone.train_step(batch, epoch=epoch, step=b, extra_loss=extra)
            if teacher is not None:
                alpha = ema_decay(step, tc.ema_alpha, tc.ema_ramp)
                ema_update_(teacher, student, alpha)
            step += 1
            k = len(idx)
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + value * k
            if batch_masks is not None:
                density_sum += float(mask_density(batch_masks, batch.mask).sum())
            if progress:
                bar.set_postfix(loss=f"{terms['total'].item():.3f}")
        bar.close()
        lr = backbone.lr
        backbone.end_epoch()
        means = {name: float(total) / n for name, total in sums.items()}

        metrics = validate(student, val_data, cfg, device, classes)
        row = {
            "epoch": epoch + 1,
            "lr": lr,
            "loss": means["total"],
            "loss_backbone": means["backbone"],
            "loss_pseudo": means.get("pseudo", 0.0),
            "loss_cma": means.get("cma", 0.0),
            "mask_density": density_sum / n,
            "ema_alpha": alpha if teacher is not None else None,
            "val_segment_type_av": metrics["segment"]["type_av"],
            "val_segment_event_av": metrics["segment"]["event_av"],
            "val_event_type_av": metrics["event"]["type_av"],
            "val_event_event_av": metrics["event"]["event_av"],
            "val_segment_audio": metrics["segment"]["audio"],
            "val_segment_visual": metrics["segment"]["visual"],
            "val_segment_audio_visual": metrics["segment"]["audio_visual"],
            "val_select": selection_score(metrics, tc.select),
            "seconds": time.perf_counter() - t0,
            **{f"loss_{name}": means[name] for name in backbone.loss_terms},
        }
        history.append(row)
        improved = row["val_select"] > best_score
        if improved:
            best_score, best_epoch = row["val_select"], epoch
            best = {"state_dict": {k: t.detach().cpu().clone() for k, t in student.state_dict().items()},
                    "epoch": epoch + 1, "val_metrics": metrics}
            _save_best(out_dir / "model.pt", best, cfg, classes, fingerprint, precision)
        # one timestamped line per epoch (through logging): the progress of a quiet workflow job
        log.info(
            f"epoch {epoch + 1}/{tc.epochs}: loss {row['loss']:.4f} ({cfg.model.backbone} {row['loss_backbone']:.4f}, pseudo "
            f"{row['loss_pseudo']:.4f}, cma {row['loss_cma']:.4f}) val {SELECT_NAMES[tc.select]} {row['val_select']:.2f}"
            f"{' *' if improved else ''} [{row['seconds']:.1f}s, about {format_seconds(row['seconds'] * (tc.epochs - epoch - 1))} left]"
        )
        _write_history(out_dir, history)
        save_checkpoint(
            last_path, student, cfg, classes=classes, fingerprint=fingerprint,
            resume_config=resume_key, epoch=epoch, step=step, history=history, masks=masks,
            teacher=teacher.state_dict() if teacher is not None else None,
            backbone=backbone.training_state(), rng=torch.get_rng_state(),
            best_score=best_score, best_epoch=best_epoch, best=best,
        )
    if end_epoch == tc.epochs and best is not None:
        # Also after a resume past the best epoch, when Snakemake has deleted the model.pt written then.
        _save_best(out_dir / "model.pt", best, cfg, classes, fingerprint, precision)
    return TrainResult(best_epoch + 1, best_score, history, resumed_from)


def _variable_length_batch(idx, audio, visual, visual_3d, y, lengths, masks, max_segments: int, generator, device):
    """A batch cut to its longest video (or to a random window of ``max_segments`` of longer videos), with its
    segment mask and the matching rows of the pseudo masks."""
    lb = lengths[idx]
    tb = int(lb.max())
    k = visual.shape[1] // audio.shape[1]
    a, v = audio[idx, :tb], visual[idx, : tb * k]
    v3 = None if visual_3d is None else visual_3d[idx, :tb]
    m = None if masks is None else masks[idx, :tb]
    if max_segments and tb > max_segments:
        a, v, v3, m, lb = crop_windows(a, v, v3, m, lb, max_segments, generator)
        tb = max_segments
    mask = segment_mask(lb, tb)
    to = (lambda x: None if x is None else x.to(device))
    return Batch(to(a), to(v), to(v3), y, to(mask)), to(m)


def _save_best(path: Path, best: dict, cfg: EcmaConfig, classes, fingerprint: dict, precision) -> None:
    save_checkpoint(path, best["state_dict"], cfg, classes=classes, fingerprint=fingerprint, epoch=best["epoch"],
                    val_metrics=best["val_metrics"], precision=precision_name(precision))
