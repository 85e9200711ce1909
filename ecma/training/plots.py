"""Training curves as a picture: loss terms and validation metrics per epoch."""

from __future__ import annotations

import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # no display on clusters and CI
import matplotlib.pyplot as plt  # noqa: E402

from ecma.io import atomic_path  # noqa: E402


def plot_history(history: Sequence[dict], path: str | os.PathLike, title: str = "") -> None:
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 3.8))
    for key, label in (("loss", "total"), ("loss_backbone", "backbone"), ("loss_pseudo", "pseudo"), ("loss_cma", "CMA")):
        ax_loss.plot(epochs, [h[key] for h in history], marker=".", label=label)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss")
    ax_loss.legend()
    for key, label in (
        ("val_segment_type_av", "segment Type@AV"), ("val_segment_event_av", "segment Event@AV"),
        ("val_event_type_av", "event Type@AV"), ("val_event_event_av", "event Event@AV"),
    ):
        ax_val.plot(epochs, [h[key] for h in history], marker=".", label=label)
    ax_val.set_xlabel("epoch")
    ax_val.set_ylabel("validation F1 (%)")
    ax_val.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
