"""`ecma train` and `ecma import-checkpoint`: a model from feature shards, or from another code's weights (workflow/rules/train.smk)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ecma import registry
from ecma.errors import EcmaError
from ecma.cli.common import annotation_options, cli_annotations, settings, settings_options, subcommand


def _train_inputs(args):
    """(config, annotations, train split name, val split name) from a workflow dataset or from options."""
    if args.dataset is not None:
        from ecma.data.datasets import workflow_dataset

        if args.config is None:
            raise EcmaError("--dataset needs --config")
        wcfg, files = workflow_dataset(args.config, args.dataset)
        return wcfg.for_dataset(args.dataset, args.variant), files.annotation_set(), "train", "val"
    flags = {"--train": args.train, "--val": args.val, "--eval-audio": args.eval_audio, "--eval-visual": args.eval_visual}
    annotations = cli_annotations(args, flags)
    variant = None
    if args.variant:  # a variant names its backbone too
        variant = {"train": {"variant": args.variant}, "model": {"backbone": registry.variant(args.variant).backbone}}
    return settings(args, variant), annotations, "train", "val"


def cmd_train(args) -> int:
    from ecma.data.annotation_sets import check_disjoint
    from ecma.data.splits import load_annotated_split
    from ecma.training.plots import plot_history
    from ecma.training.train import train

    cfg, annotations, train_split, val_split = _train_inputs(args)
    if not args.allow_split_overlap:
        check_disjoint(annotations, (train_split, val_split))
    missing = cfg.train.missing_videos
    train_data = load_annotated_split(args.features, annotations, train_split, missing=missing)
    val_data = load_annotated_split(args.features, annotations, val_split, with_truth=True, missing=missing)
    for what, data in (("training", train_data), ("validation", val_data)):
        if data.features.skipped:
            print(f"{what}: skipped {len(data.features.skipped)} video(s) without features", file=sys.stderr)
    result = train(cfg, train_data, val_data, args.output_dir, classes=annotations.classes,
                   fingerprint=train_data.features.fingerprint, progress=not args.quiet)
    plot_history(result.history, Path(args.output_dir) / "curves.png", title=f"{cfg.train.variant}: training curves")
    print(f"best validation {cfg.train.select} {result.best_score:.2f} at epoch {result.best_epoch}", file=sys.stderr)
    return 0


def cmd_import_checkpoint(args) -> int:
    from ecma.models.checkpoint_import import import_checkpoint

    cfg = import_checkpoint(args.format, args.reference, args.output, config=args.config)
    print(f"{args.output}: {args.format} checkpoint {args.reference} imported ({cfg.model.backbone} backbone)", file=sys.stderr)
    return 0


def add_train(sub) -> argparse.ArgumentParser:
    t = subcommand(
        sub, "train", "train an E-CMA variant; keeps the best checkpoint by validation segment Type@AV",
        "Train one variant on feature shards from the training csv's weak labels, validating each epoch on the "
        "validation csv's segment-level truth. Writes model.pt (the best epoch), last.pt (to resume after a "
        "kill: the same command continues), history.csv/.json and curves.png.",
        example="ecma train --config my.yaml --variant ecma --features shard-*.h5 --train AVVP_train.csv "
        "--val AVVP_val_pd.csv --eval-audio AVVP_eval_audio.csv --eval-visual AVVP_eval_visual.csv --output-dir run",
    )
    t.add_argument("--config", help="YAML config (a workflow config with --dataset)")
    t.add_argument("--dataset", help="workflow dataset whose train/val/eval csvs to use")
    t.add_argument("--variant", choices=registry.names("variants"),
                   help="an ablation variant; it names its backbone (ecma.registry)")
    t.add_argument("--features", nargs="+", required=True, help="feature shards (.h5)")
    t.add_argument("--output-dir", required=True, help="folder for model.pt, last.pt, history and curves")
    t.add_argument("--train", help="training split csv (without --dataset)")
    t.add_argument("--val", help="validation split csv (without --dataset)")
    t.add_argument("--eval-audio", help="segment-level audio truth csv (without --dataset)")
    t.add_argument("--eval-visual", help="segment-level visual truth csv (without --dataset)")
    annotation_options(t, split=False)
    t.add_argument("--allow-split-overlap", action="store_true",
                   help="train even if a video is in both the training and the validation csv")
    t.set_defaults(func=cmd_train)
    settings_options(t)
    return t


def add_import_checkpoint(sub) -> argparse.ArgumentParser:
    c = subcommand(
        sub, "import-checkpoint", "another code's saved weights (CoLeaF's main network) as an ecma checkpoint",
        "Map a state dict saved by CoLeaF's code into the CoLeaF backbone and write an ecma checkpoint that "
        "predict and evaluate accept. A parameter that does not fit is an error naming it (exit 2).",
        example="ecma import-checkpoint --format coleaf coleaf_best.pt --output model.pt --config han_sizes.yaml",
    )
    c.add_argument("--format", required=True, choices=registry.checkpoint_formats(), help="whose code saved the weights")
    c.add_argument("reference", help="the saved weights (.pt), read without running code (weights_only)")
    c.add_argument("--output", required=True, help="the ecma checkpoint to write (model.pt)")
    c.add_argument("--config", help="YAML config whose model section matches the weights (default: the package "
                                    "defaults, CLIP/CLAP sizes; HAN's features need audio_dim 128, visual_dim 2048, "
                                    "visual_frames_per_segment 8, visual_3d_dim 512)")
    c.set_defaults(func=cmd_import_checkpoint)
    return c
