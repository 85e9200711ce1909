"""UnAV-100: the annotation reader, the segment-label rule, the importer, the AV-only metrics and the mAP."""

import csv
import json
import shutil

import numpy as np
import pytest

from ecma.cli import main
from ecma.data.segments import events_to_segments, n_segments, segment_runs, segments_to_events
from ecma.data.shards import FeatureShard
from ecma.data.unav100 import read_unav100
from ecma.data.unav_demo import UNAV_DEMO_CLASSES, class_directions, grid_length, make_unav_demo
from ecma.errors import EcmaError
from ecma.evaluation.metrics_av import score_av_only
from ecma.evaluation.metrics_map import (
    class_average_precision, detections_from_segments, mean_average_precision, score_av_map,
)
from ecma.importers.run import import_features
from ecma.importers.unav100 import grid_centres, resample_to_segments


def write_json(path, database):
    path.write_text(json.dumps({"database": database}))
    return path


def ev(onset, offset, label, label_id):
    return {"segment": [onset, offset], "label": label, "label_id": label_id}


DB = {
    "vidB": {"subset": "train", "duration": 12.4, "fps": 25,
             "annotations": [ev(0.5, 3.25, "dog barking", 7), ev(2.0, 9.9, "playing piano", 2)]},
    "vidA": {"subset": "train", "duration": 30.0, "fps": 25, "annotations": [ev(10.1, 10.4, "dog barking", 7)]},
    "vidC": {"subset": "validation", "duration": 5.0, "fps": 25, "annotations": [ev(1.0, 2.0, "car horn", 40)]},
    "vidD": {"subset": "test", "duration": 8.0, "fps": 25, "annotations": []},
    "vidE": {"subset": "Test", "duration": 9.5, "fps": 25, "annotations": [ev(0.0, 9.5, "playing piano", 2)]},
}


# ---------------------------------------------------------------- reader


def test_reader_subsets_classes_labels_and_fractional_times(tmp_path):
    ann = read_unav100(write_json(tmp_path / "a.json", DB))
    assert ann.classes == ("playing piano", "dog barking", "car horn")  # by label_id 2, 7, 40
    assert ann.label_ids == (2, 7, 40)
    train, val, test = ann.split("train"), ann.split("val"), ann.split("test")
    assert train.filenames == ["vidA", "vidB"]  # sorted, whatever the file's order
    assert val.filenames == ["vidC"] and test.filenames == ["vidD", "vidE"]  # "Test" is test
    np.testing.assert_array_equal(train.label_matrix(), [[0, 1, 0], [1, 1, 0]])
    np.testing.assert_array_equal(test.label_matrix(), [[0, 0, 0], [1, 0, 0]])  # vidD: kept, no label
    assert train.videos[1].events[0].onset == 0.5 and train.videos[1].events[0].offset == 3.25
    np.testing.assert_array_equal(train.durations, [30.0, 12.4])
    np.testing.assert_array_equal(train.lengths(), [30, 13])
    assert train.events() == [("vidA", 1, 10.1, 10.4), ("vidB", 1, 0.5, 3.25), ("vidB", 0, 2.0, 9.9)]


def test_segment_truth_of_a_split(tmp_path):
    train = read_unav100(write_json(tmp_path / "a.json", DB)).split("train")
    truth, lengths = train.segment_truth()
    assert truth.shape == (2, 3, 30) and lengths.tolist() == [30, 13]
    expected_a = np.zeros((3, 30), np.uint8)
    expected_a[1, 10] = 1  # 0.3 s inside segment 10: kept on the segment it overlaps
    np.testing.assert_array_equal(truth[0], expected_a)
    # vidB: dog 0.5-3.25 covers s0 by 0.5 (half: on), s1, s2, s3 by 0.25 (off); piano 2.0-9.9: s2..s9 (s9 by 0.9)
    assert np.flatnonzero(truth[1, 1]).tolist() == [0, 1, 2]
    assert np.flatnonzero(truth[1, 0]).tolist() == list(range(2, 10))
    assert not truth[1, :, 13:].any()  # padding


def test_known_classes_pin_the_order_and_refuse_others(tmp_path):
    path = write_json(tmp_path / "a.json", DB)
    ann = read_unav100(path, classes=["car horn", "dog barking", "playing piano", "unused"])
    assert ann.classes == ("car horn", "dog barking", "playing piano", "unused") and ann.label_ids == (40, 7, 2, -1)
    with pytest.raises(EcmaError, match=r"video 'vid.': label '(dog barking|playing piano)' is not one of the 2 known"):
        read_unav100(path, classes=["car horn", "something"])


@pytest.mark.parametrize("edit, message", [
    (lambda db: db["vidA"]["annotations"].append(ev(1, 2, "dog barking", 8)),
     "video 'vidA': label 'dog barking' has label_id 8, other videos 7"),
    (lambda db: db["vidA"]["annotations"].append(ev(1, 2, "cat", 7)),
     "video 'vidA': label 'cat' has label_id 7, which other videos give to 'dog barking'"),
    (lambda db: db["vidA"]["annotations"].append(ev(3, 2, "dog barking", 7)), "video 'vidA': annotation 1: offset 2"),
    (lambda db: db["vidA"]["annotations"].append(ev(-1, 2, "dog barking", 7)), "video 'vidA': annotation 1: negative time"),
    (lambda db: db["vidA"]["annotations"].append({"segment": [1, 2], "label": "x"}), "video 'vidA': annotation 1 needs"),
    (lambda db: db["vidA"]["annotations"].append(ev(1, "2", "dog barking", 7)), "video 'vidA': annotation 1 offset must be"),
    (lambda db: db["vidA"]["annotations"].append(ev(1, 2, "dog barking", "7")), "label_id of 'dog barking' must be an integer"),
    (lambda db: db["vidA"].pop("duration"), "video 'vidA' lacks 'duration'"),
    (lambda db: db["vidA"].pop("subset"), "video 'vidA' lacks 'subset'"),
    (lambda db: db["vidA"].update(subset="dev"), "video 'vidA': subset 'dev' is not one of"),
    (lambda db: db["vidA"].update(duration=0), "video 'vidA': duration must be positive"),
    (lambda db: db["vidA"].update(annotations={"a": 1}), "video 'vidA': 'annotations' must be a list"),
])
def test_malformed_annotations_are_one_line_errors_naming_the_video(tmp_path, edit, message):
    db = json.loads(json.dumps(DB))
    edit(db)
    with pytest.raises(EcmaError) as e:
        read_unav100(write_json(tmp_path / "a.json", db))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_malformed_files(tmp_path):
    (tmp_path / "bad.json").write_text('{"database": {"x": ')
    with pytest.raises(EcmaError, match="bad.json: not valid JSON"):
        read_unav100(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(EcmaError, match="expected an object with a 'database'"):
        read_unav100(tmp_path / "list.json")
    with pytest.raises(EcmaError, match="annotation file not found"):
        read_unav100(tmp_path / "absent.json")
    ann = read_unav100(write_json(tmp_path / "a.json", DB))
    with pytest.raises(EcmaError, match="no split 'validation'"):
        ann.split("validation")


# ---------------------------------------------------------------- segment rule


def on(truth, c=0):
    return np.flatnonzero(truth[c]).tolist()


@pytest.mark.parametrize("onset, offset, half, any_", [
    (2.0, 5.0, [2, 3, 4], [2, 3, 4]),  # whole seconds: LLP's [onset, offset)
    (2.2, 2.6, [2], [2]),  # inside one segment, shorter than half: kept on that segment
    (2.7, 3.1, [2], [2, 3]),  # straddles a boundary, covers neither by half: the larger overlap (0.3 in s2)
    (2.9, 3.3, [3], [2, 3]),
    (2.5, 3.0, [2], [2]),  # covers exactly half of s2; ends exactly on a boundary: s3 untouched
    (2.5, 4.5, [2, 3, 4], [2, 3, 4]),  # exactly half of s2 and of s4 count
    (2.51, 4.49, [3], [2, 3, 4]),
    (1.2, 3.0, [1, 2], [1, 2]),
    (7.5, 15.0, [7, 8, 9], [7, 8, 9]),  # past the video's end (10 s): clipped
    (10.0, 12.0, [], []),  # wholly past the end: nothing
    (4.0, 4.0, [], []),  # zero length: nothing
])
def test_event_to_segment_rule_by_hand(onset, offset, half, any_):
    assert on(events_to_segments([(0, onset, offset)], 1, 10, duration=10.0)) == half
    assert on(events_to_segments([(0, onset, offset)], 1, 10, duration=10.0, rule="any")) == any_


def test_partial_last_segment_counts_only_its_part_inside_the_video():
    # duration 10.4: 11 segments, the last is 0.4 s long; an event 10.2-10.4 covers half of it
    assert n_segments(10.4) == 11 and n_segments(10.0) == 10 and n_segments(10.0000000001) == 10
    assert on(events_to_segments([(0, 10.2, 10.4)], 1, 11, duration=10.4)) == [10]
    assert on(events_to_segments([(0, 9.0, 10.1)], 1, 11, duration=10.4)) == [9]  # 0.1 of 0.4: off
    assert n_segments(0.2) == 1 and n_segments(5.0, 2.0) == 3


def test_classes_and_segment_seconds():
    truth = events_to_segments([(1, 1.0, 3.0), (0, 0.0, 0.9), (1, 5.5, 6.0)], 2, 4, segment_seconds=2.0, duration=7.0)
    # 2-s segments [0,2) [2,4) [4,6) [6,7): 1.0-3.0 covers s0 and s1 by 1.0 (half: on); 5.5-6.0 covers s2 by
    # 0.5 only, but no segment by half: kept on s2; class 0's 0.9 s in s0 likewise
    np.testing.assert_array_equal(truth, [[1, 0, 0, 0], [1, 1, 1, 0]])
    truth = events_to_segments([(0, 2.5, 6.5)], 1, 4, segment_seconds=2.0, duration=7.0)
    np.testing.assert_array_equal(truth, [[0, 1, 1, 1]])  # s1 by 1.5, s2 by 2, s3 by 0.5 of its 1.0 inside
    with pytest.raises(ValueError, match="unknown segment rule"):
        events_to_segments([], 1, 2, rule="most")


def test_segments_to_events_inverse():
    truth = np.array([[0, 1, 1, 0, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]])
    assert segment_runs(truth[0]) == [(1, 3), (4, 5)]
    assert segments_to_events(truth) == [(0, 1.0, 3.0), (0, 4.0, 5.0), (1, 0.0, 5.0)]
    assert segments_to_events(truth, duration=4.3) == [(0, 1.0, 3.0), (0, 4.0, 4.3), (1, 0.0, 4.3)]
    assert segments_to_events(truth[:1], segment_seconds=0.5) == [(0, 0.5, 1.5), (0, 2.0, 2.5)]
    # whole-second events survive the round trip exactly
    back = events_to_segments(segments_to_events(truth), 3, 5)
    np.testing.assert_array_equal(back, truth)


# ---------------------------------------------------------------- demo data and the importer

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_unav_demo(tmp_path_factory.mktemp("unav") / "demo", n_train=4, n_val=2, n_test=2, seed=3,
                          min_duration=10.0, max_duration=24.0)


def read_failures(output):
    with open(f"{output}.failures.tsv", newline="") as f:
        return list(csv.reader(f, delimiter="\t"))


def test_resampling_by_hand():
    # grid centres 0.48, 0.80, 1.12, 1.44, 1.76, 2.08, ... s
    np.testing.assert_allclose(grid_centres(4), [0.48, 0.80, 1.12, 1.44])
    x = np.arange(7, dtype=np.float32)[:, None] * [1.0, 10.0]  # centres up to 2.40 s
    out = resample_to_segments(x, duration=4.5)
    # s0: rows 0, 1 (0.48, 0.80); s1: rows 2..4 (1.12, 1.44, 1.76); s2: rows 5, 6 (2.08, 2.40);
    # s3 [3, 4) and s4 [4, 4.5): empty, the nearest centre to 3.5 and 4.25 is row 6 (2.40)
    np.testing.assert_allclose(out[:, 0], [0.5, 3.0, 5.5, 6.0, 6.0])
    np.testing.assert_allclose(out[:, 1], [5.0, 30.0, 55.0, 60.0, 60.0])
    assert out.dtype == np.float32 and out.shape == (5, 2)
    # features past the video's end are dropped: duration 1.0 keeps rows 0, 1 only
    np.testing.assert_allclose(resample_to_segments(x, duration=1.0)[:, 0], [0.5])


def test_demo_annotations_are_the_planted_events(demo):
    ann = read_unav100(demo.annotations)
    assert ann.label_ids == tuple(sorted({c for v in demo.videos for _, _, c in v.events}))
    assert set(ann.label_ids) <= set(UNAV_DEMO_CLASSES)
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        assert len(ann.split(split)) == n
    for v in demo.videos:
        got = ann.videos[v.video_id]
        assert got.duration == v.duration and 10.0 <= v.duration <= 24.0
        assert [(e.onset, e.offset, e.label) for e in got.events] == [(a, b, UNAV_DEMO_CLASSES[c]) for a, b, c in v.events]
        for a, b, _ in v.events:
            assert 0 <= a < b <= v.duration
    # the segment truth, recomputed here from the plan with the stated rule (at least half of a segment)
    truth, lengths = ann.split("train").segment_truth()
    for n, v in enumerate(ann.split("train").videos):
        plan = next(p for p in demo.videos if p.video_id == v.video_id)
        expected = np.zeros((len(ann.classes), int(np.ceil(v.duration))), np.uint8)
        for a, b, c in plan.events:
            k = ann.classes.index(UNAV_DEMO_CLASSES[c])
            for s in range(expected.shape[1]):
                seg_end = min(s + 1.0, v.duration)
                if max(0.0, min(seg_end, b) - max(s, a)) >= 0.5 * (seg_end - s) - 1e-9:
                    expected[k, s] = 1
        assert lengths[n] == expected.shape[1]
        np.testing.assert_array_equal(truth[n, :, : lengths[n]], expected)


def test_demo_imports_cleanly_and_carries_the_events(demo, tmp_path):
    out = tmp_path / "unav.h5"
    assert main(["import", "--format", "unav100", "--root", str(demo.features), "--annotations", str(demo.annotations),
                 "--output", str(out), "--quiet"]) == 0
    assert read_failures(out) == [["filename", "stage", "reason"]]
    ann = read_unav100(demo.annotations)
    directions = class_directions(3)
    row_of = {c: k for k, c in enumerate(UNAV_DEMO_CLASSES)}
    with FeatureShard(out) as s:
        assert sorted(s.videos()) == sorted(v.video_id for v in demo.videos)
        fp = s.fingerprint
        for v in demo.videos:
            video = s.read_video(v.video_id)
            t = int(np.ceil(v.duration))
            assert video.audio.shape == (t, 128) and video.visual.shape == (t, 2048)
            assert s.attrs(v.video_id)["duration"] == v.duration and s.attrs(v.video_id)["n_segments"] == t
            # segment 0 is the mean of the rgb|flow rows centred in [0, 1): rows 0 and 1 (0.48 s, 0.80 s)
            rgb = np.load(demo.features / f"{v.video_id}_rgb.npy")
            flow = np.load(demo.features / f"{v.video_id}_flow.npy")
            np.testing.assert_allclose(video.visual[0], np.concatenate([rgb[:2], flow[:2]], 1).mean(0), rtol=1e-5, atol=1e-6)
            assert len(rgb) == grid_length(v.duration)
            # the planted class's direction is there in truth segments, in both streams
            truth, _ = ann.split(v.split).segment_truth()
            n = ann.split(v.split).filenames.index(v.video_id)
            for _, _, c in v.events:
                k = ann.classes.index(UNAV_DEMO_CLASSES[c])
                on = truth[n, k, :t].astype(bool)
                proj_a = video.audio @ directions["vggish"][row_of[c]]
                proj_v = video.visual[:, :1024] @ directions["rgb"][row_of[c]]
                assert proj_a[on].mean() > 2.0 and proj_v[on].mean() > 2.0
                if (~on).any():
                    assert proj_a[~on].mean() < proj_a[on].mean() - 1.0
    assert fp["format"] == "unav100" and fp["segment_seconds"] == 1.0 and "window centre" in fp["resampling"]
    assert fp["grid"] == {"fps": 25, "stride_frames": 8, "window_frames": 24}


def test_unav_bad_files_are_reported_and_never_loaded(demo, tmp_path):
    root = tmp_path / "feats"
    shutil.copytree(demo.features, root)
    ids = sorted(v.video_id for v in demo.videos)
    (root / f"{ids[0]}_rgb.npy").unlink()
    np.save(root / f"{ids[1]}_flow.npy", np.zeros((30, 1000), np.float32))
    bad = np.load(root / f"{ids[2]}_vggish.npy")
    bad[1, 2] = np.nan
    np.save(root / f"{ids[2]}_vggish.npy", bad)
    full = (root / f"{ids[3]}_rgb.npy").read_bytes()
    (root / f"{ids[3]}_rgb.npy").write_bytes(full[: len(full) // 2])
    np.save(root / f"{ids[4]}_vggish.npy", np.array([[object()]], dtype=object), allow_pickle=True)
    rgb = np.load(root / f"{ids[5]}_rgb.npy")
    np.save(root / f"{ids[5]}_rgb.npy", rgb[:-2])  # rgb and flow disagree
    np.save(root / f"{ids[6]}_vggish.npy", np.zeros((0, 128), np.float32))
    out = tmp_path / "s.h5"
    assert main(["import", "--format", "unav100", "--root", str(root), "--annotations", str(demo.annotations),
                 "--output", str(out), "--quiet"]) == 3
    rows = {r[0]: (r[1], r[2]) for r in read_failures(out)[1:]}
    assert set(rows) == set(ids[:7])
    assert rows[ids[0]] == ("rgb", f"{ids[0]}_rgb.npy: missing")
    assert rows[ids[1]] == ("flow", f"{ids[1]}_flow.npy: shape (30, 1000), expected (T, 1024)")
    assert rows[ids[2]] == ("vggish", f"{ids[2]}_vggish.npy: contains NaN or infinite values")
    assert rows[ids[3]][1].startswith(f"{ids[3]}_rgb.npy: truncated")
    assert rows[ids[4]][1] == f"{ids[4]}_vggish.npy: holds Python objects (a pickled object array); refused, never loaded"
    assert rows[ids[5]] == ("flow", f"{ids[5]}_rgb.npy has {len(rgb) - 2} rows, {ids[5]}_flow.npy {len(rgb)}: "
                                    "they are concatenated, so they must agree")
    assert rows[ids[6]] == ("vggish", f"{ids[6]}_vggish.npy: shape (0, 128), expected (T, 128)")
    with FeatureShard(out) as s:
        assert s.videos() == [ids[7]]


def test_unav_import_errors(demo, tmp_path, capsys):
    out = tmp_path / "s.h5"
    # every video failing: exit 2, no shard
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["import", "--format", "unav100", "--root", str(empty), "--annotations", str(demo.annotations),
                 "--output", str(out), "--quiet"]) == 2
    assert "none of the 8 videos could be imported" in capsys.readouterr().err and not out.exists()
    # two annotation files, or none with --names
    assert main(["import", "--format", "unav100", "--root", str(demo.features), "--annotations", str(demo.annotations),
                 str(demo.annotations), "--output", str(out), "--quiet"]) == 2
    assert "reads one annotation file" in capsys.readouterr().err
    # a name the file does not know is a failure row; the others import
    name = demo.videos[0].video_id
    report = import_features("unav100", demo.features, [demo.annotations], out, names=[name, "nosuchvideo"], progress=False)
    assert report.imported == 1 and report.failed == [
        ("nosuchvideo", "annotations", "nosuchvideo: not in the annotation file (its duration is needed)")]


def test_unav_shards_partition_the_videos(demo, tmp_path):
    seen = []
    for i in range(2):
        out = tmp_path / f"s{i}.h5"
        import_features("unav100", demo.features, [demo.annotations], out, shard=(i, 2), progress=False)
        with FeatureShard(out) as s:
            seen += s.videos()
    assert sorted(seen) == sorted(v.video_id for v in demo.videos)


def test_demo_is_deterministic_and_cli(tmp_path):
    a = make_unav_demo(tmp_path / "a", n_train=2, n_val=1, n_test=1, seed=5, max_duration=15.0)
    assert main(["demo", "--format", "unav100", "--output", str(tmp_path / "b"), "--n-train", "2", "--n-val", "1",
                 "--n-test", "1", "--seed", "5"]) == 0
    b = read_unav100(tmp_path / "b" / "unav100_annotations.json")
    assert sorted(b.videos) == sorted(v.video_id for v in a.videos)
    a2 = make_unav_demo(tmp_path / "a2", n_train=2, n_val=1, n_test=1, seed=5, max_duration=15.0)
    assert a2.videos == a.videos
    for v in a.videos:
        assert (a.features / f"{v.video_id}_rgb.npy").read_bytes() == (a2.features / f"{v.video_id}_rgb.npy").read_bytes()
    with pytest.raises(EcmaError, match="1 to 99999 videos per split"):
        make_unav_demo(tmp_path / "c", n_train=0)


# ---------------------------------------------------------------- AV-only F1 (protocol unav100-av)

def av_case():
    """3 videos padded to T = 8 (lengths 6, 8, 3), 2 classes; worked by hand in the test below."""
    n, t, c = 3, 8, 2
    a = np.zeros((n, t, c))
    v = np.zeros((n, t, c))
    gt = np.zeros((n, c, t), np.uint8)
    video = np.array([[0.9, 0.9], [0.2, 0.9], [0.9, 0.9]])
    # video 0: truth class 0 on [1, 4); AV prediction class 0 on [2, 6); class 1 only heard at 0 (not AV)
    gt[0, 0, 1:4] = 1
    a[0, 2:6, 0] = v[0, 2:6, 0] = 0.8
    a[0, 0, 1] = 0.9
    # padding of video 0 (segments 6, 7): predicted and "true" garbage that lengths must hide
    a[0, 6:, 0] = v[0, 6:, 0] = 0.9
    gt[0, 0, 6:] = 1
    # video 1: truth class 1 on [0, 2) and [5, 8); AV prediction on [0, 2) and [4, 8); class 0 gated off
    gt[1, 1, 0:2] = gt[1, 1, 5:8] = 1
    a[1, 0:2, 1] = v[1, 0:2, 1] = 0.7
    a[1, 4:8, 1] = v[1, 4:8, 1] = 0.6
    a[1, 3, 0] = v[1, 3, 0] = 0.9
    return video, a, v, gt, np.array([6, 8, 3])


def test_av_only_scores_by_hand():
    video, a, v, gt, lengths = av_case()
    s = score_av_only(video, a, v, gt, lengths=lengths, classes=["dog", "piano"])
    assert s["protocol"] == "unav100-av" and s["num_videos"] == 3
    assert set(s["segment"]) == {"audio_visual"} and set(s["event"]) == {"audio_visual"}
    # segment: v0 class 0 TP 2 (2, 3), FP 2 (4, 5), FN 1 (1): 4/7; v1 class 1 TP 5, FP 1 (4): 10/11; v2 nothing: 1
    assert s["segment"]["audio_visual"] == pytest.approx(100 * (4 / 7 + 10 / 11 + 1) / 3)
    # event: v0 [2, 6) vs [1, 4): IoU 2/5 < 0.5, an FP and an FN: 0; v1 [0,2)~[0,2) and [4,8)~[5,8) (3/4): 1; v2: 1
    assert s["event"]["audio_visual"] == pytest.approx(100 * 2 / 3)
    assert s["per_class"]["segment"]["audio_visual"] == pytest.approx({"dog": 100 * 4 / 7, "piano": 100 * 10 / 11})
    assert s["per_class"]["event"]["audio_visual"] == pytest.approx({"dog": 0.0, "piano": 100.0})


def test_av_only_padding_matters_only_without_lengths():
    video, a, v, gt, lengths = av_case()
    with_lengths = score_av_only(video, a, v, gt, lengths=lengths)
    # the same videos cut to their lengths, scored one by one, give the same per-video F1s
    per_video = [score_av_only(video[i:i + 1], a[i:i + 1, :n], v[i:i + 1, :n], gt[i:i + 1, :, :n]) for i, n in enumerate(lengths)]
    for level in ("segment", "event"):
        assert with_lengths[level]["audio_visual"] == pytest.approx(np.mean([p[level]["audio_visual"] for p in per_video]))
    # without lengths video 0's padding counts: class 0 then has prediction [2, 8) and truth [1, 4) + [6, 8)
    without = score_av_only(video, a, v, gt)
    assert without["segment"]["audio_visual"] == pytest.approx(100 * (2 * 4 / (2 * 4 + 2 + 1) + 10 / 11 + 1) / 3)
    with pytest.raises(ValueError, match="lengths must be"):
        score_av_only(video, a, v, gt, lengths=np.array([6, 9, 3]))


# ---------------------------------------------------------------- mAP (UnAV-100's dense-localisation metric)

def test_class_ap_by_hand():
    truth = [("vA", 0, 0.0, 10.0), ("vA", 0, 20.0, 30.0), ("vB", 0, 5.0, 15.0)]
    dets = [("vA", 0, 0.0, 9.0, 0.9),  # tIoU 0.9 with [0, 10): TP
            ("vA", 0, 1.0, 10.0, 0.8),  # [0, 10) taken; next is [20, 30), tIoU 0: FP
            ("vB", 0, 30.0, 40.0, 0.7),  # no overlap: FP
            ("vC", 0, 0.0, 5.0, 0.6),  # a video without truth: FP
            ("vB", 0, 6.0, 15.0, 0.5)]  # tIoU 0.9: TP
    # precision 1, 1/2, 1/3, 1/4, 2/5 at recall 1/3 x 4, 2/3; made monotone: 1 up to 1/3, 0.4 up to 2/3, 0 after
    ap = class_average_precision(truth, dets[::-1], thresholds=(0.5, 0.9, 0.95))  # input order does not matter
    np.testing.assert_allclose(ap, [(1 + 0.4) / 3, (1 + 0.4) / 3, 0.0])
    assert class_average_precision(truth, [], thresholds=(0.5,)).tolist() == [0.0]


def brute_force_ap(truth, dets, thr):
    """Independent: greedy by score, each prediction takes the unmatched true event of its video with the
    largest tIoU >= thr; AP = sum over each recall step of the best precision at that recall or beyond."""
    dets = sorted(dets, key=lambda d: -d[4])
    used, hits = set(), []
    for vid, _, on, off, _ in dets:
        best, best_iou = None, -1.0
        for j, (tv, _, ton, toff) in enumerate(truth):
            if tv != vid or j in used:
                continue
            inter = max(0.0, min(off, toff) - max(on, ton))
            iou = inter / ((off - on) + (toff - ton) - inter)
            if iou >= thr and iou > best_iou:
                best, best_iou = j, iou
        hits.append(best is not None)
        if best is not None:
            used.add(best)
    points = []  # (recall, precision) at each rank
    tp = 0
    for rank, hit in enumerate(hits, start=1):
        tp += hit
        points.append((tp / len(truth), tp / rank))
    ap, previous = 0.0, 0.0
    for r in sorted({r for r, _ in points if r > 0}):
        ap += (r - previous) * max(p for rr, p in points if rr >= r)
        previous = r
    return ap


def test_class_ap_matches_a_brute_force_computation():
    rng = np.random.default_rng(11)
    for trial in range(20):
        truth, dets = [], []
        for vid in ("a", "b", "c"):
            for _ in range(int(rng.integers(0, 4))):
                on = float(rng.uniform(0, 50))
                truth.append((vid, 0, on, on + float(rng.uniform(1, 15))))
            for _ in range(int(rng.integers(0, 6))):
                on = float(rng.uniform(0, 50))
                dets.append((vid, 0, on, on + float(rng.uniform(1, 15)), float(rng.uniform())))
        if not truth:
            continue
        thresholds = (0.1, 0.3, 0.5, 0.7, 0.9)
        got = class_average_precision(truth, dets, thresholds)
        np.testing.assert_allclose(got, [brute_force_ap(truth, dets, t) for t in thresholds], atol=1e-12, err_msg=str(trial))


def test_map_classes_duplicates_and_averages():
    truth = [("v", 0, 0.0, 4.0), ("v", 0, 0.0005, 4.0), ("v", 2, 1.0, 3.0)]  # the second is a duplicate
    dets = [("v", 0, 0.0, 4.0, 0.9), ("v", 1, 0.0, 4.0, 0.9)]  # class 1 has no truth: ignored; class 2 none: AP 0
    m = mean_average_precision(truth, dets, classes=["dog", "cat", "piano"])
    assert m["num_classes"] == 2 and set(m["per_class"]) == {"dog", "piano"}
    assert m["per_class"]["dog"] == [100.0] * 9 and m["per_class"]["piano"] == [0.0] * 9
    assert list(m["map"]) == ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"]
    assert m["map"]["0.5"] == 50.0 and m["average"] == 50.0 and m["protocol"] == "unav100-map"


def test_detections_from_segments_and_av_map():
    pred = np.zeros((2, 2, 6), bool)
    pred[0, 0, 1:3] = pred[0, 0, 4:6] = True
    pred[1, 1, 0:6] = True  # the video is 4 long: segments 4, 5 are padding
    prob = np.zeros((2, 6, 2))
    prob[0, :, 0] = [0, 0.6, 0.8, 0, 0.5, 0.7]
    prob[1, :, 1] = [0.9, 0.9, 0.6, 0.6, 1.0, 1.0]
    dets = detections_from_segments(["x", "y"], pred, prob, lengths=[6, 4], durations=[5.5, 3.2])
    assert dets == [("x", 0, 1.0, 3.0, pytest.approx(0.7)), ("x", 0, 4.0, 5.5, pytest.approx(0.6)),
                    ("y", 1, 0.0, 3.2, pytest.approx(0.75))]
    # through the AV path: audio = visual = sqrt(prob) gives audio x visual = prob; everything on at video level
    root = np.sqrt(prob)
    truth = [("x", 0, 1.0, 3.0), ("y", 1, 0.0, 3.0)]
    m = score_av_map(["x", "y"], np.ones((2, 2)), root, root, truth, lengths=[6, 4], durations=[5.5, 3.2],
                     segment_threshold=0.5 ** 0.5 - 1e-9, thresholds=(0.5, 0.95))
    # class 0: [1, 3) (0.7) TP, [4, 5.5) (0.6) FP: AP 1; class 1: [0, 3.2) vs [0, 3): tIoU 3/3.2 = 0.9375
    assert m["per_class"] == {"0": [100.0, 100.0], "1": [100.0, 0.0]}
