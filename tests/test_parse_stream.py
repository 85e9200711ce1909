"""``ecma parse`` in constant memory: the streamed audio track is decord's, sample for sample; the chunks of a
video hold exactly what the whole-video decode holds; their features are the whole video's; and a video
that fails mid-way fails once, cleanly, without costing the others."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ecma.extract.audio_stream import FfmpegAudio, WholeAudio, open_audio
from ecma.extract.chunks import decode_chunks
from ecma.extract.decode import DecodeSpec, _decode_audio, decode_video
from ecma.extract.transform import ImageTransform
from media import FFMPEG, make_video

pytestmark = pytest.mark.skipif(FFMPEG is None or shutil.which("ffprobe") is None,
                                reason="the ffmpeg and ffprobe binaries are needed (Debian's ffmpeg package)")
SR = 48000
SPEC = DecodeSpec(1.0, None, 1, SR, 32)
TRANSFORM = ImageTransform(32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def decord_track(path) -> np.ndarray:
    """What extraction reads: decord's whole track, 48 kHz mono."""
    return _decode_audio(str(path), SPEC)


def read_in_pieces(reader, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    parts = [reader.read(1)]  # a one-sample read, then random sizes, some larger than the track
    while not reader.at_end():
        parts.append(reader.read(int(rng.integers(1, 300_000))))
    assert reader.read(10).size == 0
    return np.concatenate(parts)


def av(path: Path, *, video_seconds: float | None, audio_seconds: float | None, sample_rate: int = 44100) -> Path:
    """A file whose video and audio streams may differ in length (or be absent: None)."""
    cmd = [FFMPEG, "-hide_banner", "-loglevel", "error", "-y"]
    if video_seconds:
        cmd += ["-f", "lavfi", "-i", f"testsrc2=size=64x48:rate=10:duration={video_seconds}"]
    if audio_seconds:
        cmd += ["-f", "lavfi", "-i", f"aevalsrc=0.5*sin(2*PI*(220+110*floor(t))*t):s={sample_rate}:d={audio_seconds}"]
    if video_seconds:
        cmd += ["-c:v", "libx264", "-pix_fmt", "yuv420p"]
    if audio_seconds:
        cmd += ["-c:a", "aac", "-ac", "2"]
    subprocess.run(cmd + [str(path)], check=True)
    return path


# --- the audio track, streamed ---------------------------------------------------------------------------
# (file name, make_video arguments): one file of every (container, decoder) pair audio_stream streams
def _a(codec=None, sample_rate=44100, channels=2):
    return dict(sample_rate=sample_rate, channels=channels, extra=["-c:a", codec] if codec else None)


FORMATS = {
    "aac-stereo-44k.mp4": _a(),  # LLP's format
    "aac-mono-16k.mp4": _a(sample_rate=16000, channels=1),
    "mp3.mp4": _a("libmp3lame"), "ac3.mp4": _a("ac3"), "eac3.mp4": _a("eac3"), "alac.m4a": _a("alac"),
    "pcm-s16.mov": _a("pcm_s16le", 22050),
    "aac-48k.mkv": _a(sample_rate=48000),  # no resampling: the downmix alone
    "mp3-32k.mkv": _a("libmp3lame", 32000), "mp2.mkv": _a("mp2"), "ac3-6ch.mkv": _a("ac3", channels=6),
    "eac3.mkv": _a("eac3"), "flac.mkv": _a("flac"), "pcm-f32.mkv": _a("pcm_f32le"),
    "vorbis.webm": _a("libvorbis"), "opus.webm": _a("libopus", 48000),
    "aac.ts": _a("aac"), "mp3.ts": _a("libmp3lame"), "aac.flv": _a("aac"), "aac.avi": _a("aac"),
    "mp3.avi": _a("libmp3lame"), "mp2.mpg": _a("mp2"), "flac.ogg": _a("flac"), "opus.ogg": _a("libopus", 48000, 1),
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_streamed_track_is_decords(tmp_path, name):
    path = make_video(tmp_path / name, seconds=3.3, video=False, **FORMATS[name])
    reader = open_audio(str(path), SR, decord_track)
    assert isinstance(reader, FfmpegAudio), getattr(reader, "fallback", None)
    got, want = read_in_pieces(reader), decord_track(path)
    assert got.dtype == np.float32 and got.shape == want.shape
    if name.startswith("opus"):
        # decord keeps Opus's pre-skip and ffmpeg 5.1 drops it: added back, the samples differ by float rounding
        # of the two versions' Opus decoders (1.8e-7 measured: about one float32 step at 1.0)
        np.testing.assert_allclose(got, want, rtol=0, atol=3e-7)
    else:
        np.testing.assert_array_equal(got, want)


def test_streamed_track_of_the_real_llp_clip(llp_dir):
    clip = llp_dir / "BjCEufrlXm4.mp4"
    if not clip.is_file():
        pytest.skip(f"the real LLP clip {clip} is not there")
    np.testing.assert_array_equal(read_in_pieces(open_audio(str(clip), SR, decord_track), seed=1), decord_track(clip))


@pytest.mark.parametrize("name,codec", [("a.wma", "wmav2"), ("a.ogg", "libvorbis"), ("a.mp4", "libopus")])
def test_unchecked_kinds_fall_back_to_decords_whole_track(tmp_path, name, codec):
    # ffmpeg 5.1 differs from decord's 4.1 here: it drops WMA's first frame, cuts Ogg Vorbis's end padding,
    # and Opus in MP4 is trimmed by 4.1 in some files and not in others
    path = make_video(tmp_path / name, seconds=3, video=False, sample_rate=48000, channels=2, extra=["-c:a", codec])
    reader = open_audio(str(path), SR, decord_track)
    assert isinstance(reader, WholeAudio) and codec.removeprefix("lib") in reader.fallback
    np.testing.assert_array_equal(read_in_pieces(reader), decord_track(path))


def test_no_ffmpeg_falls_back_to_decords_whole_track(tmp_path, monkeypatch):
    aac = make_video(tmp_path / "a.mp4", seconds=3, video=False)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    reader = open_audio(str(aac), SR, decord_track)
    assert isinstance(reader, WholeAudio) and reader.fallback == "no ffprobe on the PATH"
    np.testing.assert_array_equal(read_in_pieces(reader), decord_track(aac))


def test_no_audio_stream_is_none_and_a_failing_decoder_raises_its_reason(tmp_path, monkeypatch):
    assert open_audio(str(make_video(tmp_path / "v.mp4", seconds=2, audio=False)), SR, decord_track) is None
    # an ffmpeg that gives 2 s of samples and then fails, as on a track corrupt from 2 s on
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n"
                    "if [ \"$1\" = -version ]; then echo 'ffmpeg version 5.1.2'; exit 0; fi\n"  # the checked version
                    "head -c 705600 /dev/zero\necho 'Error while decoding stream #0:1: Invalid data' >&2\nexit 69\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    reader = open_audio(str(make_video(tmp_path / "a.mp4", seconds=3, sample_rate=44100, channels=2)), SR, decord_track)
    assert reader.read(SR).size == SR
    with pytest.raises(RuntimeError, match=r"^Error while decoding stream #0:1: Invalid data$"):
        reader.read(2 * SR)
    reader.close()


# --- chunks: the whole video's data ----------------------------------------------------------------------
CASES = {  # name: (video s, audio s); chunks of 10 segments
    "25s": (25, 25),  # two whole chunks and a part
    "20s": (20, 20),  # exactly two chunks: the track ends on a chunk's last sample
    "10s": (10, 10),  # exactly one chunk, the model's T
    "3.4s": (3.4, 3.4),  # less than one chunk; 3 segments
    "video-longer": (25, 13.6),  # the audio ends in the second chunk and is padded (14 segments of 25)
    "audio-longer": (13, 25.2),
    "no-audio": (23, None),
    "no-video": (None, 23),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("chunk", [10, 20])
def test_chunks_hold_the_whole_videos_data(tmp_path, case, chunk):
    vs, aus = CASES[case]
    path = av(tmp_path / f"{case}.mp4", video_seconds=vs, audio_seconds=aus)
    whole = decode_video(0, case, path, SPEC, TRANSFORM)
    chunks = list(decode_chunks(0, case, path, SPEC, TRANSFORM, chunk))
    assert [c.error for c in chunks] == [None] * len(chunks)
    assert [c.first for c in chunks] == [i * chunk for i in range(len(chunks))]
    assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert len(chunks) == -(-whole.n_segments // chunk)  # no empty chunk at the end
    assert all(c.n_audio <= chunk and c.n_visual <= chunk for c in chunks)
    last = chunks[-1]
    assert last.n_segments == whole.n_segments and last.flags == whole.flags
    assert sum(c.n_audio for c in chunks) == whole.n_audio and sum(c.n_visual for c in chunks) == whole.n_visual
    np.testing.assert_array_equal(np.concatenate([c.waveform for c in chunks]), whole.waveform)
    np.testing.assert_array_equal(np.concatenate([c.images for c in chunks]), whole.images)
    assert {c.audio_reader for c in chunks} == {"none: no audio stream" if aus is None else "ffmpeg stream"}


def test_chunks_refuse_a_fixed_length_and_report_bad_files(tmp_path):
    with pytest.raises(ValueError, match="n_segments must be None"):
        next(decode_chunks(0, "x", tmp_path / "x.mp4", dataclasses.replace(SPEC, n_segments=10), None, 10))
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    for path, stage in ((tmp_path / "gone.mp4", "open"), (text, "decode")):
        (c,) = decode_chunks(0, "x", path, SPEC, TRANSFORM, 10)
        assert c.last and c.images is None and c.error[0] == stage and "\n" not in c.error[1]


def test_a_video_failing_mid_way_gives_its_chunks_then_one_error(tmp_path, monkeypatch):
    from ecma.extract.decode import VisualStream

    path = av(tmp_path / "v.mp4", video_seconds=35, audio_seconds=35)
    real = VisualStream.frames

    def frames(self, first, stop, transform):
        if first >= 20:
            raise RuntimeError("[12:00:00] /src/video_reader.cc:123: Error sending packet\nStack trace: ...")
        return real(self, first, stop, transform)

    monkeypatch.setattr(VisualStream, "frames", frames)
    chunks = list(decode_chunks(0, "v", path, SPEC, TRANSFORM, 10))
    assert [c.error for c in chunks] == [None, None, ("decode", "video: Error sending packet")]
    assert chunks[-1].last and not chunks[1].last


def _rss_bytes() -> int:
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) * 1024


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads this process's RSS from /proc (Linux)")
def test_a_reader_waiting_for_the_next_chunk_decodes_nothing_ahead(tmp_path):
    """Between two chunks the encoders run for seconds: decord's decoding thread must not fill memory with
    the rest of the video meanwhile (it did: ~1 GB after one chunk of a 20-min video, dmlc/decord#157)."""
    import time

    from ecma.extract.decode import VisualStream

    # 90 s at 320x240 and 30 fps: 2,700 frames, 0.6 GB as decord's RGB frames if all were decoded ahead
    path = make_video(tmp_path / "long.mp4", seconds=90, size="320x240", fps=30, audio=False,
                      extra=["-preset", "ultrafast"])
    stream = VisualStream(str(path), DecodeSpec(1.0, None, 1, SR, 224))
    first = stream.frames(0, 20, None)
    before = _rss_bytes()
    time.sleep(3.0)  # decord decodes a 320x240 video at well over 1,000 frames a second
    grown = _rss_bytes() - before
    assert grown < 100e6, f"RSS grew {grown / 1e6:.0f} MB while the reader waited"
    # and the next chunk's frames are those a fresh reader gives
    np.testing.assert_array_equal(stream.frames(20, 40, None), VisualStream(str(path), stream.spec).frames(20, 40, None))
    assert first.shape == (20, 240, 320, 3)


# --- features: the whole video's -------------------------------------------------------------------------
EXTRACT = {"visual_model": "ViT-B-32", "workers": 0, "batch_videos": 4, "device": "cpu", "amp": False, "n_segments": None}


@pytest.fixture(scope="module")
def encoders():
    from ecma.config import ExtractConfig
    from ecma.extract.pipeline import build_encoders

    cfg = ExtractConfig(**EXTRACT)
    return build_encoders(cfg), cfg


@pytest.fixture(scope="module")
def long_videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("long")
    return {"47s": av(folder / "47s.mp4", video_seconds=47, audio_seconds=47),
            "20s": av(folder / "20s.mp4", video_seconds=20, audio_seconds=20),
            "no-audio": av(folder / "no-audio.mp4", video_seconds=23, audio_seconds=None),
            "no-video": av(folder / "no-video.mp4", video_seconds=None, audio_seconds=23)}


def whole_features(paths, enc, cfg):
    from ecma.extract.pipeline import encode_batch

    spec = DecodeSpec(cfg.segment_seconds, None, cfg.frames_per_segment, cfg.sample_rate, enc.visual.image_size)
    out = {}
    for name, p in paths.items():
        d = decode_video(0, name, p, spec, enc.visual.transform)
        out[name] = (d, *encode_batch([d], enc, cfg)[0])
    return out


@pytest.mark.parametrize("batch_videos", [4, 1])
def test_chunked_features_are_the_whole_videos(encoders, long_videos, batch_videos):
    """Audio features equal the whole-video path's bit for bit (a chunk is whole 10-s windows, and the tower's
    windows are the same); visual ones to 1e-5: the image tower's float32 products round differently with the
    number of frames in a batch (a 47-frame batch there, 20- and 7-frame ones here; 4.5e-6 measured), as
    extraction's features already depend on which videos share a batch."""
    from ecma.parse.features import chunk_segments, video_features

    enc, cfg = encoders
    cfg = dataclasses.replace(cfg, batch_videos=batch_videos)
    assert chunk_segments(enc, cfg) == 20 and chunk_segments(enc, cfg, 44) == 40 and chunk_segments(enc, cfg, 1) == 10
    whole = whole_features(long_videos, enc, cfg)
    failures = []
    items = [(i, n, str(p)) for i, (n, p) in enumerate(long_videos.items())]
    got = list(video_features(items, enc, cfg, workers=0, on_failure=lambda *f: failures.append(f)))
    assert not failures and [d.name for d, _, _ in got] == list(long_videos)
    for d, a, v in got:
        w, wa, wv = whole[d.name]
        assert (d.n_segments, d.flags) == (w.n_segments, w.flags) and a.shape == wa.shape and v.shape == wv.shape
        np.testing.assert_array_equal(a, wa)
        np.testing.assert_allclose(v, wv, rtol=0, atol=1e-5)


class CrashOn40x30(ImageTransform):
    """A transform whose process dies on 40x30 frames (the other videos' are 64x48): a decoder crash on a
    hostile file, in a worker."""

    def crop(self, frames):
        if frames.shape[1:3] == (30, 40):
            os._exit(3)
        return super().crop(frames)


def test_workers_keep_order_and_a_crash_costs_only_its_video(tmp_path):
    from ecma.extract.workers import chunk_stream

    paths = {"a": av(tmp_path / "a.mp4", video_seconds=12, audio_seconds=12),
             "gone": tmp_path / "gone.mp4",
             "hostile": make_video(tmp_path / "hostile.mp4", seconds=3, size="40x30"),
             "b": av(tmp_path / "b.mp4", video_seconds=5, audio_seconds=5),
             "c": av(tmp_path / "c.mp4", video_seconds=25, audio_seconds=25),
             "d": av(tmp_path / "d.mp4", video_seconds=3, audio_seconds=3)}
    items = [(i, n, str(p)) for i, (n, p) in enumerate(paths.items())]
    transform = CrashOn40x30(32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    chunks = list(chunk_stream(items, SPEC, transform, 10, workers=2, ahead=1))
    # every video's chunks in input order; the crash is the hostile file's alone, and the next video of its
    # worker (c) is decoded by the replacement
    assert [(c.name, c.first, c.error[0] if c.error else None) for c in chunks] == [
        ("a", 0, None), ("a", 10, None), ("gone", 0, "open"), ("hostile", 0, "decode"), ("b", 0, None),
        ("c", 0, None), ("c", 10, None), ("c", 20, None), ("d", 0, None)]
    assert [c.error for c in chunks if c.name == "hostile"] == [("decode", "the decoder crashed on this file")]
    inline = list(chunk_stream(items[4:5], SPEC, transform, 10, workers=0))
    np.testing.assert_array_equal(np.concatenate([c.images for c in inline]),
                                  np.concatenate([c.images for c in chunks if c.name == "c"]))
