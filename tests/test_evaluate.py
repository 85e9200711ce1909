"""ecma.evaluation.evaluate.evaluate_files: from the files on disk to the benchmark's numbers."""

import numpy as np
import pytest

from ecma.data.annotations import read_eval, read_split, segment_truth
from ecma.data.classes import LLP_CLASSES
from ecma.errors import EcmaError
from ecma.evaluation.evaluate import evaluate_files
from ecma.evaluation.metrics import score
from ecma.evaluation.predictions import Predictions, write_predictions
from synthetic import noisy_predictions

CLASSES = ["Dog", "Cat"]
LEVEL_KEYS = ("audio", "visual", "audio_visual", "type_av", "event_av")


def write_tsv(path, header, rows):
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(map(str, r)) + "\n" for r in rows))
    return path


def write_preds(path, filenames, video, audio, visual, classes=CLASSES):
    write_predictions(path, Predictions(list(filenames), list(classes), video, audio, visual))
    return path


def files(tmp_path, audio_rows, visual_rows=(), split=("v1",)):
    split_csv = write_tsv(tmp_path / "split.csv", ["filename", "event_labels"], [(f, "Dog") for f in split])
    ea = write_tsv(tmp_path / "eval_audio.csv", ["filename", "onset", "offset", "event_labels"], audio_rows)
    ev = write_tsv(tmp_path / "eval_visual.csv", ["filename", "onset", "offset", "event_labels"], visual_rows)
    return split_csv, ea, ev


def silent_preds(tmp_path, filenames, t=10, c=2):
    n = len(filenames)
    z = np.zeros((n, t, c), dtype=np.float32)
    return write_preds(tmp_path / "preds.h5", filenames, np.ones((n, c), np.float32), z, z)


def test_result_layout_and_bookkeeping(tmp_path):
    split_csv, ea, ev = files(tmp_path, [("v1", 0, 4, "Dog")])
    r = evaluate_files(silent_preds(tmp_path, ["v1"]), split_csv, ea, ev, video_threshold=0.4, segment_threshold=0.6)
    assert set(r) == {"segment", "event", "per_class", "num_videos", "split", "thresholds", "skipped", "protocol", "modality_only"}
    assert r["skipped"] == []
    assert r["split"] == str(split_csv)
    assert r["thresholds"] == {"video": 0.4, "segment": 0.6}
    assert r["num_videos"] == 1
    # Dog is true for 4 audio segments and never predicted: audio 0, visual nothing at all -> 100
    assert r["segment"]["audio"] == 0.0 and r["segment"]["visual"] == 100.0
    assert set(r["per_class"]["segment"]["audio"]) == set(CLASSES)


def test_rows_with_onset_not_before_offset_add_nothing(tmp_path):
    split_csv, ea, ev = files(tmp_path, [("v1", 5, 5, "Dog"), ("v1", 7, 3, "Cat")], [("v1", 9, 9, "Dog")])
    r = evaluate_files(silent_preds(tmp_path, ["v1"]), split_csv, ea, ev)
    for level in ("segment", "event"):
        assert r[level] == {k: 100.0 for k in LEVEL_KEYS}


def test_rows_of_videos_outside_the_split_are_ignored(tmp_path):
    # 'other' has truth but is neither in the split nor in the predictions
    split_csv, ea, ev = files(tmp_path, [("other", 0, 10, "Dog")], [("other", 0, 10, "Cat")])
    r = evaluate_files(silent_preds(tmp_path, ["v1"]), split_csv, ea, ev)
    assert r["segment"]["audio"] == 100.0 and r["event"]["visual"] == 100.0


def test_offsets_beyond_the_last_segment_are_clipped(tmp_path):
    # truth [8,12) is [8,10); [12,15) is nothing. Predicting [8,10) is then perfect.
    split_csv, ea, ev = files(tmp_path, [("v1", 8, 12, "Dog"), ("v1", 12, 15, "Cat")])
    audio = np.zeros((1, 10, 2), np.float32)
    audio[0, 8:, 0] = 1.0
    preds = write_preds(tmp_path / "p.h5", ["v1"], np.ones((1, 2), np.float32), audio, np.zeros_like(audio))
    r = evaluate_files(preds, split_csv, ea, ev)
    assert r["segment"]["audio"] == 100.0 and r["event"]["audio"] == 100.0


def test_split_order_and_extra_predicted_videos(tmp_path):
    rng = np.random.default_rng(3)
    split = ["a", "b", "c"]
    rows_a = [("a", 0, 6, "Dog"), ("b", 2, 9, "Cat"), ("c", 0, 10, "Dog"), ("c", 4, 5, "Cat")]
    rows_v = [("a", 3, 8, "Dog"), ("c", 1, 3, "Cat")]
    split_csv, ea, ev = files(tmp_path, rows_a, rows_v, split=split)
    stored = ["x", "c", "a", "b"]  # another order, and a video the split does not have
    video = rng.random((4, 2)).astype(np.float32)
    audio = rng.random((4, 10, 2)).astype(np.float32)
    visual = rng.random((4, 10, 2)).astype(np.float32)
    r = evaluate_files(write_preds(tmp_path / "p.h5", stored, video, audio, visual), split_csv, ea, ev)
    order = [stored.index(f) for f in split]
    gt_a = np.zeros((3, 2, 10), np.uint8)
    gt_v = np.zeros((3, 2, 10), np.uint8)
    for gt, rows in ((gt_a, rows_a), (gt_v, rows_v)):
        for f, a, b, c in rows:
            gt[split.index(f), CLASSES.index(c), a:b] = 1
    expected = score(video[order], audio[order], visual[order], gt_a, gt_v, classes=CLASSES)
    assert r["num_videos"] == 3
    for level in ("segment", "event", "per_class"):
        assert r[level] == expected[level]


# ---- bad input ----


def test_missing_predictions_file(tmp_path):
    split_csv, ea, ev = files(tmp_path, [])
    with pytest.raises(EcmaError, match="nowhere.h5"):
        evaluate_files(tmp_path / "nowhere.h5", split_csv, ea, ev)


def test_predictions_lacking_videos_of_the_split(tmp_path):
    split_csv, ea, ev = files(tmp_path, [], split=("v1", "v2", "v3"))
    preds = silent_preds(tmp_path, ["v2"])
    with pytest.raises(EcmaError, match=r"preds\.h5.*2 video.*v1, v3"):
        evaluate_files(preds, split_csv, ea, ev)


@pytest.mark.parametrize(
    "which, content, problem",
    [
        ("eval_audio.csv", "filename\tonset\toffset\tevent_labels\nv1\tzero\t4\tDog\n", "whole seconds"),
        ("eval_visual.csv", "filename,onset,offset,event_labels\nv1,0,4,Dog\n", "lacks column"),
        ("split.csv", "", "empty"),
        ("eval_audio.csv", "filename\tonset\toffset\tevent_labels\nv1\t0\t4\tHorse\n", "Horse"),
    ],
)
def test_malformed_csv_is_named(tmp_path, which, content, problem):
    split_csv, ea, ev = files(tmp_path, [])
    (tmp_path / which).write_text(content)
    with pytest.raises(EcmaError, match=problem) as e:
        evaluate_files(silent_preds(tmp_path, ["v1"]), split_csv, ea, ev)
    assert which in str(e.value)


def test_class_unknown_to_the_predictions_names_both_files(tmp_path):
    split_csv, ea, ev = files(tmp_path, [("v1", 0, 3, "Speech")])  # an LLP class, but not one of these predictions
    with pytest.raises(EcmaError, match=r"eval_audio\.csv.*Speech.*preds\.h5"):
        evaluate_files(silent_preds(tmp_path, ["v1"]), split_csv, ea, ev)


def test_empty_split(tmp_path):
    split_csv, ea, ev = files(tmp_path, [], split=())
    with pytest.raises(EcmaError, match="split.csv"):
        evaluate_files(silent_preds(tmp_path, ["v1"]), split_csv, ea, ev)


# ---- the real LLP test split ----


def llp_truth(llp_dir):
    split = read_split(llp_dir / "AVVP_test_pd.csv", LLP_CLASSES)
    ga = segment_truth(read_eval(llp_dir / "AVVP_eval_audio.csv", LLP_CLASSES), split.filenames, LLP_CLASSES, 10)
    gv = segment_truth(read_eval(llp_dir / "AVVP_eval_visual.csv", LLP_CLASSES), split.filenames, LLP_CLASSES, 10)
    return split.filenames, ga, gv




# Obtained by running the published evaluation of AVVP-ECCV20 (commit fde5611: segment_level and event_level
# of utils/eval_metrics.py, inside a copy of main_avvp.eval's loop with pandas truth lookup, the model's outputs
# replaced by noisy_predictions(..., seed=0) above) outside this repository on the same LLP test split.
PUBLISHED = {
    (0.5, 0.5): {
        "segment": {"audio": 23.29033773686197, "visual": 17.41144347707679, "audio_visual": 22.909222267462447,
                    "type_av": 21.20366782713374, "event_av": 21.94699715128094},
        "event": {"audio": 15.071513261870406, "visual": 10.339576318742985, "audio_visual": 10.362407407407408,
                  "type_av": 11.924498996006932, "event_av": 12.322581924065057},
    },
    (0.3, 0.6): {
        "segment": {"audio": 15.799936284585414, "visual": 11.469151202220534, "audio_visual": 34.27797243606067,
                    "type_av": 20.51568664095554, "event_av": 11.728531554174127},
        "event": {"audio": 7.961424755249159, "visual": 4.576926234589925, "audio_visual": 13.717314814814813,
                  "type_av": 8.751888601551299, "event_av": 5.2434005534372545},
    },
}


def test_llp_perfect_predictions_score_100(llp_dir):
    filenames, ga, gv = llp_truth(llp_dir)
    assert len(filenames) == 1200
    video = (ga | gv).any(axis=2).astype(np.float32)
    r = score(video, ga.transpose(0, 2, 1).astype(np.float32), gv.transpose(0, 2, 1).astype(np.float32), ga, gv,
              classes=LLP_CLASSES)  # the names come from the dataset, never from a default
    for level in ("segment", "event"):
        assert r[level] == {k: pytest.approx(100.0, abs=1e-9) for k in LEVEL_KEYS}
    present = ga.any(axis=(0, 2))
    for name, is_present in zip(LLP_CLASSES, present):
        assert (r["per_class"]["event"]["audio"][name] == pytest.approx(100.0)) if is_present else (
            r["per_class"]["event"]["audio"][name] is None
        )


@pytest.mark.parametrize("thresholds", sorted(PUBLISHED))
def test_llp_noisy_predictions_match_the_published_code(llp_dir, tmp_path, thresholds):
    filenames, ga, gv = llp_truth(llp_dir)
    video, audio, visual = noisy_predictions(ga, gv, seed=0)
    vt, st = thresholds
    r = score(video, audio, visual, ga, gv, video_threshold=vt, segment_threshold=st)
    for level in ("segment", "event"):
        assert r[level] == {k: pytest.approx(v, abs=1e-9) for k, v in PUBLISHED[thresholds][level].items()}

    # the same end to end from the files, with the predictions stored in reverse order
    preds = write_preds(tmp_path / "p.h5", filenames[::-1], video[::-1], audio[::-1], visual[::-1], LLP_CLASSES)
    e = evaluate_files(
        preds, llp_dir / "AVVP_test_pd.csv", llp_dir / "AVVP_eval_audio.csv", llp_dir / "AVVP_eval_visual.csv",
        video_threshold=vt, segment_threshold=st,
    )
    assert e["num_videos"] == 1200
    for level in ("segment", "event"):
        assert e[level] == {k: pytest.approx(v, abs=1e-9) for k, v in PUBLISHED[thresholds][level].items()}


def test_missing_videos_can_be_skipped_and_are_listed(tmp_path):
    split = tmp_path / "split.csv"
    split.write_text("filename\tevent_labels\na_0_10\tSpeech\nb_0_10\tSpeech\n")
    ev = tmp_path / "eval.csv"
    ev.write_text("filename\tonset\toffset\tevent_labels\na_0_10\t0\t10\tSpeech\nb_0_10\t0\t10\tSpeech\n")
    c = len(LLP_CLASSES)
    p = Predictions(["a_0_10"], list(LLP_CLASSES), np.ones((1, c)) * 0.9, np.ones((1, 10, c)) * 0.9, np.ones((1, 10, c)) * 0.9)
    write_predictions(tmp_path / "p.h5", p)
    with pytest.raises(EcmaError, match="no predictions for 1 video"):
        evaluate_files(tmp_path / "p.h5", split, ev, ev)
    m = evaluate_files(tmp_path / "p.h5", split, ev, ev, missing="skip")
    assert m["skipped"] == ["b_0_10"] and m["num_videos"] == 1
    # every class predicted everywhere: Speech is right (F1 1), the 24 others are false positives (F1 0)
    assert m["segment"]["audio"] == pytest.approx(100 / 25)
