"""The torch-free image transform of the decoding workers gives open_clip's own preprocessing, pixel for pixel."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from ecma.errors import EcmaError
from ecma.extract.transform import ImageTransform

MEAN, STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


@pytest.mark.parametrize("hw", [(240, 320), (320, 240), (224, 224), (100, 150), (1080, 1920), (37, 61)])
def test_crop_and_normalize_equal_open_clips_transform(hw):
    open_clip = pytest.importorskip("open_clip")
    from PIL import Image

    frame = np.random.default_rng(sum(hw)).integers(0, 256, (*hw, 3), dtype=np.uint8)
    want = open_clip.image_transform(224, is_train=False, mean=MEAN, std=STD)(Image.fromarray(frame))
    t = ImageTransform(224, MEAN, STD)
    cropped = t.crop(frame[None])
    assert cropped.shape == (1, 224, 224, 3) and cropped.dtype == np.uint8
    got = t.normalize(torch.from_numpy(cropped))
    assert got.shape == (1, 3, 224, 224)
    np.testing.assert_allclose(got[0].numpy(), want.numpy(), atol=1e-5)


def test_normalize_by_hand():
    t = ImageTransform(2, (0.5, 0.25, 0.0), (0.5, 0.25, 1.0))
    img = torch.tensor([[[[255, 0, 51]] * 2] * 2], dtype=torch.uint8)  # (1, 2, 2, 3)
    got = t.normalize(img)[0, :, 0, 0]
    np.testing.assert_allclose(got.numpy(), [(1 - 0.5) / 0.5, (0 - 0.25) / 0.25, 0.2], atol=1e-6)


def test_squash_resizes_both_sides_and_crop_takes_the_centre():
    frame = np.zeros((1, 40, 80, 3), np.uint8)
    frame[:, :, 30:50] = 255  # a white band in the middle 20 columns
    centre = ImageTransform(20, MEAN, STD, interpolation="nearest").crop(frame)[0]
    assert centre.shape == (20, 20, 3)
    assert centre[:, 5:15].min() == 255 and centre[:, :5].max() == 0 and centre[:, 15:].max() == 0
    squash = ImageTransform(20, MEAN, STD, interpolation="nearest", resize_mode="squash").crop(frame)[0]
    assert squash[:, 8:12].min() == 255 and squash[:, :7].max() == 0


def test_bad_settings_and_frames_are_refused():
    with pytest.raises(EcmaError, match="resize mode"):
        ImageTransform(224, MEAN, STD, resize_mode="longest")
    with pytest.raises(EcmaError, match="interpolation"):
        ImageTransform(224, MEAN, STD, interpolation="lanczos9")
    with pytest.raises(ValueError, match="uint8"):
        ImageTransform(224, MEAN, STD).crop(np.zeros((1, 8, 8, 3), np.float32))


def test_decoding_workers_do_not_import_torch():
    """What keeps worker start-up short: the modules a spawned worker imports leave torch and open_clip out."""
    code = ("import sys, ecma.extract.workers, ecma.extract.decode, ecma.extract.transform; "
            "print(sorted(m for m in ('torch', 'open_clip') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
