"""Config, annotation and shard readers: values read right, and every bad input named in one line."""

import warnings

import numpy as np
import pytest

from ecma.config import load_config, workflow_config_from_dict
from ecma.data.annotations import read_eval, read_split, segment_truth
from ecma.data.classes import LLP_CLASSES
from ecma.data.shards import FeatureShard, load_features
from ecma.errors import EcmaError


def write(path, text):
    path.write_text(text)
    return path


# --- config -----------------------------------------------------------------------------------------

def test_config_defaults_and_overrides(tmp_path):
    cfg = load_config(write(tmp_path / "c.yaml", "train:\n  epochs: 3\nmodel:\n  d_model: 64\n  num_heads: 4\ndatasets: {}\n"))
    assert cfg.train.epochs == 3 and cfg.model.d_model == 64 and cfg.model.num_layers == 1  # CoLeaF's default
    assert cfg.loss.visual_smoothing == 0.1 and cfg.eval.video_threshold == 0.5


@pytest.mark.parametrize("text, message", [
    ("train:\n  epoch: 3\n", "unknown key train.epoch"),
    ("train:\n  epochs: three\n", "train.epochs must be an integer, got 'three'"),
    ("train:\n  amp: 1\n", "train.amp must be true or false"),
    ("pseudo:\n  rule: median\n", "pseudo.rule must be one of 'adaptive', 'topk'"),
    ("model:\n  d_model: 100\n  num_heads: 8\n", "d_model must be divisible by model.num_heads"),
    ("train: [1, 2]\n", "section 'train' must be a mapping"),
    ("train: {epochs: [\n", "not valid YAML"),
])
def test_bad_config_values_are_named(tmp_path, text, message):
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(EcmaError, match=message) as e:
        load_config(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(EcmaError, match=f"{tmp_path}/nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_workflow_config_checks_datasets_and_variants():
    ok = {"datasets": {"d": {"demo": {"n_train": 4}, "overrides": {"train": {"epochs": 2}}}}, "variants": ["ecma", "han"]}
    cfg = workflow_config_from_dict(ok)
    assert cfg.for_dataset("d", "han").train.epochs == 2 and cfg.for_dataset("d", "han").train.variant == "han"
    for bad, message in [
        ({**ok, "variants": ["ecma", "full"]}, "unknown variant 'full'"),
        ({**ok, "main_variant": "no_cma"}, "main_variant 'no_cma' is not one of"),
        ({**ok, "datset": {}}, "unknown key 'datset'"),
        ({"datasets": {"d": {"videos": "v"}}}, "datasets.d needs 'annotations' and 'videos'"),
        ({"datasets": {"d": {"demo": {}, "overrides": {"train": {"epochs": "x"}}}}}, "train.epochs must be an integer"),
        ({"datasets": {"d": {"demo": {}, "n_shards": "4"}}}, "datasets.d.n_shards must be an integer"),
    ]:
        with pytest.raises(EcmaError, match=message):
            workflow_config_from_dict(bad)


# --- annotations ------------------------------------------------------------------------------------

def test_split_and_eval_files_are_read(tmp_path):
    split = read_split(write(tmp_path / "s.csv", "filename\tevent_labels\nv1_0_10\tSpeech,Dog\nv2_0_10\tCat\n"), LLP_CLASSES)
    assert split.filenames == ["v1_0_10", "v2_0_10"]
    y = split.label_matrix(LLP_CLASSES)
    assert y.sum() == 3 and y[0, 0] == y[0, 3] == y[1, 4] == 1
    rows = read_eval(write(tmp_path / "e.csv", "filename\tonset\toffset\tevent_labels\n"
                                             "v1_0_10\t2\t5\tSpeech\nv1_0_10\t7\t7\tDog\nv1_0_10\t9\t3\tDog\n"
                                             "v9_0_10\t0\t10\tCat\nv2_0_10\t8\t12\tCat\n"), LLP_CLASSES)
    gt = segment_truth(rows, ["v1_0_10", "v2_0_10"], LLP_CLASSES, 10)
    assert gt[0, 0].tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0]  # end exclusive
    assert gt[0, 3].sum() == 0  # onset >= offset adds nothing
    assert gt[1, 4].tolist() == [0] * 8 + [1, 1]  # clipped at T
    assert gt.sum() == 5  # the row of v9 (not in the split) is ignored


@pytest.fixture
def ecma_log():
    """The messages the package logs (the ``ecma`` logger: stderr in the CLI), taken as they come."""
    import logging

    class Taken(logging.Handler):
        def __init__(self):
            super().__init__(logging.WARNING)
            self.messages: list[str] = []

        def emit(self, record):
            self.messages.append(record.getMessage())

        def take(self) -> list[str]:
            out, self.messages = self.messages, []
            return out

    taken = Taken()
    logging.getLogger("ecma").addHandler(taken)
    yield taken
    logging.getLogger("ecma").removeHandler(taken)


def test_truth_rows_outside_their_clip_are_scored_as_the_benchmark_does_and_named_in_one_line(tmp_path, ecma_log):
    path = write(tmp_path / "e.csv", "filename\tonset\toffset\tevent_labels\n"
                                     "v1\t2\t5\tSpeech\n"   # 2: fine
                                     "v1\t9\t3\tDog\n"      # 3: onset > offset
                                     "v2\t8\t12\tCat\n"     # 4: past the clip (T 10)
                                     "v9\t5\t1\tCat\n"      # 5: a video not scored: not named
                                     "v2\t0\t10\tSpeech\n"  # 6: ends with the clip: fine
                                     "v1\t4\t11\tDog\n"     # 7: past the clip
                                     "v1\t7\t2\tSpeech\n")  # 8: onset > offset
    rows = read_eval(path, LLP_CLASSES)
    gt = segment_truth(rows, ["v1", "v2"], LLP_CLASSES, 10)
    speech, dog, cat = (LLP_CLASSES.index(c) for c in ("Speech", "Dog", "Cat"))
    # the benchmark's GT[c, onset:offset] = 1 on a 10-segment array: reversed rows set nothing, late ones are cut
    assert gt[0, speech].tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0]
    assert gt[0, dog].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    assert gt[1, cat].tolist() == [0] * 8 + [1, 1] and gt[1, speech].sum() == 10 and gt.sum() == 3 + 6 + 2 + 10
    assert ecma_log.take() == [
        f"{path}: 4 truth row(s) end before they start or past their clip, kept and scored as the benchmark scores "
        "them (nothing, or cut at the clip's end): line 3 (onset 9 > offset 3), 4 (offset 12 past the clip's end 10), "
        "7 (offset 11 past the clip's end 10) and 1 more"]
    # videos of their own length: v2's clip ends at 6, so its row 6 (0-10) is past it too; scoring is unchanged
    assert (segment_truth(rows, ["v1", "v2"], LLP_CLASSES, 10, lengths=[10, 6]) == gt).all()
    assert [m.split(": ", 1)[1][:14] for m in ecma_log.take()] == ["5 truth row(s)"]
    segment_truth(rows[:1] + rows[4:5], ["v1", "v2"], LLP_CLASSES, 10)
    assert ecma_log.take() == []


def test_truth_rows_outside_their_clip_are_one_stderr_line_per_file_in_the_cli(tmp_path, capsys):
    from ecma.cli import main

    split = write(tmp_path / "s.csv", "filename\tevent_labels\nv1\tSpeech\n")
    audio = write(tmp_path / "a.csv", "filename\tonset\toffset\tevent_labels\nv1\t5\t2\tSpeech\nv1\t0\t3\tSpeech\n")
    visual = write(tmp_path / "v.csv", "filename\tonset\toffset\tevent_labels\nv1\t0\t12\tSpeech\n")
    rc = main(["baseline", "--quiet", "--split", str(split), "--eval-audio", str(audio), "--eval-visual", str(visual),
               "--output", str(tmp_path / "b.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 0 and len(err) == 2
    assert err[0].endswith(f"{audio}: 1 truth row(s) end before they start or past their clip, kept and scored as the "
                           "benchmark scores them (nothing, or cut at the clip's end): line 2 (onset 5 > offset 2)")
    assert err[1].endswith(f"{visual}: 1 truth row(s) end before they start or past their clip, kept and scored as the "
                           "benchmark scores them (nothing, or cut at the clip's end): line 2 (offset 12 past the clip's end 10)")


def test_the_real_llp_truth_has_one_row_that_ends_before_it_starts(llp_dir, ecma_log):
    """AVVP_eval_audio.csv line 3770 (8DF2PxdT5tE_390_400, Cheering, 9 to 0), a validation video; no row of
    either file ends past 10 s. Scoring the test split names nothing; the validation split, that row alone."""
    rows_a = read_eval(llp_dir / "AVVP_eval_audio.csv", LLP_CLASSES)
    rows_v = read_eval(llp_dir / "AVVP_eval_visual.csv", LLP_CLASSES)
    test = read_split(llp_dir / "AVVP_test_pd.csv", LLP_CLASSES).filenames
    val = read_split(llp_dir / "AVVP_val_pd.csv", LLP_CLASSES).filenames
    for rows in (rows_a, rows_v):
        segment_truth(rows, test, LLP_CLASSES, 10)
    segment_truth(rows_v, val, LLP_CLASSES, 10)
    assert ecma_log.take() == []
    gt = segment_truth(rows_a, val, LLP_CLASSES, 10)
    assert ecma_log.take() == [f"{llp_dir / 'AVVP_eval_audio.csv'}: 1 truth row(s) end before they start or "
                                             "past their clip, kept and scored as the benchmark scores them (nothing, or "
                                             "cut at the clip's end): line 3770 (onset 9 > offset 0)"]
    assert gt[val.index("8DF2PxdT5tE_390_400"), LLP_CLASSES.index("Cheering")].sum() == 0


@pytest.mark.parametrize("text, message", [
    ("", "file is empty"),
    ("name\tlabels\nv\tSpeech\n", "lacks column"),
    ("filename\tevent_labels\nv1\tSpeech,Dgo\n", r":2: unknown class 'Dgo'"),
    ("filename\tevent_labels\nv1\tSpeech\nv1\tDog\n", r":3: video 'v1' is listed twice"),
    ("filename,event_labels\nv1,Speech\n", "tab-separated"),
])
def test_bad_split_files_are_named(tmp_path, text, message):
    path = write(tmp_path / "split.csv", text)
    with pytest.raises(EcmaError, match=message) as e:
        read_split(path, LLP_CLASSES)
    assert str(path) in str(e.value)


def test_bad_eval_rows_are_named(tmp_path):
    path = write(tmp_path / "e.csv", "filename\tonset\toffset\tevent_labels\nv\t1.5\t3\tDog\n")
    with pytest.raises(EcmaError, match=r"e.csv:2: onset/offset must be whole seconds"):
        read_eval(path, LLP_CLASSES)
    with pytest.raises(EcmaError, match="split file not found"):
        read_split(tmp_path / "absent.csv", LLP_CLASSES)


def test_a_byte_order_mark_is_accepted_as_the_benchmarks_pandas_reader_accepts_it(tmp_path):
    bom = "\ufeff"
    split = read_split(write(tmp_path / "s.csv", bom + "filename\tevent_labels\nv1_0_10\tSpeech\n"), LLP_CLASSES)
    assert split.filenames == ["v1_0_10"] and split.labels == [("Speech",)]
    rows = read_eval(write(tmp_path / "e.csv", bom + "filename\tonset\toffset\tevent_labels\nv1_0_10\t2\t5\tDog\n"), LLP_CLASSES)
    assert [(r.filename, r.onset, r.offset, r.label) for r in rows] == [("v1_0_10", 2, 5, "Dog")]


def _llp_dataset(root, **texts):
    """A DatasetFiles of LLP-format csvs: a video per split, any file replaced by ``texts[key]``."""
    from ecma.data.datasets import DatasetFiles

    files = {"train": "filename\tevent_labels\na_0_10\tSpeech\n", "val": "filename\tevent_labels\nb_0_10\tDog\n",
             "test": "filename\tevent_labels\nc_0_10\tCat\n",
             "audio": "filename\tonset\toffset\tevent_labels\n", "visual": "filename\tonset\toffset\tevent_labels\n"}
    files.update(texts)
    paths = {k: root / f"{k}.csv" for k in files}
    for k, text in files.items():
        paths[k].write_bytes(text) if isinstance(text, bytes) else paths[k].write_text(text)
    return DatasetFiles("mine", root, root / "videos", paths["train"], paths["val"], paths["test"], paths["audio"],
                        paths["visual"], n_shards=1, missing_videos="error", generated=False)


HINT = "(set datasets.mine.allow_split_overlap: true if intended)"


@pytest.mark.parametrize("texts, message", [
    ({"val": "name\tlabels\nb_0_10\tDog\n"}, r"val\.csv: split file lacks column\(s\) filename, event_labels"),
    ({"val": b"\xff\xfe\x00binary"}, r"val\.csv: not a text file"),
    ({"test": "filename\tevent_labels\nc_0_10\tCat\nc_0_10\tCat\n"}, r"test\.csv:3: video 'c_0_10' is listed twice"),
])
def test_the_split_overlap_hint_is_only_on_the_overlap(tmp_path, texts, message):
    from ecma.data.datasets import dataset_videos

    with pytest.raises(EcmaError, match=message) as e:
        dataset_videos(_llp_dataset(tmp_path, **texts))
    assert "allow_split_overlap" not in str(e.value)
    overlap = _llp_dataset(tmp_path, test="filename\tevent_labels\nc_0_10\tCat\nb_0_10\tDog\n")
    with pytest.raises(EcmaError) as e:
        dataset_videos(overlap)
    assert str(e.value) == (f"b_0_10: listed in {tmp_path / 'val.csv'} and in {tmp_path / 'test.csv'} "
                            f"(a video in two splits leaks between them) {HINT}")


def test_real_llp_annotations(llp_dir):
    assert len(read_split(llp_dir / "AVVP_train.csv", LLP_CLASSES)) == 10000
    val = read_split(llp_dir / "AVVP_val_pd.csv", LLP_CLASSES)
    test = read_split(llp_dir / "AVVP_test_pd.csv", LLP_CLASSES)
    assert (len(val), len(test)) == (649, 1200)
    rows = read_eval(llp_dir / "AVVP_eval_audio.csv", LLP_CLASSES)
    assert len(rows) == 4131
    gt = segment_truth(rows, test.filenames, LLP_CLASSES, 10)
    # the file's first row: 4YdbENYcIyE_23_33, onset 0, offset 4, Baby_cry_infant_cry
    n, c = test.filenames.index("4YdbENYcIyE_23_33"), LLP_CLASSES.index("Baby_cry_infant_cry")
    assert gt[n, c].tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]


# --- shards -----------------------------------------------------------------------------------------

def _shard(path, videos, fingerprint={"enc": "x"}, T=4, da=3, dv=2):
    with FeatureShard(path, "w") as s:
        s.fingerprint = fingerprint
        for i, name in enumerate(videos):
            s.write(name, np.full((T, da), i, np.float32), np.full((T, dv), -i, np.float32))
    return path


def test_load_features_from_several_shards_in_the_requested_order(tmp_path):
    a = _shard(tmp_path / "a.h5", ["v0", "v1"])
    b = _shard(tmp_path / "b.h5", ["v2"])
    fs = load_features([a, b], ["v2", "v0"])
    assert fs.filenames == ["v2", "v0"] and fs.audio.dtype == np.float32
    assert fs.audio[:, 0, 0].tolist() == [0.0, 0.0] and fs.visual[1, 0, 0] == 0.0
    with FeatureShard(a) as s:
        attrs = s.attrs("v1")
        assert attrs["n_segments"] == 4 and "T" in attrs["extracted_at"]
        assert s.fingerprint == {"enc": "x"}


def test_missing_videos_are_named_or_skipped_with_a_warning(tmp_path):
    a = _shard(tmp_path / "a.h5", ["v0"])
    with pytest.raises(EcmaError, match="2 of 3 videos have no features in the given shards: v8, v9"):
        load_features([a], ["v0", "v8", "v9"])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        fs = load_features([a], ["v0", "v8"], missing="skip")
    assert fs.filenames == ["v0"] and fs.skipped == ["v8"] and "v8" in str(w[0].message)


def test_a_video_of_another_width_is_named_even_when_it_is_read_first(tmp_path):
    """Videos are read in name order; the odd one ('a_odd', audio 5-d) comes first, so comparing each video
    with the first one read would blame the good ones. The norm is what most videos have."""
    a = _shard(tmp_path / "a.h5", ["v0", "v1"])
    b = _shard(tmp_path / "b.h5", ["v2"])
    with FeatureShard(b, "a") as s:
        s.write("a_odd", np.zeros((4, 5)), np.zeros((4, 2)))
    with pytest.raises(EcmaError) as e:
        load_features([b, a], ["v0", "v1", "v2", "a_odd"])
    assert str(e.value) == (f"{b}: video 'a_odd' has audio (4, 5) and visual (4, 2), but 3 other videos (e.g. 'v2' in "
                            f"{b}) have (4, 3) and (4, 2)")
    with FeatureShard(a, "a") as s:
        s.write("v1", np.zeros((4, 5)), np.zeros((4, 2)))  # two odd ones of five: the count is said
    with FeatureShard(b, "a") as s:
        s.write("v4", np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(EcmaError, match=r"b.h5: video 'a_odd' has audio \(4, 5\).*but 3 other videos \(e.g. 'v2' in .*b.h5\) "
                                        r"have \(4, 3\) and \(4, 2\) \(2 videos differ\)$"):
        load_features([b, a], ["v0", "v1", "v2", "a_odd", "v4"])


def test_shards_of_different_extractors_are_not_mixed(tmp_path):
    a = _shard(tmp_path / "a.h5", ["v0"], {"enc": "x", "seed": 0})
    b = _shard(tmp_path / "b.h5", ["v1"], {"enc": "x", "seed": 1})
    with pytest.raises(EcmaError, match=r"b.h5: feature fingerprint differs from .*a.h5 \(in seed\)"):
        load_features([a, b], ["v0", "v1"])


def test_bad_features_are_named(tmp_path):
    a = _shard(tmp_path / "a.h5", ["v0"])
    with FeatureShard(a, "a") as s:
        s.write("nan", np.full((4, 3), np.nan), np.zeros((4, 2)))
        s.write("wide", np.zeros((4, 5)), np.zeros((4, 2)))
    with pytest.raises(EcmaError, match="video 'nan' has NaN"):
        load_features([a], ["v0", "nan"])
    with pytest.raises(EcmaError, match=r"a.h5: video 'wide' has audio \(4, 5\) and visual \(4, 2\), but video 'v0' in "
                                        r".*a.h5 has \(4, 3\) and \(4, 2\): the videos of a split must share their feature sizes$"):
        load_features([a], ["v0", "wide"])  # one each: neither is the norm, both named
    with pytest.raises(EcmaError, match="has 4 segments; the dataset has 10"):
        load_features([a], ["v0"], n_segments=10)
    with pytest.raises(EcmaError, match="feature shard not found"):
        load_features([tmp_path / "none.h5"], ["v0"])
    junk = write(tmp_path / "junk.h5", "not hdf5")
    with pytest.raises(EcmaError, match="junk.h5: not a readable HDF5 feature shard"):
        load_features([junk], ["v0"])
