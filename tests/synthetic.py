"""Synthetic AVVP data with planted per-segment events, written in the project's real formats.

Each class has a fixed random audio prototype and visual prototype; a video's feature at segment t is
noise plus the prototypes of the classes audible (resp. visible) at t. A model that learns the classes from
the weak labels alone can then localise them in time, so segment-level F1 must rise well above chance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecma.data.classes import LLP_CLASSES
from ecma.data.shards import FeatureShard

FINGERPRINT = {"visual_model": "synthetic", "audio_model": "synthetic", "segment_seconds": 1.0}


@dataclass
class PlantedData:
    shards: list[Path]
    train_csv: Path
    val_csv: Path
    test_csv: Path
    eval_audio_csv: Path
    eval_visual_csv: Path
    audio_dim: int
    visual_dim: int


def _runs(seq):
    runs, t = [], 0
    while t < len(seq):
        if seq[t]:
            s = t
            while t < len(seq) and seq[t]:
                t += 1
            runs.append((s, t))
        else:
            t += 1
    return runs


def make_planted_data(
    root: Path, *, n_train=160, n_val=40, n_test=40, n_classes=6, T=10, audio_dim=32, visual_dim=24,
    noise=0.6, seed=0, n_shards=2, dtype="float16", kind_p=None,
) -> PlantedData:
    """``kind_p``: the chances of an event being audio-only, visual-only and audio-visual (None: equal)."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    classes = LLP_CLASSES[:n_classes]
    proto_a = rng.normal(size=(n_classes, audio_dim)) * 2.0
    proto_v = rng.normal(size=(n_classes, visual_dim)) * 2.0
    splits = {"train": n_train, "val": n_val, "test": n_test}
    videos = {}
    for split, n in splits.items():
        for i in range(n):
            name = f"{split[:2]}{i:09d}_0_10"
            k = rng.integers(1, 3)
            cls = rng.choice(n_classes, size=k, replace=False)
            a_on = np.zeros((n_classes, T), bool)
            v_on = np.zeros((n_classes, T), bool)
            for c in cls:
                kind = rng.choice(["a", "v", "av"], p=kind_p)
                start = rng.integers(0, T - 2)
                length = rng.integers(2, T - start + 1)
                if "a" in kind:
                    a_on[c, start : start + length] = True
                if "v" in kind:
                    s2 = rng.integers(0, T - 2)
                    v_on[c, s2 : s2 + rng.integers(2, T - s2 + 1)] = True
            audio = rng.normal(size=(T, audio_dim)) * noise + a_on.T.astype(float) @ proto_a
            visual = rng.normal(size=(T, visual_dim)) * noise + v_on.T.astype(float) @ proto_v
            videos[name] = (split, audio, visual, a_on, v_on)
    shard_paths = [root / f"shard-{i}.h5" for i in range(n_shards)]
    shards = [FeatureShard(p, "w") for p in shard_paths]
    for s in shards:
        s.fingerprint = FINGERPRINT
    for j, (name, (_, audio, visual, _, _)) in enumerate(videos.items()):
        shards[j % n_shards].write(name, audio, visual, dtype=dtype)
    for s in shards:
        s.close()

    def write_split(path, split):
        with open(path, "w") as f:
            f.write("filename\tevent_labels\n")
            for name, (sp, _, _, a_on, v_on) in videos.items():
                if sp == split:
                    labels = [classes[c] for c in range(n_classes) if a_on[c].any() or v_on[c].any()]
                    f.write(f"{name}\t{','.join(labels)}\n")

    paths = {s: root / f"AVVP_{s}.csv" for s in splits}
    for s, p in paths.items():
        write_split(p, s)
    for mod, idx in (("audio", 3), ("visual", 4)):
        with open(root / f"AVVP_eval_{mod}.csv", "w") as f:
            f.write("filename\tonset\toffset\tevent_labels\n")
            for name, v in videos.items():
                if v[0] == "train":
                    continue
                for c in range(n_classes):
                    for s, e in _runs(v[idx][c]):
                        f.write(f"{name}\t{s}\t{e}\t{classes[c]}\n")
    return PlantedData(shard_paths, paths["train"], paths["val"], paths["test"], root / "AVVP_eval_audio.csv",
                       root / "AVVP_eval_visual.csv", audio_dim, visual_dim)


def noisy_predictions(gt_audio, gt_visual, seed):
    """Fixed seeded predictions correlated with the truth (so the scores are neither ~0 nor 100)."""
    rng = np.random.default_rng(seed)
    weak = (gt_audio | gt_visual).any(axis=2).astype(np.float64)
    video = 0.4 * weak + 0.6 * rng.random(weak.shape)

    def seg(gt):
        return (0.35 * gt + 0.65 * rng.random(gt.shape)).transpose(0, 2, 1)

    return video.astype(np.float32), seg(gt_audio).astype(np.float32), seg(gt_visual).astype(np.float32)
