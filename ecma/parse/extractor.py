"""The extractor a checkpoint was trained on, rebuilt and checked against the checkpoint's fingerprint.

The fingerprint alone cannot rebuild the encoders: a weights file is named there only by its sha256, and
the decoding workers, batch size and device are not in it. So the extract section of a config (the one
stored in the checkpoint, or the ``--config`` given) builds them, and the fingerprint of what it builds
must equal the checkpoint's, key for key; anything else would feed the model features it never saw.
A checkpoint trained on VALOR's features (imported, or extracted with ``extract.profile: valor``) is
parsed with the ``valor`` profile whatever the config's profile says: its fingerprint names the recipe.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from ecma.config import ExtractConfig
from ecma.data.shards import fingerprint_diff
from ecma.errors import EcmaError
from ecma.extract.fingerprint import extractor_fingerprint, weights_id
from ecma.extract.pipeline import Encoders, build_encoders, fingerprint_of
from ecma.extract.valor import identity as valor


@dataclass
class CheckpointExtractor:
    cfg: ExtractConfig
    encoders: Encoders
    fingerprint: dict
    window: int  # T: segments per training clip
    window_source: str  # where T came from


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def leaf_diff(a, b, prefix: str = "") -> list[tuple[str, object, object]]:
    """(dotted key, value in a, value in b) of every differing leaf of two nested dicts."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return [] if a == b else [(prefix, a, b)]
    out = []
    for k in sorted(set(a) | set(b)):
        out += leaf_diff(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else k)
    return out


def mismatch_message(checkpoint: str, trained: dict, rebuilt: dict, source: str) -> str:
    keys = fingerprint_diff(trained, rebuilt)
    leaves = leaf_diff(trained, rebuilt)
    shown = "; ".join(f"{k}: {_show(x)} vs {_show(y)}" for k, x, y in leaves[:3])
    more = f" (+{len(leaves) - 3} more)" if len(leaves) > 3 else ""
    return (f"{checkpoint}: trained on features of another extractor than {source} builds "
            f"(differing: {', '.join(keys)}; checkpoint's vs this config's: {shown}{more})")


def settings_fingerprint(cfg: ExtractConfig, trained: dict) -> dict:
    """The checkpoint's fingerprint with what ``cfg`` says without building anything put in: its settings,
    encoder names and weights; the encoders' own descriptions and the precision are kept from ``trained``."""
    if cfg.profile == "valor":
        return valor.settings_fingerprint(cfg)
    own = extractor_fingerprint(cfg, visual={}, audio={}, precision=trained.get("precision"))
    out = {**trained, **{k: v for k, v in own.items() if k not in ("visual", "audio", "precision")}}
    for side, model, weights in (("visual", f"open_clip/{cfg.visual_model}", weights_id(cfg.visual_pretrained, cfg.seed)),
                                 ("audio", f"laion_clap/{cfg.audio_model}", weights_id(cfg.audio_checkpoint, cfg.seed))):
        old = trained.get(side) if isinstance(trained.get(side), dict) else {}
        kept = {k: v for k, v in old.items() if k not in ("model", "weights", "seed", "sha256")}
        out[side] = {**kept, "model": model, **weights}
    return out


def training_window(fingerprint: dict, cfg: ExtractConfig) -> tuple[int, str]:
    """T of the training clips: the fingerprint's n_segments, else 10 (LLP's; shards of whole-second
    extraction do not record their length)."""
    if fingerprint.get("n_segments"):
        return int(fingerprint["n_segments"]), "fingerprint n_segments"
    if cfg.n_segments:
        return int(cfg.n_segments), "config extract.n_segments"
    return 10, "default (LLP's 10 segments; the checkpoint does not record it)"


def checkpoint_extractor(checkpoint: str, trained_fingerprint: Optional[dict], cfg: ExtractConfig, source: str) -> CheckpointExtractor:
    """Encoders for ``cfg`` whose fingerprint is the checkpoint's; else an EcmaError naming both."""
    if not trained_fingerprint:
        raise EcmaError(f"{checkpoint}: the checkpoint records no feature fingerprint, so it cannot say which extractor to parse with")
    if valor.is_valor_fingerprint(trained_fingerprint) and cfg.profile != "valor":
        cfg = dataclasses.replace(cfg, profile="valor")  # VALOR's features, published or extracted
    expected = settings_fingerprint(cfg, trained_fingerprint)
    if expected != trained_fingerprint:  # fail before building encoders that cannot fit (a ViT-L takes seconds)
        raise EcmaError(mismatch_message(checkpoint, trained_fingerprint, expected, source))
    encoders = build_encoders(cfg)
    rebuilt = fingerprint_of(cfg, encoders)
    if rebuilt != trained_fingerprint:
        raise EcmaError(mismatch_message(checkpoint, trained_fingerprint, rebuilt, source))
    window, window_source = training_window(trained_fingerprint, cfg)
    return CheckpointExtractor(cfg, encoders, rebuilt, window, window_source)


def with_runtime(cfg: ExtractConfig, **runtime) -> ExtractConfig:
    """A copy with settings that do not enter the fingerprint (workers, batch_videos, device) changed."""
    return dataclasses.replace(cfg, **{k: v for k, v in runtime.items() if v is not None})
