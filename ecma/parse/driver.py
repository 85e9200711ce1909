"""``ecma parse``: videos -> decoded in chunks in the extraction workers -> encoded in batches -> the model
over windows -> per video NAME.json, NAME.html, NAME.png, and one index.html.

The extraction pipeline's decoders and encoders make the features (:mod:`ecma.parse.features`: in chunks
of seconds, so that memory does not grow with a video's length), with the extractor the checkpoint was
trained on (:mod:`ecma.parse.extractor`); every whole second of a video is kept (``n_segments`` None), and
the windows (:mod:`ecma.parse.windows`) bring any length to the model's. A file that cannot be decoded is
listed in ``failures.tsv`` and on the index page, and the others go on.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ecma import __version__
from ecma.config import load_config
from ecma.data.shards import now_iso
from ecma.device import amp_dtype, precision_name
from ecma.errors import EcmaError
from ecma.evaluation.inference import run_model
from ecma.extract.decode import DecodeSpec
from ecma.extract.decoded import DecodedVideo
from ecma.extract.fingerprint import file_sha256
from ecma.extract.pipeline import check_video_inputs, encode_each, stored_dtype, write_failures
from ecma.extract.workers import decoded_batches
from ecma.io import write_json
from ecma.locks import hold_output
from ecma.parse.events import extract_events
from ecma.parse.extractor import CheckpointExtractor, checkpoint_extractor, with_runtime
from ecma.parse.features import video_features
from ecma.parse.index import write_index
from ecma.parse.page import write_page
from ecma.parse.record import build_record
from ecma.parse.timeline_png import plot_timeline
from ecma.parse.windows import parse_probabilities
from ecma.models.checkpoint import load_model


@dataclass
class ParseReport:
    output_dir: Path
    parsed: list[dict] = field(default_factory=list)  # the records written
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (name, stage, reason)

    @property
    def index(self) -> Path:
        return self.output_dir / "index.html"

    @property
    def failures_path(self) -> Path:
        return self.output_dir / "failures.tsv"


def _extract_config(checkpoint: str, stored, config: Optional[str], workers: Optional[int], device: Optional[str]):
    """The extract settings to rebuild the encoders from, and how to name them in a mismatch."""
    if config is not None:
        cfg, source = load_config(config).extract, f"{config} (its extract section)"
    else:
        cfg, source = stored.extract, "its stored config's extract section"
    return with_runtime(cfg, workers=workers, device=device), source


def _thresholds(stored, video: Optional[float], segment: Optional[float]) -> dict:
    th = {"video": stored.eval.video_threshold if video is None else video,
          "segment": stored.eval.segment_threshold if segment is None else segment}
    for k, v in th.items():
        if not 0.0 <= v <= 1.0:
            raise EcmaError(f"--{k}-threshold must be in [0, 1], got {v}")
    return th


def parse_videos(checkpoint: str | os.PathLike, videos: Sequence[str | os.PathLike], output_dir: str | os.PathLike, *,
                 config: Optional[str] = None, video_threshold: Optional[float] = None,
                 segment_threshold: Optional[float] = None, stride: Optional[int] = None, whole: bool = False,
                 embed_video: bool = False, workers: Optional[int] = None, device: Optional[str] = None,
                 progress: bool = True) -> ParseReport:
    """Parse ``videos`` with the model of ``checkpoint``; write the outputs into ``output_dir``."""
    checkpoint = str(checkpoint)
    if not videos:
        raise EcmaError("no videos given")
    model, stored, payload = load_model(checkpoint)
    classes = payload["classes"]
    paths, names = check_video_inputs(videos, None)
    thresholds = _thresholds(stored, video_threshold, segment_threshold)
    cfg, source = _extract_config(checkpoint, stored, config, workers, device)
    ex = checkpoint_extractor(checkpoint, payload.get("fingerprint"), cfg, source)
    cfg = ex.cfg  # the valor profile where the checkpoint was trained on VALOR's features
    enc = ex.encoders
    if (enc.audio.dim, enc.visual.dim) != (stored.model.audio_dim, stored.model.visual_dim):
        raise EcmaError(f"{checkpoint}: the encoders give audio {enc.audio.dim}-d and visual {enc.visual.dim}-d features, "
                        f"but the model takes {stored.model.audio_dim}-d and {stored.model.visual_dim}-d")
    if stride is not None and not 1 <= stride <= ex.window:
        raise EcmaError(f"--stride must be between 1 and the window of {ex.window} segments, got {stride}")
    model = model.to(enc.device)
    precision = amp_dtype(enc.device, stored.train.amp)
    prov = {"checkpoint": checkpoint, "checkpoint_sha256": file_sha256(checkpoint), "fingerprint": ex.fingerprint,
            "ecma_version": __version__, "variant": stored.train.variant, "precision": precision_name(precision)}

    def infer(a: np.ndarray, v: np.ndarray):
        out = run_model(model, a, v, batch_size=stored.eval.batch_size, device=enc.device, precision=precision)
        return out.video_prob, out.audio_prob, out.visual_prob

    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = ParseReport(out_dir)
    by_index = dict(enumerate(paths))

    def finish(d: DecodedVideo, audio: np.ndarray, visual: np.ndarray) -> None:
        # the model saw features stored in the extraction's dtype: round to it as the shard would have
        audio = audio.astype(stored_dtype(cfg)).astype(np.float32)
        visual = visual.astype(stored_dtype(cfg)).astype(np.float32)
        probs = parse_probabilities(audio, visual, infer, ex.window, stride, whole=whole)
        # the valor profile fits every video into 10 segments: each lasts a tenth of the video
        seconds = float(d.flags.get("segment_seconds", cfg.segment_seconds))
        duration = float(d.flags.get("duration_seconds") or d.n_segments * seconds)
        events = extract_events(probs.audio, probs.visual, probs.video_gate, classes, video_threshold=thresholds["video"],
                                segment_threshold=thresholds["segment"], segment_seconds=seconds, duration=duration)
        video_path = str(by_index[d.index])
        record = build_record(name=d.name, path=video_path, duration=duration, segment_seconds=seconds,
                              flags=d.flags, classes=classes, probs=probs, events=events, thresholds=thresholds,
                              window_source=ex.window_source,
                              provenance={**prov, "audio_reader": getattr(d, "audio_reader", "decord whole track"), "created_at": now_iso()})
        write_json(out_dir / f"{d.name}.json", record)
        write_page(out_dir / f"{d.name}.html", record, video_path, embed=embed_video)
        plot_timeline(record, out_dir / f"{d.name}.png")
        report.parsed.append(record)

    with hold_output(out_dir, "ecma parse"):  # two parses never write one folder's pages and index at once
        _run_pipeline(paths, names, ex, cfg, finish, report, progress)
        order = {n: i for i, n in enumerate(names)}
        report.parsed.sort(key=lambda r: order[r["video"]["name"]])
        report.failed.sort(key=lambda f: order[f[0]])
        write_failures(report.failures_path, report.failed)
        write_index(report.index, report.parsed, report.failed, checkpoint=checkpoint)
    return report


def _run_pipeline(paths, names, ex: CheckpointExtractor, cfg, finish, report: ParseReport, progress: bool) -> None:
    """Decode in the workers, encode ``batch_videos`` at a time, hand each video's features to ``finish``.

    The native profile decodes and encodes in chunks (memory flat in the video's length); the valor profile
    reads each video whole, as VALOR does: its ten frames and its 480,000 audio samples are spread over the
    whole video, so no part of it can be encoded before the whole is decoded.
    """
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(paths), unit="video", desc="parse", file=sys.stderr, dynamic_ncols=True)

    def failed(name: str, stage: str, reason: str) -> None:
        report.failed.append((name, stage, reason))
        if bar is not None:
            bar.update(1)

    # One video has nothing to overlap its decoding with, and starting a worker costs a second or two.
    workers = 0 if len(paths) == 1 else min(cfg.workers, len(paths))
    try:
        items = list(zip(range(len(paths)), names, map(str, paths)))
        if cfg.profile == "valor":
            _whole_videos(items, ex.encoders, cfg, workers, finish, failed, bar)
            return
        for d, a, v in video_features(items, ex.encoders, cfg, workers=workers, on_failure=failed):
            finish(d, a, v)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()


def _whole_videos(items, enc, cfg, workers: int, finish, failed, bar) -> None:
    """Each video decoded whole (the valor profile), ``batch_videos`` encoded at a time."""
    spec = DecodeSpec(cfg.segment_seconds, None, cfg.frames_per_segment, cfg.sample_rate, enc.visual.image_size,
                      cfg.profile)
    errors: list[tuple[str, str, str]] = []
    for batch in decoded_batches(items, spec, enc.visual.transform, workers, cfg.batch_videos,
                                 lambda d: failed(d.name, *d.error)):
        for d, (a, v) in encode_each(batch, enc, cfg, errors):
            finish(d, a, v)
            if bar is not None:
                bar.update(1)
        for error in errors:
            failed(*error)
        errors.clear()
