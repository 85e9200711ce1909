"""UnAV-100: the annotation reader, the segment-label rule, the importer, the AV-only metrics and the mAP."""

import json

import numpy as np
import pytest

from ecma.errors import EcmaError
from ecma.segments import events_to_segments, n_segments, segment_runs, segments_to_events
from ecma.unav100 import read_unav100


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
