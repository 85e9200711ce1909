"""VALOR's frames: ffmpeg's 8-fps JPEGs, 10 of them picked, decoded by PIL, squashed to 224 x 224.

VALOR (``utils/extract_frames.py``, ``utils/clip_preprocess.py``) runs ``ffmpeg -i VIDEO -y -r 8
DIR/%06d.jpg``, sorts the files, takes those at ``round(linspace(0, n - 1, 10))``, opens each with PIL
(``.convert('RGB')``), and applies ``ToTensor()`` then ``Resize((224, 224))`` to the float tensor. Here
ffmpeg writes the same JPEGs, byte for byte, to a pipe (``-f image2pipe -c:v mjpeg``: the encoder the
``.jpg`` name selects, with its defaults and rate control, after the same ``-r 8`` frame-rate conversion;
both muxers lack variable-frame-rate support, so ffmpeg applies constant-frame-rate sync to both); the
10 picked ones are decoded as VALOR decodes them. The resize is torchvision 0.13's (VALOR's
environment.yaml pins it): bilinear, ``align_corners=False`` and, for tensors, no antialiasing (later
torchvision versions antialias by default). Torch-free: this runs in the decoding workers.
"""

from __future__ import annotations

import io
from typing import Optional

import numpy as np

from ecma.extract.valor.ffmpeg import FfmpegRun, run_ffmpeg

FRAME_RATE = 8  # ffmpeg -r 8
N_FRAMES = 10  # frames per video, whatever its length
IMAGE_SIZE = 224


class NoVideoStream(Exception):
    pass


def ffmpeg_jpeg_args(path: str) -> list[str]:
    """VALOR's frame command with the file pattern replaced by a pipe of the same JPEG stream."""
    return ["-i", str(path), "-y", "-r", str(FRAME_RATE), "-f", "image2pipe", "-c:v", "mjpeg", "pipe:1"]


def split_jpegs(stream: bytes) -> list[bytes]:
    """The JPEG files of a concatenated stream, found by walking their markers (not by searching for the
    end marker, which a JPEG's embedded data could contain)."""
    out, pos, n = [], 0, len(stream)
    while pos < n:
        if stream[pos : pos + 2] != b"\xff\xd8":
            raise ValueError(f"JPEG stream: no start-of-image marker at byte {pos}")
        i = pos + 2
        while True:
            while i < n and stream[i] == 0xFF and i + 1 < n and stream[i + 1] == 0xFF:  # fill bytes
                i += 1
            if i + 1 >= n or stream[i] != 0xFF:
                raise ValueError(f"JPEG stream: broken marker at byte {i}")
            marker = stream[i + 1]
            if marker == 0xD9:  # end of image
                i += 2
                break
            if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
                i += 2
                continue
            length = int.from_bytes(stream[i + 2 : i + 4], "big")
            i += 2 + length
            if marker == 0xDA:  # start of scan: entropy-coded data up to the next real marker
                while True:
                    j = stream.find(b"\xff", i)
                    if j < 0 or j + 1 >= n:
                        raise ValueError("JPEG stream: scan data without an end")
                    if stream[j + 1] == 0x00 or 0xD0 <= stream[j + 1] <= 0xD7:  # stuffed byte, restart marker
                        i = j + 2
                        continue
                    i = j
                    break
        out.append(stream[pos:i])
        pos = i
    return out


def pick_indices(n: int, k: int = N_FRAMES) -> np.ndarray:
    """VALOR's choice of k of n frames: ``np.round(np.linspace(0, n - 1, k))`` (round half to even)."""
    if n < 1:
        raise ValueError("no frames to pick from")
    return np.round(np.linspace(0, n - 1, k)).astype(np.int64)


def decode_jpeg(data: bytes) -> np.ndarray:
    """(H, W, 3) uint8: PIL's decoding, converted to RGB as VALOR's ``Image.open(...).convert('RGB')``."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(i0, i1, w0, w1) of torch's bilinear resampling without antialiasing, ``align_corners=False``:
    source x = max(scale (i + 0.5) - 0.5, 0) with scale = n_in / n_out in float32 and x rounded to float32
    once (as torch's CPU kernel computes it, a fused multiply-add: rounding the product first moves x by an
    ulp, 1.5e-5 at x ~ 140, which shows in the pixels); i0 = floor(x), i1 = i0 + 1 (i0 at the last pixel),
    w1 = x - i0, w0 = 1 - w1."""
    scale = np.float64(np.float32(n_in) / np.float32(n_out))
    x = np.maximum((scale * (np.arange(n_out) + 0.5) - 0.5).astype(np.float32), np.float32(0))
    i0 = x.astype(np.int64)
    i1 = np.where(i0 < n_in - 1, i0 + 1, i0)
    w1 = np.clip(x - i0.astype(np.float32), np.float32(0), np.float32(1))
    return i0, i1, np.float32(1) - w1, w1


def squash_resize(image: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] -> (size, size, 3) float32: ``Resize((size, size))`` of torchvision 0.13
    on a tensor (both sides to ``size``, the aspect ratio not kept), summed in the order torch sums: across
    each of the two source rows first, then between them."""
    h, w = image.shape[:2]
    r0, r1, rw0, rw1 = linear_taps(h, size)
    c0, c1, cw0, cw1 = linear_taps(w, size)
    cw0, cw1 = cw0[None, :, None], cw1[None, :, None]
    # torch: out = wh0 * (ww0 a + ww1 b) + wh1 * (ww0 c + ww1 d), in float32
    top = image[r0][:, c0] * cw0 + image[r0][:, c1] * cw1
    bottom = image[r1][:, c0] * cw0 + image[r1][:, c1] * cw1
    return (top * rw0[:, None, None] + bottom * rw1[:, None, None]).astype(np.float32, copy=False)


def to_unit(frame: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1], as ``ToTensor`` divides (by 255, in float32)."""
    return frame.astype(np.float32) / np.float32(255)


def valor_frames(path: str, run: Optional[FfmpegRun] = None) -> tuple[np.ndarray, np.ndarray, int, Optional[float]]:
    """(images (10, 224, 224, 3) float32 in [0, 1], the picked indices, the number of 8-fps frames, the
    duration ffmpeg reports) of a video file. Raises :class:`NoVideoStream` when the file has no video
    stream, ValueError with ffmpeg's one-line reason when it cannot be decoded."""
    run = run or run_ffmpeg(ffmpeg_jpeg_args(path))
    if run.returncode != 0 or not run.stdout:
        if not run.has_stream("Video"):
            raise NoVideoStream(run.reason())
        raise ValueError(run.reason())
    jpegs = split_jpegs(run.stdout)
    picked = pick_indices(len(jpegs))
    images = np.stack([squash_resize(to_unit(decode_jpeg(jpegs[i]))) for i in picked])
    return images, picked, len(jpegs), run.duration()
