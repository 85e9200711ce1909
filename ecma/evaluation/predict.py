"""Predictions of a trained checkpoint on a split's features."""

from __future__ import annotations

import os
from typing import Sequence

from ecma.data.annotations import read_split
from ecma.data.shards import fingerprint_diff, load_features
from ecma.data.splits import check_feature_dims
from ecma.device import amp_dtype, precision_name, resolve_device
from ecma.errors import EcmaError
from ecma.extract.fingerprint import file_sha256
from ecma.evaluation.inference import run_model
from ecma.evaluation.predictions import Predictions
from ecma.models.checkpoint import load_model


def predict(
    checkpoint: str | os.PathLike,
    feature_paths: Sequence[str | os.PathLike],
    split_csv: str | os.PathLike | None = None,
    *,
    filenames: Sequence[str] | None = None,
    batch_size: int = 256,
    device: str = "auto",
    missing: str = "error",
) -> Predictions:
    """Predict the videos of ``split_csv`` (an LLP-format csv, checked against the checkpoint's classes) or,
    for any other annotation format, the given ``filenames``. Videos of different lengths are predicted
    whole, and the predictions carry their ``lengths``."""
    model, cfg, payload = load_model(checkpoint)
    classes = payload["classes"]  # the dataset's, stored at training; load_model checked them against the model
    if filenames is None:
        if split_csv is None:
            raise EcmaError("predict needs a split csv or a list of filenames")
        filenames = read_split(split_csv, classes).filenames
    features = load_features(feature_paths, filenames, missing=missing)
    fp = features.fingerprint
    if payload["fingerprint"] and fp != payload["fingerprint"]:
        keys = ", ".join(fingerprint_diff(payload["fingerprint"], fp))
        raise EcmaError(
            f"{checkpoint}: trained on features of another extractor than the given shards (differ in {keys})"
        )
    check_feature_dims(cfg.model, features, str(checkpoint))
    dev = resolve_device(device)
    precision = amp_dtype(dev, cfg.train.amp)
    lengths = features.lengths if features.variable_length else None
    out = run_model(model.to(dev), features.audio, features.visual, batch_size=batch_size, device=dev, precision=precision,
                    visual_3d=features.visual_3d, lengths=lengths)
    return Predictions(
        filenames=features.filenames,
        classes=list(classes),
        video_prob=out.video_prob,
        audio_prob=out.audio_prob,
        visual_prob=out.visual_prob,
        a_prob=out.a_prob,
        v_prob=out.v_prob,
        # what trained the model: its checkpoint's own settings, carried on to every metrics.json
        provenance={"checkpoint": str(checkpoint), "checkpoint_sha256": file_sha256(checkpoint),
                    "variant": cfg.train.variant, "seed": cfg.train.seed, "epoch": payload.get("epoch"),
                    "fingerprint": fp, "precision": precision_name(precision), "skipped": features.skipped,
                    "config": cfg.to_dict()},
        lengths=lengths,
    )
