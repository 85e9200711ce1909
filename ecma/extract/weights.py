"""Encoder weights as files: what a config's encoders need, fetched once, verified, handed to extraction.

A config names weights in three ways:

- ``extract.visual_pretrained: openai`` (an open_clip tag) and ``extract.audio_checkpoint: laion:NAME`` (a
  LAION-CLAP release, e.g. ``laion:630k-audioset-best.pt``): fetched once, by the libraries' own download
  paths, into ``resources/weights/`` by the workflow's ``fetch_weights`` rule (a local rule: it runs where
  the network is), with a ``.sha256`` file beside each; extraction jobs read the file and never download;
- a local file path: used as it is;
- null: a randomly initialised encoder (demo and tests; a real dataset refuses it unless it says
  ``random_encoders: true``).

The ``valor`` profile names its weights by the file's sha256, as the published features are named: an
open_clip tag is then fetched from the tag's own download address (OpenAI's, which carries the file's
sha256), not from open_clip's preferred Hugging Face copy (the same tensors in another file).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ecma.config import ExtractConfig
from ecma.errors import EcmaError
from ecma.extract.fingerprint import file_sha256
from ecma.io import atomic_path

LAION_PREFIX = "laion:"
LAION_RELEASES = ("630k-best.pt", "630k-audioset-best.pt", "630k-fusion-best.pt", "630k-audioset-fusion-best.pt")
LAION_HUB_REPO = "lukewys/laion_clap"  # where laion_clap's own load_ckpt downloads its releases from


@dataclass(frozen=True)
class WeightsFile:
    """One weights file a config needs: where it goes, and how to fetch it (None: a local file)."""

    path: str
    # ("open_clip", model, tag), ("open_clip_url", model, tag: the tag's download address) or ("laion_clap", release, "")
    fetch: Optional[tuple[str, str, str]] = None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def needed_weights(cfg: ExtractConfig, resources: str = "resources/weights") -> dict[str, WeightsFile]:
    """'visual'/'audio' -> the weights file of that encoder (random-initialised encoders are absent)."""
    out: dict[str, WeightsFile] = {}
    vp = cfg.visual_pretrained
    if vp is not None:
        if os.sep in vp or vp.endswith((".pt", ".pth", ".bin", ".safetensors")):
            out["visual"] = WeightsFile(vp)
        elif cfg.profile == "valor":
            out["visual"] = WeightsFile(f"{resources}/open_clip/{_safe(cfg.visual_model)}-{_safe(vp)}-url.pt",
                                        ("open_clip_url", cfg.visual_model, vp))
        else:
            out["visual"] = WeightsFile(f"{resources}/open_clip/{_safe(cfg.visual_model)}-{_safe(vp)}.pt",
                                        ("open_clip", cfg.visual_model, vp))
    ac = cfg.audio_checkpoint
    if ac is not None:
        if ac.startswith(LAION_PREFIX):
            release = ac.removeprefix(LAION_PREFIX)
            if release not in LAION_RELEASES:
                raise EcmaError(f"config: extract.audio_checkpoint {ac!r}: unknown LAION-CLAP release "
                                f"(known: {', '.join(LAION_PREFIX + r for r in LAION_RELEASES)})")
            out["audio"] = WeightsFile(f"{resources}/laion_clap/{release}", ("laion_clap", release, ""))
        else:
            out["audio"] = WeightsFile(ac)
    return out


def with_local_weights(cfg: ExtractConfig, resources: str = "resources/weights") -> ExtractConfig:
    """The extraction settings a job runs with: every fetched encoder replaced by its local file."""
    files = needed_weights(cfg, resources)
    changes = {}
    if "visual" in files:
        changes["visual_pretrained"] = files["visual"].path
    if "audio" in files:
        changes["audio_checkpoint"] = files["audio"].path
    return dataclasses.replace(cfg, **changes)


def random_encoders(cfg: ExtractConfig) -> list[str]:
    """The settings that leave an encoder randomly initialised, e.g. ['extract.audio_checkpoint']."""
    return [key for key, value in (("extract.visual_pretrained", cfg.visual_pretrained),
                                   ("extract.audio_checkpoint", cfg.audio_checkpoint)) if value is None]


def sidecar(path: str | os.PathLike) -> Path:
    return Path(f"{path}.sha256")


def verify(path: str | os.PathLike) -> str:
    """The file's sha256, checked against the ``.sha256`` written when it was fetched (where there is one)."""
    path = Path(path)
    if not path.is_file():
        raise EcmaError(f"{path}: weights file not found")
    digest = file_sha256(path)
    side = sidecar(path)
    if side.is_file():
        expected = side.read_text().split()[0] if side.read_text().split() else ""
        if digest != expected:
            raise EcmaError(f"{path}: sha256 {digest[:12]}... differs from {expected[:12]}... recorded when it was "
                            "fetched (a truncated or replaced download): delete it and fetch it again")
    return digest


def fetch(weights: WeightsFile) -> Path:
    """Download one weights file by its library's own path, then write it and its ``.sha256`` atomically."""
    if weights.fetch is None:
        return Path(weights.path)
    kind, name, tag = weights.fetch
    with tempfile.TemporaryDirectory(prefix="ecma-weights-") as cache:
        try:
            if kind in ("open_clip", "open_clip_url"):
                import open_clip
                from open_clip.pretrained import download_pretrained, download_pretrained_from_url

                pcfg = open_clip.get_pretrained_cfg(name, tag)
                if not pcfg or (kind == "open_clip_url" and not pcfg.get("url")):
                    raise EcmaError(f"config: open_clip has no pretrained weights {tag!r} for {name}"
                                    + (" with a download address" if pcfg else ""))
                if kind == "open_clip_url":  # checks the sha256 its address carries
                    downloaded = download_pretrained_from_url(pcfg["url"], cache_dir=cache)
                else:
                    downloaded = download_pretrained(pcfg, cache_dir=cache)  # checks the sha256 where its URL has one
            else:
                from huggingface_hub import hf_hub_download

                downloaded = hf_hub_download(LAION_HUB_REPO, name, cache_dir=cache)
        except EcmaError:
            raise
        except Exception as e:  # no network, a moved release, a full disk: one line naming it
            raise EcmaError(f"{weights.path}: cannot fetch {kind} weights {name} {tag} "
                            f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})") from None
        if not downloaded or not Path(downloaded).is_file() or Path(downloaded).stat().st_size == 0:
            raise EcmaError(f"{weights.path}: the download of {kind} weights {name} {tag} gave no file")
        with atomic_path(weights.path) as tmp:
            shutil.copyfile(downloaded, tmp)
    digest = file_sha256(weights.path)
    with atomic_path(sidecar(weights.path)) as tmp:
        tmp.write_text(f"{digest}  {Path(weights.path).name}\n")
    print(f"{weights.path}: {Path(weights.path).stat().st_size / 1e6:.1f} MB, sha256 {digest}", file=sys.stderr)
    return Path(weights.path)
