"""The demo dataset: LLP's formats, deterministic, and the planted events really in the pixels and samples."""

import shutil

import numpy as np
import pytest

from ecma.annotations import read_eval, read_split, segment_truth
from ecma.classes import LLP_CLASSES
from ecma.demo import DEMO_CLASSES, FPS, SIZE, make_demo_dataset, plan_videos
from ecma.errors import EcmaError

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (apt-get install ffmpeg)")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("demo"), n_train=4, n_val=2, n_test=3, seed=7, progress=False)


def test_files_are_in_llp_formats_and_consistent(demo):
    train = read_split(demo.csvs["train"], LLP_CLASSES)
    val = read_split(demo.csvs["val"], LLP_CLASSES)
    test = read_split(demo.csvs["test"], LLP_CLASSES)
    assert (len(train), len(val), len(test)) == (4, 2, 3)
    assert read_split(demo.csvs["full"], LLP_CLASSES).filenames == train.filenames + val.filenames + test.filenames
    names = val.filenames + test.filenames
    gt_a = segment_truth(read_eval(demo.csvs["eval_audio"], LLP_CLASSES), names, LLP_CLASSES, 10)
    gt_v = segment_truth(read_eval(demo.csvs["eval_visual"], LLP_CLASSES), names, LLP_CLASSES, 10)
    weak = np.concatenate([val.label_matrix(LLP_CLASSES), test.label_matrix(LLP_CLASSES)])
    # a class is in the weak label exactly when it has audio or visual segments
    assert np.array_equal(weak > 0, (gt_a.max(axis=2) | gt_v.max(axis=2)) > 0)
    assert all(f"{v.video_id}.mp4" == p.name for v, p in zip(demo.videos, sorted(demo.videos_dir.iterdir())))
    assert {r.filename for r in read_eval(demo.csvs["eval_audio"], LLP_CLASSES)} <= set(names)


def test_same_seed_same_dataset(demo, tmp_path):
    again = make_demo_dataset(tmp_path, n_train=4, n_val=2, n_test=3, seed=7, progress=False)
    for key, path in demo.csvs.items():
        assert path.read_text() == again.csvs[key].read_text(), key
    first = sorted(demo.videos_dir.iterdir())[0]
    assert first.read_bytes() == (again.videos_dir / first.name).read_bytes()
    assert plan_videos(4, 2, 3, seed=8)[0].audio != plan_videos(4, 2, 3, seed=7)[0].audio or \
        plan_videos(4, 2, 3, seed=8)[0].visual != plan_videos(4, 2, 3, seed=7)[0].visual


def test_planted_events_are_in_the_pixels_and_the_samples(demo):
    import decord

    video = next(v for v in demo.videos if v.visual and v.audio)
    path = demo.videos_dir / f"{video.video_id}.mp4"
    vr = decord.VideoReader(str(path))
    assert len(vr) == 10 * FPS and vr[0].shape == (SIZE, SIZE, 3)
    cls, runs = next(iter(video.visual.items()))
    colour, (row, col), _ = DEMO_CLASSES[cls]
    cell = SIZE // 3
    centre = (row * cell + cell // 2, col * cell + cell // 2)
    on = runs[0][0]
    off = next(t for t in range(10) if not any(a <= t < b for rs in video.visual.values() for a, b in rs))
    pixel_on = vr[on * FPS + FPS // 2].asnumpy()[centre].astype(int)
    pixel_off = vr[off * FPS + FPS // 2].asnumpy()[centre].astype(int)
    assert np.abs(pixel_on - np.array(colour)).max() < 40, (cls, pixel_on)
    assert np.abs(pixel_off - 60).max() < 20  # the grey background

    ar = decord.AudioReader(str(path), sample_rate=16000, mono=True)
    samples = ar[:].asnumpy()[0]
    assert abs(len(samples) / 16000 - 10) < 0.1
    cls, runs = next(iter(video.audio.items()))
    freq = DEMO_CLASSES[cls][2]
    t = runs[0][0]
    segment = samples[t * 16000 + 2000 : t * 16000 + 14000]
    spectrum = np.abs(np.fft.rfft(segment))
    freqs = np.fft.rfftfreq(len(segment), 1 / 16000)
    near = np.abs(freqs - freq) < 5
    # the class tone stands far above the noise floor (other tones may sound at the same time)
    assert spectrum[near].max() > 50 * np.median(spectrum), (cls, freq)
    strongest = freqs[spectrum.argmax()]
    audible = [DEMO_CLASSES[c][2] for c, rs in video.audio.items() if any(a <= t < b for a, b in rs)]
    assert min(abs(strongest - f) for f in audible) < 5
    silent = next(s for s in range(10) if not any(a <= s < b for rs in video.audio.values() for a, b in rs))
    quiet = samples[silent * 16000 + 2000 : silent * 16000 + 14000]
    assert np.sqrt((quiet ** 2).mean()) < 0.1 * np.sqrt((segment ** 2).mean())


def test_bad_sizes_are_refused(tmp_path):
    with pytest.raises(EcmaError, match="at least one video in each of train, val and test"):
        make_demo_dataset(tmp_path, n_train=0)
