"""Predictions of a trained checkpoint on a split's features."""

from __future__ import annotations

import os
from typing import Sequence

from ecma.checkpoint import load_model
from ecma.data import check_feature_dims, load_split
from ecma.device import amp_dtype, precision_name, resolve_device
from ecma.errors import EcmaError
from ecma.inference import run_model
from ecma.predictions import Predictions
from ecma.shards import fingerprint_diff


def predict(
    checkpoint: str | os.PathLike,
    feature_paths: Sequence[str | os.PathLike],
    split_csv: str | os.PathLike,
    *,
    batch_size: int = 256,
    device: str = "auto",
    missing: str = "error",
) -> Predictions:
    model, cfg, payload = load_model(checkpoint)
    classes = payload["classes"]
    data = load_split(feature_paths, split_csv, classes, missing=missing)
    fp = data.features.fingerprint
    if payload["fingerprint"] and fp != payload["fingerprint"]:
        keys = ", ".join(fingerprint_diff(payload["fingerprint"], fp))
        raise EcmaError(
            f"{checkpoint}: trained on features of another extractor than the given shards (differ in {keys})"
        )
    check_feature_dims(cfg.model, data.features, str(checkpoint))
    dev = resolve_device(device)
    precision = amp_dtype(dev, cfg.train.amp)
    out = run_model(model.to(dev), data.features.audio, data.features.visual, batch_size=batch_size, device=dev, precision=precision,
                    visual_3d=data.features.visual_3d)
    return Predictions(
        filenames=data.filenames,
        classes=list(classes),
        video_prob=out.video_prob,
        audio_prob=out.audio_prob,
        visual_prob=out.visual_prob,
        a_prob=out.a_prob,
        v_prob=out.v_prob,
        provenance={"checkpoint": str(checkpoint), "variant": cfg.train.variant, "fingerprint": fp,
                    "precision": precision_name(precision), "skipped": data.features.skipped},
    )
