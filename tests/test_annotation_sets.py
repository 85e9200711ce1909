"""ecma.data.annotation_sets: LLP csvs and UnAV-100's JSON behind one interface, and what uses it (evaluation,
the nothing-predicted baseline, the CLI's --annotations), checked against hand-worked numbers."""

import json

import numpy as np
import pytest

from ecma.cli import main
from ecma.data.annotation_sets import LlpAnnotations, UnavAnnotationSet
from ecma.errors import EcmaError
from ecma.evaluation.evaluate import evaluate_annotated
from ecma.evaluation.predictions import Predictions, write_predictions
from ecma.report.baseline import annotated_nothing_predicted

CLASSES = ("Dog", "Piano")  # label_ids 7 and 2: Piano comes first


def unav_json(path):
    db = {
        # 5 s: a Piano event 1.2-3.7 s -> segments 1, 2, 3 (each at least half covered)
        "vid_a": {"subset": "test", "duration": 5.0, "fps": 25,
                  "annotations": [{"segment": [1.2, 3.7], "label": "Piano", "label_id": 2}]},
        # 3.5 s -> 4 segments; a Dog event over all of it
        "vid_b": {"subset": "test", "duration": 3.5, "fps": 25,
                  "annotations": [{"segment": [0.0, 3.5], "label": "Dog", "label_id": 7}]},
        # no events: a true negative
        "vid_c": {"subset": "test", "duration": 2.0, "fps": 25, "annotations": []},
        "vid_t": {"subset": "train", "duration": 4.0, "fps": 25,
                  "annotations": [{"segment": [0.5, 2.0], "label": "Dog", "label_id": 7}]},
    }
    path.write_text(json.dumps({"database": db}))
    return path


def test_unav_annotations_give_classes_splits_lengths_and_truth(tmp_path):
    a = UnavAnnotationSet(unav_json(tmp_path / "u.json"))
    assert a.classes == ("Piano", "Dog") and a.av_only
    test = a.split("test")
    assert test.filenames == ["vid_a", "vid_b", "vid_c"]
    assert test.label_matrix(a.classes).tolist() == [[1, 0], [0, 1], [0, 0]]
    assert a.lengths("test", test.filenames).tolist() == [5, 4, 2]
    gt_a, gt_v = a.truth("test", test.filenames, 6)  # padded to 6 segments
    assert gt_a.shape == (3, 2, 6) and (gt_a == gt_v).all()
    assert gt_a[0, 0].tolist() == [0, 1, 1, 1, 0, 0] and gt_a[0, 1].sum() == 0
    assert gt_a[1, 1].tolist() == [1, 1, 1, 1, 0, 0]
    assert gt_a[2].sum() == 0
    with pytest.raises(EcmaError, match="not in the test split"):
        a.truth("test", ["vid_t"], 6)


def test_llp_annotations_read_the_csvs(tmp_path):
    (tmp_path / "s.csv").write_text("filename\tevent_labels\nv1\tDog,Speech\nv2\tCar\n")
    (tmp_path / "a.csv").write_text("filename\tonset\toffset\tevent_labels\nv1\t2\t5\tDog\n")
    (tmp_path / "v.csv").write_text("filename\tonset\toffset\tevent_labels\nv2\t0\t10\tCar\n")
    a = LlpAnnotations({"test": tmp_path / "s.csv"}, tmp_path / "a.csv", tmp_path / "v.csv")
    assert len(a.classes) == 25 and not a.av_only and a.lengths("test", ["v1"]) is None
    gt_a, gt_v = a.truth("test", ["v1", "v2"], 10)
    dog, car = a.classes.index("Dog"), a.classes.index("Car")
    assert gt_a[0, dog].tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0] and gt_a.sum() == 3
    assert gt_v[1, car].sum() == 10 and gt_v.sum() == 10


def unav_predictions(tmp_path, annotations, audio, visual, video=None, modality=None):
    names = annotations.split("test").filenames
    lengths = annotations.lengths("test", names)
    video = np.ones((len(names), 2)) if video is None else video
    a_prob, v_prob = (None, None) if modality is None else modality
    preds = Predictions(filenames=names, classes=list(annotations.classes), video_prob=video, audio_prob=audio,
                        visual_prob=visual, a_prob=a_prob, v_prob=v_prob, lengths=lengths, provenance={})
    path = tmp_path / "p.h5"
    write_predictions(path, preds)
    return path


def test_perfect_segments_score_100_f1_and_the_map_the_seconds_grid_allows(tmp_path):
    a = UnavAnnotationSet(unav_json(tmp_path / "u.json"))
    gt, _ = a.truth("test", a.split("test").filenames, 5)
    prob = gt.transpose(0, 2, 1).astype(np.float32)  # (N, T, C)
    m = evaluate_annotated(unav_predictions(tmp_path, a, prob, prob), a, "test")
    assert m["protocol"] == "unav100-av" and m["num_videos"] == 3
    assert m["segment"]["audio_visual"] == pytest.approx(100.0)
    assert m["event"]["audio_visual"] == pytest.approx(100.0)
    # detections are whole seconds: Piano [1, 4) against the true [1.2, 3.7]: tIoU 2.5 / 3 = 0.833, matched up
    # to 0.8; Dog [0, 3.5) (clipped to the duration) against [0, 3.5]: 1. Mean over the two classes.
    expected = {f"0.{k}": 100.0 for k in range(1, 9)} | {"0.9": 50.0}
    assert m["map"]["map"] == pytest.approx(expected)
    assert m["map"]["average_0.5_0.9"] == pytest.approx((4 * 100.0 + 50.0) / 5)
    assert m["map"]["average"] == pytest.approx((8 * 100.0 + 50.0) / 9)  # UnAV's average: all nine thresholds


def test_evaluate_shows_the_map_averaged_as_unavs_code_averages(tmp_path, capsys):
    """The headline mAP is the mean over tIoU 0.1 ... 0.9 (UnAV's evaluator), not over 0.5 ... 0.9; both are
    in metrics.json. The case of the test above: 100 at 0.1 ... 0.8, 50 at 0.9."""
    a = UnavAnnotationSet(unav_json(tmp_path / "u.json"))
    gt, _ = a.truth("test", a.split("test").filenames, 5)
    prob = gt.transpose(0, 2, 1).astype(np.float32)
    predictions = unav_predictions(tmp_path, a, prob, prob)
    out = tmp_path / "m.json"
    assert main(["evaluate", "--predictions", str(predictions), "--annotations", str(tmp_path / "u.json"),
                 "--subset", "test", "--output", str(out)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"{out}: 3 videos (unav100-av); segment AV 100.00, event AV 100.00; mAP 94.44 (mean over tIoU "
                       "0.1:0.1:0.9, as UnAV's code averages)")
    saved = json.loads(out.read_text())["map"]
    assert (saved["average"], saved["average_0.5_0.9"]) == (pytest.approx(850 / 9), pytest.approx(90.0))


def test_av_scores_need_both_streams_and_ignore_the_padding(tmp_path):
    a = UnavAnnotationSet(unav_json(tmp_path / "u.json"))
    gt, _ = a.truth("test", a.split("test").filenames, 5)
    audio = gt.transpose(0, 2, 1).astype(np.float32)
    visual = audio.copy()
    visual[1] = 0.0  # vid_b's Dog is heard but not seen: no AV prediction there
    audio[2, 4, 0] = visual[2, 4, 0] = 1.0  # vid_c has 2 segments: segment 4 is padding, never counted
    m = evaluate_annotated(unav_predictions(tmp_path, a, audio, visual), a, "test")
    # per video: vid_a 100 (its event found), vid_b 0 (missed), vid_c 100 (nothing true, nothing predicted)
    assert m["segment"]["audio_visual"] == pytest.approx(200.0 / 3)
    assert m["event"]["audio_visual"] == pytest.approx(200.0 / 3)


def test_the_coleaf_protocol_gates_av_only_data_by_the_modality_level_probabilities(tmp_path):
    from ecma.config import EvalConfig

    a = UnavAnnotationSet(unav_json(tmp_path / "u.json"))
    gt, _ = a.truth("test", a.split("test").filenames, 5)
    prob = 0.3 * gt.transpose(0, 2, 1).astype(np.float32)  # above CoLeaF's segment threshold 0.25, below 0.5
    labels = a.split("test").label_matrix(a.classes)
    video = np.full(labels.shape, 0.2)  # a diluted video-level probability, as long videos give
    modality = (0.9 * labels, 0.6 * labels)  # above CoLeaF's 0.52 on the labelled classes only
    path = unav_predictions(tmp_path, a, prob, prob, video=video, modality=modality)
    bench = evaluate_annotated(path, a, "test")
    assert bench["gating"] == "benchmark" and bench["segment"]["audio_visual"] == pytest.approx(100.0 / 3)  # vid_c only
    m = evaluate_annotated(path, a, "test", eval_config=EvalConfig(protocol="coleaf"))
    assert m["gating"] == "coleaf" and m["thresholds"] == {"audio": 0.52, "visual": 0.52, "segment": 0.25}
    assert m["segment"]["audio_visual"] == pytest.approx(100.0) and m["event"]["audio_visual"] == pytest.approx(100.0)
    # one modality below its threshold: no AV event at all in that video
    modality = (0.9 * labels, 0.6 * labels * np.array([[1.0], [0.5], [1.0]]))  # vid_b's visual 0.3
    m = evaluate_annotated(unav_predictions(tmp_path, a, prob, prob, video=video, modality=modality), a, "test",
                           eval_config=EvalConfig(protocol="coleaf"))
    assert m["segment"]["audio_visual"] == pytest.approx(200.0 / 3)


def test_nothing_predicted_on_av_only_data(tmp_path):
    a = UnavAnnotationSet(unav_json(tmp_path / "u.json"))
    m = annotated_nothing_predicted(a, "test")
    # vid_a and vid_b miss their events (0), vid_c has none (100)
    assert m["segment"] == {"audio_visual": pytest.approx(100.0 / 3)}
    assert m["event"] == {"audio_visual": pytest.approx(100.0 / 3)}


def test_the_cli_takes_the_json_in_place_of_the_csvs(tmp_path, capsys):
    js = unav_json(tmp_path / "u.json")
    a = UnavAnnotationSet(js)
    gt, _ = a.truth("test", a.split("test").filenames, 5)
    prob = gt.transpose(0, 2, 1).astype(np.float32)
    preds = unav_predictions(tmp_path, a, prob, prob)
    out = tmp_path / "m.json"
    assert main(["evaluate", "--predictions", str(preds), "--annotations", str(js), "--subset", "test", "--output", str(out)]) == 0
    assert json.loads(out.read_text())["segment"]["audio_visual"] == pytest.approx(100.0)
    assert main(["baseline", "--annotations", str(js), "--output", str(tmp_path / "b.json")]) == 0
    assert json.loads((tmp_path / "b.json").read_text())["num_videos"] == 3
    # csvs and the JSON at once, or neither, is a one-line error
    assert main(["evaluate", "--predictions", str(preds), "--annotations", str(js), "--split", "x.csv", "--output", str(out)]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["evaluate", "--predictions", str(preds), "--output", str(out)]) == 2
    assert "--annotations JSON" in capsys.readouterr().err
    # a model of other classes is refused, naming why
    (tmp_path / "u3.json").write_text(js.read_text().replace('"label": "Dog"', '"label": "Cat"'))
    assert main(["evaluate", "--predictions", str(preds), "--annotations", str(tmp_path / "u3.json"), "--output", str(out)]) == 2
    assert "classes" in capsys.readouterr().err
