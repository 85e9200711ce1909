"""One video -> what the ``valor`` encoders take: 10 squashed frames and VALOR's 480,000 samples.

Called by :func:`ecma.extract.decode.decode_video` (``DecodeSpec.profile`` valor) after its checks that
the file exists and is not empty, with the same contract (never raises for a bad file; ``error`` set
instead), with VALOR's arithmetic: every video has 10 segments, whatever its length (VALOR's code
picks 10 frames and 480,000 samples from any video), so ``segment_seconds`` in ``flags`` records how
long each segment really is (duration / 10). A file without a video stream gets black frames and one
without audio silence, flagged as the native profile flags them (VALOR's own code would stop there).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecma.extract.decoded import DecodedVideo, one_line
from ecma.extract.valor.frames import IMAGE_SIZE, N_FRAMES, NoVideoStream, valor_frames
from ecma.extract.valor.waveform import N_SAMPLES, NoAudioStream, valor_waveform


def decode_valor_video(out: DecodedVideo, p: Path) -> DecodedVideo:
    """Fill ``out`` (a readable, non-empty file's DecodedVideo, from :func:`ecma.extract.decode.decode_video`)."""
    images = wav = None
    duration = audio_seconds = None
    flags: dict = {}
    try:
        images, picked, n_frames, duration = valor_frames(str(p))
        flags.update(frames_8fps=n_frames, frame_indices=[int(i) for i in picked])
    except NoVideoStream:
        pass
    except Exception as e:
        out.error = ("decode", f"video: {one_line(e)}")
        return out
    try:
        wav, rate, channels, audio_seconds = valor_waveform(str(p))
        flags.update(audio_sample_rate=rate, audio_channels=channels)
    except NoAudioStream:
        pass
    except Exception as e:
        out.error = ("decode", f"audio: {one_line(e)}")
        return out
    if images is None and wav is None:
        out.error = ("decode", "neither a video nor an audio stream")
        return out
    seconds = duration or audio_seconds or (flags.get("frames_8fps", 0) / 8) or float(N_FRAMES)
    flags.update(duration_seconds=float(seconds), segment_seconds=float(seconds) / N_FRAMES,
                 audio_missing=wav is None, visual_missing=images is None, trimmed_segments=0,
                 audio_padded_segments=0, visual_padded_segments=0)
    if images is None:
        images = np.zeros((N_FRAMES, IMAGE_SIZE, IMAGE_SIZE, 3), np.float32)
    if wav is None:
        wav = np.zeros(N_SAMPLES, np.float32)
    out.n_segments, out.images, out.n_visual, out.waveform, out.n_audio, out.flags = (
        N_FRAMES, images, N_FRAMES, wav, N_FRAMES, flags)
    return out

