"""Published-feature folders of the real shapes, generated (for tests and bench/bench_import.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

VALOR_FILES = {"CLIP/features": (10, 768), "CLAP/features": (64, 768)}
HAN_FILES = {"vggish": (10, 128), "res152": (80, 2048), "r2plus1d_18": (10, 512)}
LAYOUTS = {"valor": VALOR_FILES, "han": HAN_FILES}


def _array(rng: np.random.Generator, folder: str, shape: tuple[int, int]) -> np.ndarray:
    x = rng.standard_normal(shape, dtype=np.float32)
    if folder == "CLIP/features":  # VALOR's CLIP embeddings are L2-normalised
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def make_feature_tree(root: Path, layout: str, youtube_ids: Iterable[str], seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Write ROOT/<folder>/<id>.npy for every id; returns {id: {folder: array}}."""
    rng = np.random.default_rng(seed)
    written: dict[str, dict[str, np.ndarray]] = {}
    for folder in LAYOUTS[layout]:
        (root / folder).mkdir(parents=True, exist_ok=True)
    for vid in youtube_ids:
        written[vid] = {}
        for folder, shape in LAYOUTS[layout].items():
            x = _array(rng, folder, shape)
            np.save(root / folder / f"{vid}.npy", x)
            written[vid][folder] = x
    return written


def write_split_csv(path: Path, filenames: Iterable[str], label: str = "Speech") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("filename\tevent_labels\n" + "".join(f"{f}\t{label}\n" for f in filenames))
    return path
