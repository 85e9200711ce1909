"""VALOR's waveform: the audio as librosa loads it, stretched or squeezed to 480,000 samples, int16-rounded.

VALOR (``utils/clap_preprocess.py``, ``get_audio_feature_maps``) calls ``librosa.load(VIDEO, sr=48000)``.
For a video file librosa 0.10 falls back from soundfile to audioread, whose ffmpeg backend runs
``ffmpeg -i VIDEO -f s16le -`` (16-bit samples at the file's own rate, interleaved channels); librosa
scales them by 1/32768, averages the channels (float32) and resamples to 48 kHz with soxr's HQ quality,
then fixes the length to ceil(n * 48000 / rate). VALOR then takes the samples at
``round(linspace(0, len - 1, 480000))`` (any length becomes 10 s: a 7-s clip is stretched by repeating
samples, a 25-s clip squeezed by dropping them) and rounds them to int16 and back (``float32_to_int16``:
clip to [-1, 1], times 32767, truncate; ``int16_to_float32``: divide by 32767). All of it is repeated here
with the same arithmetic. Torch-free: this runs in the decoding workers.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ecma.extract.valor.ffmpeg import FfmpegRun, audioread_stream_info, run_ffmpeg

SAMPLE_RATE = 48000
N_SAMPLES = 480000  # VALOR's fixed length: 10 s at 48 kHz
SOXR_QUALITY = "soxr_hq"  # librosa's default res_type since 0.10


class NoAudioStream(Exception):
    pass


def ffmpeg_pcm_args(path: str) -> list[str]:
    """audioread's ffmpeg command (``audioread/ffdec.py``)."""
    return ["-i", str(path), "-f", "s16le", "-"]


def librosa_samples(pcm: bytes, channels: int) -> np.ndarray:
    """int16 little-endian interleaved bytes -> mono float32, as librosa's audioread path makes them
    (``util.buf_to_float`` scales by 1/32768; ``to_mono`` averages the channels in float32)."""
    y = np.frombuffer(pcm, "<i2").astype(np.float32) * np.float32(1.0 / 32768)  # exact: a power of two
    if channels > 1:
        y = y[: len(y) // channels * channels].reshape(-1, channels).T
        y = np.mean(y, axis=0)
    return y


def resample(y: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """``librosa.resample(y, orig_sr, target_sr, res_type='soxr_hq')``: soxr, then the length fixed to
    ceil(n * target / orig) (zero-padded or cut), in y's dtype; unchanged when the rates are equal."""
    if orig_sr == target_sr:
        return y
    import soxr

    n_samples = int(np.ceil(y.shape[-1] * float(target_sr) / orig_sr))
    y_hat = soxr.resample(y, orig_sr, target_sr, quality=SOXR_QUALITY)
    if len(y_hat) > n_samples:
        y_hat = y_hat[:n_samples]
    elif len(y_hat) < n_samples:
        y_hat = np.pad(y_hat, (0, n_samples - len(y_hat)))
    return np.asarray(y_hat, dtype=y.dtype)


def index_resample(y: np.ndarray, n: int = N_SAMPLES) -> np.ndarray:
    """VALOR's length fix: the samples at ``np.round(np.linspace(0, len - 1, n))`` (int32 indices)."""
    if len(y) == 0:
        raise ValueError("no audio samples")
    return y[np.round(np.linspace(0, len(y) - 1, n)).astype(np.int32)]


def int16_round_trip(y: np.ndarray) -> np.ndarray:
    """LAION-CLAP's ``int16_to_float32(float32_to_int16(y))``, as VALOR copies them (float64 division)."""
    q = (np.clip(y, a_min=-1.0, a_max=1.0) * 32767.0).astype(np.int16)
    return (q / 32767.0).astype(np.float32)


def librosa_load(path: str, run: Optional[FfmpegRun] = None) -> tuple[np.ndarray, int, int]:
    """(mono float32 at 48 kHz, the file's rate, its channels) as ``librosa.load(path, sr=48000)`` gives
    them for a file soundfile cannot read (every video container). Raises :class:`NoAudioStream` for a
    file without audio, ValueError with ffmpeg's one-line reason when it cannot be decoded."""
    run = run or run_ffmpeg(ffmpeg_pcm_args(path))
    if not run.has_stream("Audio"):
        raise NoAudioStream(run.reason())
    if run.returncode != 0:
        raise ValueError(run.reason())
    rate, channels = audioread_stream_info(run.log)
    if rate <= 0 or channels <= 0:
        raise ValueError(f"ffmpeg did not report the audio's sample rate and channels ({rate} Hz, {channels} channels)")
    y = librosa_samples(run.stdout, channels)
    if len(y) == 0:
        raise ValueError("the audio stream has no samples")
    return resample(y, rate), rate, channels


def valor_waveform(path: str, run: Optional[FfmpegRun] = None) -> tuple[np.ndarray, int, int, float]:
    """(480,000 float32 samples as VALOR feeds CLAP, the file's rate, its channels, seconds of audio)."""
    y, rate, channels = librosa_load(path, run)
    return int16_round_trip(index_resample(y)), rate, channels, len(y) / SAMPLE_RATE
