"""The demo dataset: LLP's formats, deterministic, and the planted events really in the pixels and samples.

The truth for the media checks is read back from the eval csvs, and the media are decoded independently
(decord frames, decord audio with a numpy FFT, ffprobe for the streams), so the files are checked against
each other, not against the generator's own bookkeeping.
"""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from ecma.data.annotations import read_eval, read_split, segment_truth
from ecma.data.classes import LLP_CLASSES
from ecma.data.datasets import match_videos
from ecma.data.demo import DEMO_CLASSES, FPS, SIZE, make_demo_dataset, plan_videos
from ecma.errors import EcmaError

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
    reason="ffmpeg/ffprobe are not installed (apt-get install ffmpeg)",
)

SIZES = dict(n_train=3, n_val=2, n_test=3)
CSV_NAMES = ("AVVP_train.csv", "AVVP_val_pd.csv", "AVVP_test_pd.csv", "AVVP_dataset_full.csv",
             "AVVP_eval_audio.csv", "AVVP_eval_visual.csv")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("demo"), **SIZES, seed=7, progress=False)


def eval_truth(demo):
    """(names of val+test, audio truth, visual truth (N, C, 10)) read back from the csvs."""
    names = read_split(demo.csvs["val"], LLP_CLASSES).filenames + read_split(demo.csvs["test"], LLP_CLASSES).filenames
    gt_a = segment_truth(read_eval(demo.csvs["eval_audio"], LLP_CLASSES), names, LLP_CLASSES, 10)
    gt_v = segment_truth(read_eval(demo.csvs["eval_visual"], LLP_CLASSES), names, LLP_CLASSES, 10)
    return names, gt_a, gt_v


def test_csvs_have_llp_headers_names_and_line_ends(demo, llp_dir):
    assert sorted(p.name for p in demo.root.iterdir() if p.is_file()) == sorted(CSV_NAMES)
    for name in CSV_NAMES:
        ours, real = (demo.root / name).read_text(), (llp_dir / name).read_text()
        assert ours.splitlines()[0] == real.splitlines()[0], name
        assert ours.endswith("\n") and not ours.endswith("\n\n") and "\r" not in ours, name
        for line in ours.splitlines()[1:]:
            fields = line.split("\t")
            assert len(fields) == len(real.splitlines()[1].split("\t")), (name, line)
            assert re.fullmatch(r"[A-Za-z0-9_-]{11}_0_10", fields[0]), (name, line)  # LLP's <11-char id>_<s>_<e>


def test_splits_parse_and_weak_labels_are_the_union_of_the_truth(demo):
    train, val, test = (read_split(demo.csvs[s], LLP_CLASSES) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (3, 2, 3)
    assert read_split(demo.csvs["full"], LLP_CLASSES).filenames == train.filenames + val.filenames + test.filenames
    assert len(set(train.filenames + val.filenames + test.filenames)) == 8
    assert all(1 <= len(labels) <= 3 for labels in train.labels + val.labels + test.labels)
    names, gt_a, gt_v = eval_truth(demo)
    weak = np.concatenate([val.label_matrix(LLP_CLASSES), test.label_matrix(LLP_CLASSES)]) > 0
    # a class is in the weak label exactly when it has audio or visual segments
    assert np.array_equal(weak, (gt_a | gt_v).max(axis=2) > 0)
    assert set(np.flatnonzero(weak.any(axis=0))) <= {LLP_CLASSES.index(c) for c in DEMO_CLASSES}
    # eval rows only for val and test videos; train has none
    for key in ("eval_audio", "eval_visual"):
        assert {r.filename for r in read_eval(demo.csvs[key], LLP_CLASSES)} <= set(names)


@pytest.mark.parametrize("key", ["eval_audio", "eval_visual"])
def test_eval_rows_are_maximal_runs_of_two_to_six_seconds(demo, key):
    rows = read_eval(demo.csvs[key], LLP_CLASSES)
    assert rows, key
    assert all(0 <= r.onset and r.offset <= 10 and 2 <= r.offset - r.onset <= 6 for r in rows)
    names, gt_a, gt_v = eval_truth(demo)
    gt = gt_a if key == "eval_audio" else gt_v
    # one row per maximal run: the rows count the 0 -> 1 steps of the truth
    padded = np.pad(gt.astype(int), ((0, 0), (0, 0), (1, 0)))
    assert len(rows) == int((np.diff(padded, axis=2) == 1).sum())


def test_every_annotated_video_exists_and_no_other(demo):
    names = read_split(demo.csvs["full"], LLP_CLASSES).filenames
    found, unmatched = match_videos(demo.videos_dir, names)
    assert set(found) == set(names) and unmatched == []
    assert all(found[n].name == n.rsplit("_", 2)[0] + ".mp4" for n in names)  # stored as <id>.mp4, as raw LLP


def test_videos_are_ten_seconds_of_h264_and_aac(demo):
    for path in sorted(demo.videos_dir.iterdir()):
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
            capture_output=True, text=True, check=True,
        )
        info = json.loads(out.stdout)
        streams = {s["codec_type"]: s for s in info["streams"]}
        assert set(streams) == {"video", "audio"}, path
        assert streams["video"]["codec_name"] == "h264" and streams["audio"]["codec_name"] == "aac"
        assert (streams["video"]["width"], streams["video"]["height"]) == (SIZE, SIZE)
        assert abs(float(info["format"]["duration"]) - 10.0) < 0.1, path
        for s in streams.values():
            assert abs(float(s["duration"]) - 10.0) < 0.1, (path, s["codec_type"])


def test_same_seed_same_bytes_other_seed_other_dataset(demo, tmp_path):
    again = make_demo_dataset(tmp_path / "again", **SIZES, seed=7, progress=False)
    for key, path in demo.csvs.items():
        assert path.read_bytes() == again.csvs[key].read_bytes(), key
    videos = sorted(p.name for p in demo.videos_dir.iterdir())
    assert videos == sorted(p.name for p in again.videos_dir.iterdir())
    for name in videos:
        assert (demo.videos_dir / name).read_bytes() == (again.videos_dir / name).read_bytes(), name
    other = plan_videos(**SIZES, seed=8)
    assert [(v.audio, v.visual) for v in other] != [(v.audio, v.visual) for v in demo.videos]


def test_a_bigger_split_adds_videos_and_keeps_the_others():
    small, big = plan_videos(3, 2, 3, seed=7), plan_videos(5, 2, 4, seed=7)
    by_name = {v.filename: v for v in big}
    assert len(big) == 11 and {v.filename for v in small} < set(by_name)
    for v in small:
        assert (by_name[v.filename].audio, by_name[v.filename].visual, by_name[v.filename].split) == (v.audio, v.visual, v.split)


def test_regenerating_smaller_removes_stale_demo_videos_only(tmp_path):
    make_demo_dataset(tmp_path, n_train=2, n_val=1, n_test=1, seed=0, progress=False)
    (tmp_path / "videos" / "mine.mp4").write_bytes(b"not ours")
    again = make_demo_dataset(tmp_path, n_train=1, n_val=1, n_test=1, seed=0, progress=False)
    expected = {f"{v.video_id}.mp4" for v in again.videos} | {"mine.mp4"}
    assert {p.name for p in (tmp_path / "videos").iterdir()} == expected and len(expected) == 4


def test_planted_visual_events_are_in_the_pixels(demo):
    import decord

    names, _, gt_v = eval_truth(demo)
    cell = SIZE // 3
    checked_on = checked_off = 0
    for n, name in enumerate(names):
        vr = decord.VideoReader(str(demo.videos_dir / (name.rsplit("_", 2)[0] + ".mp4")))
        assert len(vr) == 10 * FPS and vr[0].shape == (SIZE, SIZE, 3)
        frames = vr.get_batch([t * FPS + FPS // 2 for t in range(10)]).asnumpy().astype(int)  # mid-second
        for cls, (colour, (row, col), _) in DEMO_CLASSES.items():
            patch = frames[:, row * cell + 8 : (row + 1) * cell - 8, col * cell + 8 : (col + 1) * cell - 8]
            # the mean colour of the cell's inner part: the class colour when visible, grey background when not
            mean = patch.mean(axis=(1, 2))
            visible = gt_v[n, LLP_CLASSES.index(cls)] > 0
            assert np.all(np.abs(mean[visible] - colour).max(axis=-1) < 25), (name, cls, mean[visible])
            assert np.all(np.abs(mean[~visible] - 60).max(axis=-1) < 15), (name, cls, mean[~visible])
            checked_on, checked_off = checked_on + visible.sum(), checked_off + (~visible).sum()
    assert checked_on > 0 and checked_off > 0


def tone_amplitude(samples: np.ndarray, rate: int, freq: float) -> float:
    """Amplitude of a sinusoid at ``freq`` (Hann-windowed DFT evaluated at exactly that frequency)."""
    w = np.hanning(len(samples))
    phase = np.exp(-2j * np.pi * freq * np.arange(len(samples)) / rate)
    return float(2 * np.abs(np.sum(samples * w * phase)) / w.sum())


def test_tone_amplitude_measures_a_known_sinusoid():
    t = np.arange(12000) / 16000
    x = 0.3 * np.sin(2 * np.pi * 1234.5 * t) + 0.1 * np.sin(2 * np.pi * 300 * t)
    assert tone_amplitude(x, 16000, 1234.5) == pytest.approx(0.3, rel=1e-3)
    assert tone_amplitude(x, 16000, 300) == pytest.approx(0.1, rel=1e-2)
    assert tone_amplitude(x, 16000, 2000) < 1e-3


def test_planted_audio_events_are_in_the_samples(demo):
    import decord

    rate = 16000
    names, gt_a, _ = eval_truth(demo)
    checked_on = checked_off = 0
    for n, name in enumerate(names):
        ar = decord.AudioReader(str(demo.videos_dir / (name.rsplit("_", 2)[0] + ".mp4")), sample_rate=rate, mono=True)
        samples = ar[:].asnumpy()[0]
        assert abs(len(samples) / rate - 10) < 0.1
        for t in range(10):
            middle = samples[t * rate + rate // 8 : (t + 1) * rate - rate // 8]  # clear of the segment edges
            spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle))))
            peak = np.fft.rfftfreq(len(middle), 1 / rate)[spectrum.argmax()]
            audible = [c for c in DEMO_CLASSES if gt_a[n, LLP_CLASSES.index(c), t]]
            for cls, (_, _, freq) in DEMO_CLASSES.items():
                amp = tone_amplitude(middle, rate, freq)
                if cls in audible:
                    assert amp > 0.1, (name, t, cls, amp)  # louder than -20 dBFS
                    checked_on += 1
                else:
                    assert amp < 0.01, (name, t, cls, amp)
                    checked_off += 1
            if audible:  # the strongest spectral line is one of the audible classes' tones
                assert min(abs(peak - DEMO_CLASSES[c][2]) for c in audible) < 3, (name, t, peak)
            else:
                assert np.sqrt(np.mean(middle**2)) < 0.03, (name, t)
    assert checked_on > 0 and checked_off > 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_train=0), "at least one video in each of train, val and test"),
        (dict(n_test=-2), "n_test=-2"),
        (dict(seed=-1), "seed must be >= 0"),
        (dict(duration=5), "duration must be at least 6"),
        (dict(n_val=2.5), "n_val must be a whole number"),
    ],
)
def test_bad_sizes_are_refused_before_writing(tmp_path, kwargs, message):
    with pytest.raises(EcmaError, match=re.escape(message)):
        make_demo_dataset(tmp_path / "out", **{**dict(n_train=1, n_val=1, n_test=1), **kwargs}, progress=False)
    assert not (tmp_path / "out").exists()


def test_a_file_in_the_way_is_named(tmp_path):
    (tmp_path / "out").write_text("")
    with pytest.raises(EcmaError, match=re.escape(str(tmp_path / "out"))):
        make_demo_dataset(tmp_path / "out", n_train=1, n_val=1, n_test=1, progress=False)


def test_cli_writes_the_requested_sizes(tmp_path):
    from ecma.cli import main

    assert main(["demo", "--output", str(tmp_path), "--n-train", "2", "--n-val", "1", "--n-test", "1", "--seed", "3", "--quiet"]) == 0
    assert [len(read_split(tmp_path / f, LLP_CLASSES)) for f in CSV_NAMES[:4]] == [2, 1, 1, 4]
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == 4
    assert main(["demo", "--output", str(tmp_path / "x"), "--n-train", "0", "--quiet"]) == 2
