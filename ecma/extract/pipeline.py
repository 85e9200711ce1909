"""The extraction driver: videos -> decoded in worker processes -> encoded in batches -> shard.

Batches gather ``batch_videos`` decoded videos; their frames go through the image tower together and
their audio windows through the audio tower together, on the GPU when there is one, on the CPU otherwise;
in bf16 where the hardware computes it natively (``extract.amp``). Decoding of the next videos goes on in
the workers meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ecma.config import ExtractConfig
from ecma.data.failures import FAILURES_HEADER, failures_path_for, write_failures  # noqa: F401  (re-exported)
from ecma.data.shards import now_iso
from ecma.device import amp_dtype, resolve_device
from ecma.errors import EcmaError
from ecma.extract.audio import AudioEncoder
from ecma.extract.decode import DecodeSpec
from ecma.extract.decoded import DecodedVideo
from ecma.extract.fingerprint import extractor_fingerprint
from ecma.extract.store import ShardStore
from ecma.extract.valor.identity import valor_fingerprint
from ecma.extract.visual import VisualEncoder
from ecma.extract.weights import verify
from ecma.extract.workers import decoded_batches
from ecma.io import content_id
from ecma.locks import hold_output
from ecma.progress import Progress



@dataclass
class ExtractReport:
    extracted: int = 0
    skipped: int = 0  # already in the shard with the same fingerprint and the same file content
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (name, stage, reason)
    removed: list[str] = field(default_factory=list)  # left the shard (prune: no longer among the videos)
    failures_path: Optional[Path] = None


@dataclass
class Encoders:
    visual: VisualEncoder
    audio: AudioEncoder
    device: torch.device

    @property
    def precision(self) -> str:
        # the image tower holds bf16 weights, the audio tower runs under bf16 autocast
        return "float32" if self.visual.amp is None else "bf16"


_CACHE: dict[tuple, Encoders] = {}


def build_encoders(cfg: ExtractConfig) -> Encoders:
    """The two encoders of a config (kept for reuse within a process: building them takes seconds)."""
    device = resolve_device(cfg.device)
    key = (cfg.profile, cfg.visual_model, cfg.visual_pretrained, cfg.audio_model, cfg.audio_checkpoint, cfg.audio_mode,
           cfg.seed, cfg.sample_rate, cfg.segment_seconds, str(device), amp_dtype(device, cfg.amp), _mtime(cfg.visual_pretrained),
           _mtime(cfg.audio_checkpoint))
    if key not in _CACHE:
        while len(_CACHE) >= 3:  # a few settings side by side (tests, benchmarks), not an unbounded pile
            _CACHE.pop(next(iter(_CACHE)))
        if cfg.profile == "valor":
            from ecma.extract.valor.encoders import ValorAudioEncoder, ValorVisualEncoder

            visual = ValorVisualEncoder(cfg.visual_model, cfg.visual_pretrained, seed=cfg.seed, device=device)
            audio = ValorAudioEncoder(cfg.audio_model, cfg.audio_checkpoint, seed=cfg.seed, device=device)
        else:
            visual = VisualEncoder(cfg.visual_model, cfg.visual_pretrained, seed=cfg.seed, device=device, amp=cfg.amp)
            audio = AudioEncoder(cfg.audio_model, cfg.audio_checkpoint, mode=cfg.audio_mode, seed=cfg.seed,
                                 sample_rate=cfg.sample_rate, segment_seconds=cfg.segment_seconds, device=device,
                                 amp=cfg.amp)
        _CACHE[key] = Encoders(visual, audio, device)
    return _CACHE[key]


def _mtime(path: Optional[str]) -> Optional[int]:
    p = Path(path) if path else None
    return p.stat().st_mtime_ns if p is not None and p.is_file() else None


def fingerprint_of(cfg: ExtractConfig, enc: Encoders) -> dict:
    if cfg.profile == "valor":  # the identity imported VALOR features share (ecma.extract.valor.identity)
        return valor_fingerprint(enc.visual.identity, enc.audio.identity)
    v = enc.visual
    visual = {"model": f"open_clip/{v.model_name}", **v.weights, "preprocess": v.describe_preprocess(),
              "embedding": "image tower output (after projection)"}
    return extractor_fingerprint(cfg, visual=visual, audio=enc.audio.describe(), precision=enc.precision)


def stored_dtype(cfg: ExtractConfig) -> str:
    """The dtype features are stored in: extract.dtype, but float32 for the valor profile (as VALOR publishes)."""
    return "float32" if cfg.profile == "valor" else cfg.dtype


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _pad_rows(feats: np.ndarray, t: int) -> np.ndarray:
    """Repeat the last row up to t rows (a stream shorter than the video's T)."""
    if len(feats) >= t:
        return feats[:t]
    return np.concatenate([feats, np.repeat(feats[-1:], t - len(feats), axis=0)])


def encode_streams(batch: list[DecodedVideo], enc: Encoders, cfg: ExtractConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """(audio (n_audio, Da), visual (n_visual, Dv)) float32 features of the segments each decoded video (or
    chunk of one) holds, not padded to its T."""
    k = cfg.frames_per_segment
    images = np.concatenate([d.images for d in batch])
    vis = enc.visual.encode(images)
    audio = enc.audio.encode([d.waveform for d in batch])
    out, at = [], 0
    for d, a in zip(batch, audio):
        n_frames = d.n_visual * k
        v = vis[at : at + n_frames].reshape(d.n_visual, k, vis.shape[-1]).mean(1)
        at += n_frames
        if cfg.normalize:
            a, v = _l2(a), _l2(v)
        out.append((a, v))
    return out


def encode_batch(batch: list[DecodedVideo], enc: Encoders, cfg: ExtractConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """(audio (T, Da), visual (T, Dv)) float32 features of each decoded video."""
    return [(_pad_rows(a, d.n_segments), _pad_rows(v, d.n_segments))
            for d, (a, v) in zip(batch, encode_streams(batch, enc, cfg))]


def encode_each(batch: list[DecodedVideo], enc: Encoders, cfg: ExtractConfig, failed: list[tuple[str, str, str]],
                encode=encode_batch) -> list[tuple[DecodedVideo, tuple[np.ndarray, np.ndarray]]]:
    """(video, (audio, visual)) of a batch by ``encode`` (:func:`encode_batch`, or :func:`encode_streams` for
    chunks); if the batch fails as a whole (it should not), each video is tried alone, so that one video never
    costs the others, and those that still fail go to ``failed``."""
    try:
        return list(zip(batch, encode(batch, enc, cfg)))
    except Exception:
        done = []
        for d in batch:
            try:
                done.append((d, encode([d], enc, cfg)[0]))
            except Exception as e:
                failed.append((d.name, "encode", f"{type(e).__name__}: {e}"))
        return done


def check_video_inputs(videos: Sequence, names: Optional[Sequence[str]]) -> tuple[list[Path], list[str]]:
    """The videos as paths and their names (default: the file stems); one line on a count mismatch or a name
    given twice."""
    paths = [Path(v) for v in videos]
    if names is None:
        names = [p.stem for p in paths]
    names = [str(n) for n in names]
    if len(names) != len(paths):
        raise EcmaError(f"extract: {len(paths)} videos but {len(names)} names")
    seen: dict[str, Path] = {}
    for n, p in zip(names, paths):
        if not n or "/" in n:
            raise EcmaError(f"{p}: video name {n!r} cannot name a shard group")
        if n in seen:
            raise EcmaError(f"{p}: video name {n!r} is also the name of {seen[n]}")
        seen[n] = p
    return paths, names


def _content_ids(names: Sequence[str], paths: Sequence[Path]) -> dict[str, Optional[str]]:
    """name -> content identity of its file (None where it cannot be read: decoding reports why)."""
    ids = {}
    for n, p in zip(names, paths):
        try:
            ids[n] = content_id(p)
        except OSError:
            ids[n] = None
    return ids


def extract_videos(videos: Sequence[str | Path], output: str | Path, cfg: ExtractConfig, *,
                   names: Optional[Sequence[str]] = None, overwrite: bool = False, prune: bool = False,
                   progress: bool = True) -> ExtractReport:
    """Extract features of ``videos`` into the shard ``output`` (created, or appended to).

    Videos already in the shard with the same fingerprint and the same file content (size and hash) are
    kept; a changed file is extracted again. A shard of another fingerprint is an :class:`EcmaError` unless
    ``overwrite``. With ``prune``, videos of the shard that are not among ``videos`` leave it. Videos that
    cannot be read are listed with stage and reason in ``OUTPUT.failures.tsv`` (always written; header only
    when none failed) and in the report. If every video fails and none is kept, the shard is left exactly as
    it was and the run ends with an :class:`EcmaError`: a bad setting must not empty a store.
    """
    output = Path(output)
    paths, names = check_video_inputs(videos, names)
    for weights in (cfg.visual_pretrained, cfg.audio_checkpoint):
        if weights is not None and Path(weights).is_file():
            verify(weights)  # against the .sha256 written when it was fetched
    with hold_output(output, "ecma extract"):  # one writer per store (ecma.locks)
        return _extract(paths, names, output, cfg, overwrite=overwrite, prune=prune, progress=progress)


def _extract(paths: list[Path], names: list[str], output: Path, cfg: ExtractConfig, *, overwrite: bool, prune: bool,
             progress: bool) -> ExtractReport:
    enc = build_encoders(cfg)
    store = ShardStore(output, fingerprint_of(cfg, enc), overwrite=overwrite)
    report = ExtractReport(failures_path=failures_path_for(output))
    ids = _content_ids(names, paths)
    todo = [(i, n, p) for i, (n, p) in enumerate(zip(names, paths))
            if ids[n] is None or store.existing.get(n) != ids[n]]
    report.skipped = len(paths) - len(todo)

    spec = DecodeSpec(cfg.segment_seconds, cfg.n_segments, cfg.frames_per_segment, cfg.sample_rate,
                      enc.visual.image_size, cfg.profile)
    bar = Progress(len(todo), f"extract {output.name}", "video", bar=progress)

    def decode_failed(d: DecodedVideo) -> None:
        report.failed.append((d.name, *d.error))
        bar.update(1)

    completed = False
    try:
        for batch in decoded_batches(todo, spec, enc.visual.transform, cfg.workers, cfg.batch_videos, decode_failed):
            done = encode_each(batch, enc, cfg, report.failed)
            stamp = now_iso()
            store.write_part([(d.name, a, v, {"extracted_at": stamp, "content_id": ids[d.name] or "", **d.flags})
                              for d, (a, v) in done], stored_dtype(cfg))
            report.extracted += len(done)
            bar.update(len(batch))
        completed = True
    finally:
        bar.close()
        order = {n: i for i, n in enumerate(names)}
        report.failed.sort(key=lambda f: order[f[0]])
        write_failures(report.failures_path, report.failed)
        # Nothing extracted and nothing kept: a bad setting, not bad videos (the same settings would have
        # kept the unchanged ones). Then nothing is written, so the store survives the setting.
        all_failed = bool(todo) and report.extracted == 0 and report.skipped == 0
        if not all_failed:
            # after an error, keep what was finished but remove nothing; a video whose file changed and now
            # fails loses its old features (they belong to the file it replaced)
            report.removed = store.merge(keep=names if prune and completed else None,
                                         drop=[f[0] for f in report.failed] if completed else ())
    if all_failed:
        name, stage, reason = report.failed[0]
        raise EcmaError(
            f"{output}: every one of the {len(todo)} video(s) to extract failed (first: {name}, {stage}: "
            f"{' '.join(reason.split())[:200]}); the shard is left as it was (see {report.failures_path})"
        )
    return report
