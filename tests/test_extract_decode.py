"""Decoding of messy inputs (no encoders): every bad file gets a defined outcome, every odd one the right shape."""

from __future__ import annotations

import numpy as np
import pytest

from ecma.data.datasets import match_videos
from ecma.data.names import youtube_id
from ecma.extract.decode import DecodeSpec, decode_video, frame_indices, frame_times, segments_present
from media import FFMPEG, make_video

pytestmark = pytest.mark.skipif(FFMPEG is None, reason="the ffmpeg binary is needed to make test videos")
SR = 48000
SPEC = DecodeSpec(n_segments=10, sample_rate=SR, image_size=32)


def test_segment_rule_by_hand():
    assert segments_present(9.98, 1.0) == 10  # an LLP clip a few ms short still has 10 segments
    assert segments_present(3.4, 1.0) == 3 and segments_present(3.5, 1.0) == 4
    assert segments_present(0.2, 1.0) == 1 and segments_present(0.0, 1.0) == 0
    np.testing.assert_allclose(frame_times(2, 1.0, 1), [0.5, 1.5])
    np.testing.assert_allclose(frame_times(1, 1.0, 4), [0.125, 0.375, 0.625, 0.875])
    starts = np.array([0.0, 0.1, 0.5, 2.0])  # variable frame rate
    assert frame_indices(starts, np.array([0.05, 0.5, 1.9, 2.5, 9.0])).tolist() == [0, 2, 2, 3, 3]


@pytest.mark.parametrize("kind", ["zero-byte", "truncated", "not-a-video", "missing"])
def test_bad_files_fail_with_a_reason(tmp_path, kind):
    good = make_video(tmp_path / "good.mp4", seconds=2, extra=["-movflags", "+faststart"])
    p = tmp_path / f"{kind}.mp4"
    if kind == "zero-byte":
        p.write_bytes(b"")
    elif kind == "truncated":
        p.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif kind == "not-a-video":
        p.write_text("filename\tevent_labels\n")
    d = decode_video(0, kind, p, SPEC)
    assert d.error is not None and d.images is None
    stage, reason = d.error
    assert stage == ("open" if kind in ("zero-byte", "missing") else "decode")
    assert reason and "\n" not in reason


def test_no_audio_stream_gives_silence_and_flag(tmp_path):
    d = decode_video(0, "v", make_video(tmp_path / "v.mp4", seconds=3, audio=False), SPEC)
    assert d.error is None and d.flags["audio_missing"] and not d.flags["visual_missing"]
    assert d.n_audio == 10 and d.waveform.shape == (10 * SR,) and not d.waveform.any()
    assert d.n_visual == 3 and d.flags["visual_padded_segments"] == 7


def test_no_video_stream_gives_black_frame_and_flag(tmp_path):
    d = decode_video(0, "a", make_video(tmp_path / "a.mp4", seconds=2, video=False), SPEC)
    assert d.error is None and d.flags["visual_missing"] and not d.flags["audio_missing"]
    assert d.n_visual == 1 and not np.asarray(d.images).any()
    assert d.n_audio == 2 and d.flags["audio_padded_segments"] == 8


@pytest.mark.parametrize(
    "name,kw,n_visual,n_audio,trimmed",
    [
        ("short.mp4", dict(seconds=2.2), 2, 2, 0),
        ("long.mp4", dict(seconds=12.0, fps=5, size="32x24"), 10, 10, 2),
        ("odd-fps.mp4", dict(seconds=3, fps=7.3), 3, 3, 0),
        ("vfr.mp4", dict(seconds=3, fps=30, vfr=True), 3, 3, 0),
        ("hd.mp4", dict(seconds=1, fps=5, size="1920x1080"), 1, 1, 0),
        ("stereo96k.mp4", dict(seconds=2, channels=2, sample_rate=96000), 2, 2, 0),
        ("mono8k.mp4", dict(seconds=2, sample_rate=8000), 2, 2, 0),
        ("rotated.mp4", dict(seconds=2, rotate=90), 2, 2, 0),
        ("vidéo ñ 日本.mp4", dict(seconds=2), 2, 2, 0),
        ("clip.webm", dict(seconds=2, vcodec="libvpx"), 2, 2, 0),
        ("clip.mkv", dict(seconds=2), 2, 2, 0),
    ],
)
def test_odd_inputs_decode_to_the_right_shapes(tmp_path, name, kw, n_visual, n_audio, trimmed):
    d = decode_video(3, name, make_video(tmp_path / name, **kw), SPEC)
    assert d.error is None, d.error
    assert d.n_segments == 10 and d.n_visual == n_visual and d.n_audio == n_audio
    assert d.images.shape[0] == n_visual and d.images.shape[-1] == 3
    assert d.waveform.shape == (n_audio * SR,) and np.abs(d.waveform).max() > 0.1
    assert d.flags["trimmed_segments"] == trimmed
    assert d.flags["visual_padded_segments"] == 10 - n_visual
    if name == "hd.mp4":  # decoded at reduced size: short side twice the encoder's input
        assert min(d.images.shape[1:3]) == 2 * SPEC.image_size


@pytest.mark.parametrize("size,rotate", [("48x32", None), ("64x48", 90)])
def test_frames_decord_misreads_keep_their_orientation_and_picture(tmp_path, size, rotate):
    """decord misreads frames 48 px wide (plain, or a rotated 64x48 shown 48 wide): their frames must still be
    the picture ffmpeg shows (rotation applied), not a transposed or unrotated one."""
    import subprocess

    from ecma.extract.decode import VisualStream

    p = make_video(tmp_path / "v.mp4", seconds=1, size=size, fps=10, audio=False, rotate=rotate)
    frames = VisualStream(str(p), DecodeSpec(1.0, None, 1, SR, 224)).frames(0, 1, None)
    w, h = map(int, size.split("x"))
    if rotate in (90, 270):
        w, h = h, w  # as shown
    fh, fw = frames.shape[1:3]
    assert fw * h == fh * w, (frames.shape, "shown as", w, h)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(p), "-vf", f"scale={fw}:{fh}", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    shown = np.frombuffer(raw, np.uint8).reshape(-1, fh, fw, 3).astype(int)
    closest = min(np.abs(shown[i] - frames[0]).mean() for i in range(len(shown)))
    assert closest < 10, closest  # scaler rounding only; a misread or transposed frame is ~50 off


def test_free_segment_count_and_k_frames(tmp_path):
    p = make_video(tmp_path / "v.mp4", seconds=4.0, fps=10)
    d = decode_video(0, "v", p, DecodeSpec(n_segments=None, frames_per_segment=3, sample_rate=SR, image_size=32))
    assert d.n_segments == 4 and d.n_visual == 4 and d.images.shape[0] == 12
    # the frames differ within a segment (testsrc2 moves), so K frames really are K frames
    assert not np.array_equal(d.images[0], d.images[2])


def test_audio_resampled_to_48k_keeps_pitch(tmp_path):
    # the test sound is 220 Hz in second 0 and 330 Hz in second 1, whatever the source rate
    p = make_video(tmp_path / "v.mp4", seconds=2, sample_rate=8000, video=False)
    w = decode_video(0, "v", p, SPEC).waveform
    for second, hz in ((0, 220), (1, 330)):
        seg = w[second * SR + 4800 : (second + 1) * SR - 4800]
        peak = np.argmax(np.abs(np.fft.rfft(seg))) * SR / len(seg)
        assert abs(peak - hz) < 3


def test_match_videos(tmp_path):
    for f in ("BjCEufrlXm4.mp4", "abc_def-123_30_40.mkv", "xyz.WEBM", "other.txt", "q_1_2.avi", "q.mp4"):
        (tmp_path / f).write_bytes(b"x")
    got, unmatched = match_videos(tmp_path, ["BjCEufrlXm4_20_30", "abc_def-123_30_40", "xyz_0_10", "nope_1_2", "q_1_2", "other_0_1"])
    assert unmatched == ["q.mp4"]  # a video that no annotation row names
    assert got == {
        "BjCEufrlXm4_20_30": tmp_path / "BjCEufrlXm4.mp4",
        "abc_def-123_30_40": tmp_path / "abc_def-123_30_40.mkv",
        "xyz_0_10": tmp_path / "xyz.WEBM",
        "q_1_2": tmp_path / "q_1_2.avi",  # the full filename wins over the id
    }
    assert youtube_id("a_b_c_10_20") == "a_b_c" and youtube_id("plain") == "plain"
    # LLP's five longest names have fractional seconds; their files are named by the id all the same
    assert youtube_id("AP0061o0Nvk_101.8_111.8") == "AP0061o0Nvk" and youtube_id("ApKgnUPayqU_8.5_18.5") == "ApKgnUPayqU"
    assert youtube_id("-9WBkdJq104_30_40") == "-9WBkdJq104" and youtube_id("x_1.2.3_4") == "x_1.2.3_4"
