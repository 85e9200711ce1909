"""A video's audio track as decord's ``AudioReader`` gives it (mono float32 at the target rate), read in pieces.

Why not decord itself: ``AudioReader`` decodes and resamples the whole track when it is constructed and
holds it, in several copies, until it is freed: memory grows with the video's length (20 minutes of sound
are ~0.23 GB at 48 kHz in one copy). Why not ffmpeg's own resampling (``-ac 1 -ar 48000``): its samples are
not decord's. decord resamples each decoded frame with libswresample and then flushes the resampler, every
frame; the first flush pads the resampler's input with a reflection of that frame's last samples, so that
decord's track lies ~17 output samples later than ffmpeg's and differs by up to ~0.03 around frame edges
(measured on the real LLP clip and on a generated one). Every feature a model was trained on comes from
decord's samples, so a parse must have the same.

What this does: the ``ffmpeg`` binary decodes the track and nothing else (no resampling, no downmix: the
decoder's own samples, in its own sample format, through a pipe), and the samples go through decord's own
libswresample (the library decord's wheel ships, already loaded by ``import decord``, called with ctypes)
exactly as decord calls it: the same options, the first decoded frame alone and then a flush, as decord
does after every frame. After that first flush the resampler's output does not depend on how the input is
cut (checked with random cuts), so the rest goes in blocks of any size. Debian's ffmpeg 5.1 decodes to the
same samples as decord's bundled libavcodec 58, and the result equals decord's track bit for bit
(``tests/test_parse_stream.py``: AAC, MP3, MP2, AC-3, E-AC-3, FLAC, ALAC, Vorbis and PCM tracks in the
containers of ``_EXACT``, and the real LLP clip), Opus tracks to within 1.8e-7 (float rounding of the two
versions' Opus decoders, about one float32 step). Other kinds of track (``_EXACT`` says which were checked)
are read whole by decord, as below.
The ffmpeg process decodes in parallel with its reader, and the pipe holds at most a few blocks.

Where that cannot run (no ``ffmpeg``/``ffprobe`` on the PATH, or not of major version 5, the one checked; a
decord without its own libswresample; a sample format the pipe cannot carry), :func:`open_audio` falls back to decord's whole track, handed out in
pieces: the same samples, with memory that grows with the track (``fallback`` says why).
"""

from __future__ import annotations

import ctypes
import glob
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

# decoder sample format -> (raw format ffmpeg writes, numpy dtype); '...p' formats are planar in the decoder
_RAW = {"u8": ("u8", np.uint8), "s16": ("s16le", np.int16), "s32": ("s32le", np.int32),
        "flt": ("f32le", np.float32), "dbl": ("f64le", np.float64)}
_BLOCK_FRAMES = 65536  # input sample frames per read after the first frame (~1.5 s at 44.1 kHz)
# (container, decoder) pairs whose samples from Debian's ffmpeg 5.1 equal those of decord's libavcodec 58,
# each checked on a file (tests/test_parse_stream.py); any other pair goes to the whole-track fallback. The
# versions differ elsewhere: 5.1 cuts an Ogg Vorbis stream's end padding, which 4.1 keeps, drops the first
# frame of WMA, and 4.1 itself drops Opus's pre-skip in some MP4 files and not in others. AAC: the LC profile
# only (HE-AAC's SBR could not be generated to check). Opus: the pre-skip is added back (_opus_preskip).
# 'pcm' stands for every pcm_* decoder.
_EXACT = {
    "mov,mp4,m4a,3gp,3g2,mj2": {"aac", "mp3", "ac3", "eac3", "alac", "pcm"},
    "matroska,webm": {"aac", "mp3", "mp2", "ac3", "eac3", "flac", "vorbis", "opus", "pcm"},
    "mpegts": {"aac", "mp3"},
    "flv": {"aac"},
    "avi": {"aac", "mp3"},
    "mpeg": {"mp2"},
    "ogg": {"flac", "opus"},
}


class AudioUnavailable(Exception):
    """The streaming reader cannot run here (the reason says why); the whole-track reader can."""


class _Swr:
    """decord's libswresample and libavutil, through ctypes (found once per process)."""

    _libs: Optional[tuple] = None

    @classmethod
    def libs(cls) -> tuple:
        if cls._libs is None:
            cls._libs = _load_decord_libs()
        return cls._libs


def _decord_lib(stem: str) -> Optional[str]:
    """Path of the copy of ``stem`` (e.g. 'libswresample') that decord's own library uses."""
    import decord

    pkg = Path(decord.__file__).resolve().parent
    found = sorted(glob.glob(str(pkg.parent / "decord.libs" / f"{stem}-*.so*")))  # the wheel's bundled copy
    if found:
        return found[0]
    try:  # a decord built against the system's libraries: the copy its library has loaded
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if Path(path).name.startswith(stem + ".so") or Path(path).name.startswith(stem + "-"):
                    return path
    except OSError:
        pass
    return None


def _load_decord_libs() -> tuple:
    swr_path, avutil_path = _decord_lib("libswresample"), _decord_lib("libavutil")
    if swr_path is None or avutil_path is None:
        raise AudioUnavailable("decord's libswresample was not found")
    try:
        swr, avutil = ctypes.CDLL(swr_path), ctypes.CDLL(avutil_path)
        vp, cp, i64 = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64
        swr.swr_alloc.restype = vp
        swr.swr_init.argtypes = [vp]
        swr.swr_convert.argtypes = [vp, vp, ctypes.c_int, vp, ctypes.c_int]
        swr.swr_free.argtypes = [ctypes.POINTER(vp)]
        avutil.av_opt_set_channel_layout.argtypes = [vp, cp, i64, ctypes.c_int]
        avutil.av_opt_set_int.argtypes = [vp, cp, i64, ctypes.c_int]
        avutil.av_opt_set_sample_fmt.argtypes = [vp, cp, ctypes.c_int, ctypes.c_int]
        avutil.av_get_channel_layout.argtypes = [cp]
        avutil.av_get_channel_layout.restype = ctypes.c_uint64
        avutil.av_get_default_channel_layout.argtypes = [ctypes.c_int]
        avutil.av_get_default_channel_layout.restype = i64
        avutil.av_get_sample_fmt.argtypes = [cp]
    except (OSError, AttributeError) as e:  # another build of decord, with other libraries
        raise AudioUnavailable(f"decord's libswresample cannot be called ({e})") from None
    return swr, avutil


CHECKED_FFMPEG = (5, 1)  # the version whose decoders _EXACT was checked with (Debian 12's, conda-forge's 5.1.2)
_versions: dict[str, Optional[tuple[int, int]]] = {}


def ffmpeg_version(binary: str) -> Optional[tuple[int, int]]:
    """(major, minor) of an ffmpeg/ffprobe binary, from its -version line (None when it does not say)."""
    if binary not in _versions:
        p = subprocess.run([binary, "-version"], capture_output=True, text=True)
        m = re.search(r"version n?(\d+)\.(\d+)", p.stdout)
        _versions[binary] = (int(m.group(1)), int(m.group(2))) if m else None
    return _versions[binary]


def _checked_binary(name: str) -> str:
    """The path of ffmpeg or ffprobe if it is the checked version, else AudioUnavailable saying why not."""
    binary = shutil.which(name)
    if binary is None:
        raise AudioUnavailable(f"no {name} on the PATH")
    version = ffmpeg_version(binary)
    if version is None or version[0] != CHECKED_FFMPEG[0]:
        shown = "an unknown version" if version is None else "version %d.%d" % version
        raise AudioUnavailable(f"{binary} is {shown}; the streamed samples were checked against decord's with "
                               f"{name} {CHECKED_FFMPEG[0]}.x")
    return binary


def probe_audio(path: str) -> Optional[dict]:
    """The first audio stream's decoder settings and its first decoded frame's length (ffprobe), or None
    when the file has no audio stream. Raises RuntimeError with ffprobe's reason when it cannot read it."""
    ffprobe = _checked_binary("ffprobe")
    # a few packets are enough for the first frame; a frame of encoder priming may decode to nothing
    cmd = [ffprobe, "-v", "error", "-select_streams", "a:0", "-read_intervals", "%+#16", "-of", "json", "-show_entries",
           "stream=codec_name,profile,sample_rate,channels,channel_layout,sample_fmt:frame=nb_samples:format=format_name",
           path]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(_last_line(p.stderr) or f"ffprobe exited with status {p.returncode}")
    info = json.loads(p.stdout or "{}")
    if not info.get("streams"):
        return None
    stream = info["streams"][0]
    frames = [f["nb_samples"] for f in info.get("frames", []) if f.get("nb_samples")]
    return {**stream, "format_name": info.get("format", {}).get("format_name", ""),
            "first_frame": frames[0] if frames else None}


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


class FfmpegAudio:
    """The track decoded by ffmpeg and resampled by decord's libswresample; ``read(n)`` gives the next n
    samples (fewer only at the end of the track)."""

    fallback: Optional[str] = None

    def __init__(self, path: str, sample_rate: int, info: dict):
        ffmpeg = _checked_binary("ffmpeg")
        fmt, codec = str(info.get("sample_fmt", "")), str(info.get("codec_name", ""))
        planar = fmt.endswith("p")
        container = str(info.get("format_name", ""))
        checked = _EXACT.get(container, set())
        if ("pcm" if codec.startswith("pcm_") else codec) not in checked or (codec == "aac" and info.get("profile") != "LC"):
            raise AudioUnavailable(f"{codec} {info.get('profile') or ''}".strip() + f" audio in {container or 'this container'}"
                                   " is not among the kinds checked to give decord's samples when streamed")
        if fmt.rstrip("p") not in _RAW or not info.get("first_frame"):
            raise AudioUnavailable(f"sample format {fmt!r} or its frame length is not known to the reader")
        raw, self._dtype = _RAW[fmt.rstrip("p")]
        self._channels, self._rate, self._out_rate = int(info["channels"]), int(info["sample_rate"]), sample_rate
        self._first = int(info["first_frame"])
        self._planar = planar
        swr, avutil = _Swr.libs()
        self._lib = swr
        self._ctx = ctypes.c_void_p(swr.swr_alloc())
        layout = avutil.av_get_channel_layout(str(info.get("channel_layout") or "").encode())
        if not layout or bin(layout).count("1") != self._channels:  # decord: the decoder's, else the default
            layout = avutil.av_get_default_channel_layout(self._channels)
        mono = avutil.av_get_channel_layout(b"mono")
        avutil.av_opt_set_channel_layout(self._ctx, b"in_channel_layout", layout, 0)
        avutil.av_opt_set_channel_layout(self._ctx, b"out_channel_layout", mono, 0)
        avutil.av_opt_set_int(self._ctx, b"in_sample_rate", self._rate, 0)
        avutil.av_opt_set_int(self._ctx, b"out_sample_rate", sample_rate, 0)
        avutil.av_opt_set_sample_fmt(self._ctx, b"in_sample_fmt", avutil.av_get_sample_fmt(fmt.encode()), 0)
        avutil.av_opt_set_sample_fmt(self._ctx, b"out_sample_fmt", avutil.av_get_sample_fmt(b"fltp"), 0)
        if swr.swr_init(self._ctx) < 0:
            self._free()
            raise AudioUnavailable(f"libswresample refused {self._channels} channels of {fmt} at {self._rate} Hz")
        self._frame_bytes = self._channels * np.dtype(self._dtype).itemsize
        decode = [ffmpeg, "-nostdin", "-v", "error", "-i", path, "-map", "0:a:0", "-vn", "-sn", "-dn",
                  "-c:a", f"pcm_{raw}", "-f", raw, "pipe:1"]
        self._prefix = _opus_preskip(decode, self._first, self._frame_bytes) if codec == "opus" else b""
        self._first += len(self._prefix) // self._frame_bytes  # decord's first frame holds the pre-skip too
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(decode, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr)
        self._pending: list[np.ndarray] = []  # resampled samples not handed out yet
        self._n_pending = 0
        self._started = False
        self._done = False

    def at_end(self) -> bool:
        """Whether every sample has been read."""
        while self._n_pending == 0 and not self._done:
            self._pull()
        return self._n_pending == 0

    def read(self, n: int) -> np.ndarray:
        while self._n_pending < n and not self._done:
            self._pull()
        out = np.concatenate(self._pending) if self._pending else np.zeros(0, np.float32)
        head, rest = out[:n], out[n:]
        self._pending, self._n_pending = ([rest] if rest.size else []), rest.size
        return head

    def _pull(self) -> None:
        if not self._started:
            frames, data = self._first, self._prefix + self._proc.stdout.read(self._first * self._frame_bytes - len(self._prefix))
        else:
            frames, data = _BLOCK_FRAMES, self._proc.stdout.read(_BLOCK_FRAMES * self._frame_bytes)
        usable = len(data) // self._frame_bytes * self._frame_bytes
        if usable:
            block = np.frombuffer(data[:usable], self._dtype).reshape(-1, self._channels)
            self._convert(block)
            self._started = True
        if len(data) < frames * self._frame_bytes:  # the end of the pipe
            self._proc.stdout.close()
            code = self._proc.wait()
            if code != 0:
                self._stderr.seek(0)
                reason = _last_line(self._stderr.read().decode("utf-8", "replace"))
                raise RuntimeError(reason or f"ffmpeg exited with status {code}")
            self._done = True

    def _convert(self, block: np.ndarray) -> None:
        """One swr_convert of ``block`` and the flush after it, as decord's HandleFrame does."""
        nb = len(block)
        if self._planar:
            planes = [np.ascontiguousarray(block[:, c]) for c in range(self._channels)]
            ins = (ctypes.c_void_p * self._channels)(*[p.ctypes.data for p in planes])
        else:
            block = np.ascontiguousarray(block)
            ins = (ctypes.c_void_p * 1)(block.ctypes.data)
        n_out = -(-nb * self._out_rate // self._rate)  # av_rescale_rnd(nb, out, in, AV_ROUND_UP)
        buf = np.empty(n_out, np.float32)
        outs = (ctypes.c_void_p * 1)(buf.ctypes.data)
        got = self._lib.swr_convert(self._ctx, outs, n_out, ins, nb)
        while got > 0:
            self._pending.append(buf[:got].copy())
            self._n_pending += got
            got = self._lib.swr_convert(self._ctx, outs, n_out, None, 0)  # decord flushes after every frame
        if got < 0:
            raise RuntimeError(f"libswresample failed ({got})")

    def _free(self) -> None:
        if self._ctx:
            self._lib.swr_free(ctypes.byref(self._ctx))
            self._ctx = ctypes.c_void_p()

    def close(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc is not None and proc.stdout and not proc.stdout.closed:
            proc.stdout.close()
        if getattr(self, "_stderr", None) is not None:
            self._stderr.close()
        self._free()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _opus_preskip(decode: list[str], first_frame: int, frame_bytes: int) -> bytes:
    """The samples of an Opus track's pre-skip (its first ~6.5 ms), which decord keeps and ffmpeg 5.1 drops.

    decord's libavcodec 58 does not drop the pre-skip that Opus streams declare (a stream's first samples,
    the decoder's warm-up) and ffmpeg 5.1 does; both cut the stream's end padding. So decord's samples are
    the pre-skip followed by ffmpeg's: the pre-skip is the head of the first frame decoded with skipping off
    (``-flags2 +skip_manual``), as long as the first frame is longer than what ffmpeg dropped of it."""
    cmd = [decode[0], "-flags2", "+skip_manual", *decode[1:]]
    cmd[cmd.index("-c:a") : cmd.index("-c:a")] = ["-frames:a", "1"]
    p = subprocess.run(cmd, capture_output=True)
    if p.returncode != 0:
        raise RuntimeError(_last_line(p.stderr.decode("utf-8", "replace")) or "ffmpeg could not decode the first frame")
    untrimmed = len(p.stdout) // frame_bytes
    if untrimmed < first_frame:
        raise AudioUnavailable("the Opus pre-skip spans more than the first frame")
    return p.stdout[: (untrimmed - first_frame) * frame_bytes]


class WholeAudio:
    """decord's whole track, handed out in pieces (the fallback: memory grows with the track)."""

    def __init__(self, waveform: np.ndarray, fallback: str):
        self._wav, self._at, self.fallback = waveform, 0, fallback

    def read(self, n: int) -> np.ndarray:
        out = self._wav[self._at : self._at + n]
        self._at += len(out)
        return out

    def at_end(self) -> bool:
        return self._at >= len(self._wav)

    def close(self) -> None:
        self._wav = np.zeros(0, np.float32)


def open_audio(path: str, sample_rate: int, decode_whole) -> Optional[FfmpegAudio | WholeAudio]:
    """The first audio track of ``path`` as a reader, or None when the file has none. ``decode_whole(path)``
    gives decord's whole track for the fallback (it raises decord's error when there is no audio stream).
    Raises RuntimeError (one line) when the track cannot be read."""
    try:
        info = probe_audio(path)
        if info is None:
            return None
        return FfmpegAudio(path, sample_rate, info)
    except AudioUnavailable as e:
        return WholeAudio(decode_whole(path), str(e))


__all__ = ["AudioUnavailable", "FfmpegAudio", "WholeAudio", "open_audio", "probe_audio"]
