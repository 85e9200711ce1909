"""`ecma demo`: the synthetic demo datasets (workflow/rules/data.smk)."""

from __future__ import annotations

import argparse

from ecma.cli.common import subcommand


def cmd_demo(args) -> int:
    from ecma.config import DemoConfig, load_workflow_config
    from ecma.data.demo import make_demo_dataset

    demo = DemoConfig()
    if args.config:
        demo = load_workflow_config(args.config).dataset(args.dataset).demo or demo
    if args.format == "unav100":
        from ecma.data.unav_demo import make_unav_demo

        given = {k: getattr(args, k) for k in ("n_train", "n_val", "n_test", "seed") if getattr(args, k) is not None}
        make_unav_demo(args.output, **given)
        return 0
    for key in ("n_train", "n_val", "n_test", "seed"):
        if getattr(args, key) is not None:
            setattr(demo, key, getattr(args, key))
    make_demo_dataset(args.output, n_train=demo.n_train, n_val=demo.n_val, n_test=demo.n_test, seed=demo.seed, progress=not args.quiet)
    return 0


def add_demo(sub) -> argparse.ArgumentParser:
    d = subcommand(
        sub, "demo", "generate the synthetic demo dataset (videos and LLP-format csvs)",
        "Write 10-second mp4 clips in which coloured shapes (seen) and tones (heard) of eight LLP classes come "
        "and go, with LLP's five csv files holding their video-level labels and segment-level truth.",
        example="ecma demo --output data/demo --n-train 48 --n-val 16 --n-test 16",
    )
    d.add_argument("--output", required=True, help="folder to write videos/ and the csv files into")
    d.add_argument("--format", choices=("llp", "unav100"), default="llp",
                   help="llp: mp4 videos and LLP's csvs (default); unav100: UnAV-100-style I3D/VGGish-shaped features "
                        "(av_features/) and unav100_annotations.json, no video (default sizes 60/20/20)")
    d.add_argument("--config", help="workflow config whose datasets.<NAME>.demo settings to use (llp format only)")
    d.add_argument("--dataset", default="demo", help="the dataset of --config whose demo settings to use")
    for key, what, llp, unav in (("n_train", "training videos", 48, 60), ("n_val", "validation videos", 16, 20),
                                 ("n_test", "test videos", 16, 20), ("seed", "the generator's seed", 0, 0)):
        d.add_argument(f"--{key.replace('_', '-')}", dest=key, type=int,
                       help=f"{what} (default: from --config, else {llp}; unav100: {unav})")
    d.set_defaults(func=cmd_demo)
    return d
