"""The ecma command end to end on planted features, and its one-line errors."""

import hashlib
import json

import h5py
import pytest
import torch
import yaml

from ecma.cli import main
from ecma.evaluation.predictions import read_predictions
from synthetic import make_planted_data


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = make_planted_data(root / "data", n_train=64, n_val=16, n_test=16)
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"audio_dim": 32, "visual_dim": 24, "d_model": 32, "num_layers": 1, "num_heads": 2, "d_ff": 64},
        "train": {"epochs": 2, "batch_size": 16, "threads": 2},
    }))
    out = root / "model"
    rc = main(["train", "--config", str(config), "--features", *map(str, data.shards), "--output-dir", str(out),
               "--train", str(data.train_csv), "--val", str(data.val_csv), "--eval-audio", str(data.eval_audio_csv),
               "--eval-visual", str(data.eval_visual_csv), "--variant", "no_cma", "--quiet"])
    assert rc == 0
    return root, data, config, out


def test_train_predict_evaluate(trained, tmp_path):
    root, data, config, out = trained
    for name in ("model.pt", "last.pt", "history.csv", "history.json", "curves.png"):
        assert (out / name).is_file(), name
    assert len(json.loads((out / "history.json").read_text())) == 2
    preds = tmp_path / "preds.h5"
    assert main(["predict", "--checkpoint", str(out / "model.pt"), "--features", *map(str, data.shards),
                 "--split", str(data.test_csv), "--output", str(preds)]) == 0
    p = read_predictions(preds)
    assert len(p.filenames) == 16 and p.classes[0] == "Speech" and len(p.classes) == 25
    assert p.audio_prob.shape == (16, 10, 25)
    with h5py.File(preds) as f:
        assert set(f) == {"filename", "classes", "video_prob", "audio_prob", "visual_prob", "a_prob", "v_prob"}
    metrics_path = tmp_path / "metrics.json"
    assert main(["evaluate", "--predictions", str(preds), "--split", str(data.test_csv), "--eval-audio",
                 str(data.eval_audio_csv), "--eval-visual", str(data.eval_visual_csv), "--output", str(metrics_path),
                 "--config", str(config)]) == 0
    m = json.loads(metrics_path.read_text())
    assert set(m["segment"]) == set(m["event"]) == {"audio", "visual", "audio_visual", "type_av", "event_av"}
    assert m["num_videos"] == 16 and m["thresholds"]["video"] == 0.5
    seg = m["segment"]
    assert seg["type_av"] == pytest.approx((seg["audio"] + seg["visual"] + seg["audio_visual"]) / 3)
    prov = m["provenance"]
    assert prov["ecma_version"] and prov["feature_fingerprint"]["visual_model"] == "synthetic"
    assert prov["training_config"]["train"]["epochs"] == 2 and prov["training_config"]["train"]["variant"] == "no_cma"
    assert prov["evaluation"]["video_threshold"] == 0.5 and "config" not in prov
    # predictions say how they were computed: bf16 autocast where this CPU has it, else float32
    from ecma.device import amp_dtype, precision_name

    assert prov["model"]["precision"] == precision_name(amp_dtype(torch.device("cpu"), True))


def test_metrics_record_what_trained_the_model_and_what_scored_it(trained, tmp_path):
    """As the workflow runs evaluate (only the eval section on its command line), provenance must still hold the
    checkpoint's own settings, not the package defaults, and the thresholds that scored."""
    root, data, config, out = trained
    preds = tmp_path / "preds.h5"
    assert main(["predict", "--checkpoint", str(out / "model.pt"), "--features", *map(str, data.shards),
                 "--split", str(data.test_csv), "--output", str(preds), "--quiet"]) == 0
    metrics_path = tmp_path / "metrics.json"
    assert main(["evaluate", "--predictions", str(preds), "--split", str(data.test_csv), "--eval-audio",
                 str(data.eval_audio_csv), "--eval-visual", str(data.eval_visual_csv), "--output", str(metrics_path),
                 "--settings", json.dumps({"eval": {"segment_threshold": 0.4}}), "--quiet"]) == 0
    prov = json.loads(metrics_path.read_text())["provenance"]
    trained_with = prov["training_config"]
    assert trained_with["train"]["epochs"] == 2 and trained_with["model"]["d_model"] == 32  # not 10 and 512
    assert trained_with["train"]["variant"] == "no_cma" and prov["model"]["seed"] == 0
    assert prov["evaluation"]["segment_threshold"] == 0.4 and prov["evaluation"]["video_threshold"] == 0.5
    assert prov["model"]["checkpoint_sha256"] == hashlib.sha256((out / "model.pt").read_bytes()).hexdigest()


def test_errors_are_one_line_and_name_the_file(trained, tmp_path, capsys):
    root, data, config, out = trained
    metrics_path = tmp_path / "metrics.json"
    metrics_path.write_text('{"old": true}')
    rc = main(["evaluate", "--predictions", str(tmp_path / "absent.h5"), "--split", str(data.test_csv), "--eval-audio",
               str(data.eval_audio_csv), "--eval-visual", str(data.eval_visual_csv), "--output", str(metrics_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err == f"ecma evaluate: error: {tmp_path / 'absent.h5'}: predictions file not found"
    assert metrics_path.read_text() == '{"old": true}'  # nothing already written is damaged


def test_checkpoint_of_another_architecture_is_refused(trained, tmp_path, capsys):
    root, data, config, out = trained
    payload = torch.load(out / "model.pt", weights_only=False)
    payload["config"]["model"]["d_model"] = 64
    payload["config"]["model"]["num_heads"] = 2
    bad = tmp_path / "other.pt"
    torch.save(payload, bad)
    rc = main(["predict", "--checkpoint", str(bad), "--features", *map(str, data.shards), "--split", str(data.test_csv),
               "--output", str(tmp_path / "p.h5")])
    err = capsys.readouterr().err
    assert rc == 2 and f"{bad}: weights do not fit the architecture of its config" in err
    assert not (tmp_path / "p.h5").exists()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 100)
    assert main(["predict", "--checkpoint", str(junk), "--features", *map(str, data.shards), "--split",
                 str(data.test_csv), "--output", str(tmp_path / "p.h5")]) == 2
    assert f"{junk}: not a readable checkpoint" in capsys.readouterr().err


def test_features_of_another_extractor_are_refused(trained, tmp_path, capsys):
    root, data, config, out = trained
    other = make_planted_data(tmp_path / "other", n_train=4, n_val=2, n_test=16, n_shards=1)
    with h5py.File(other.shards[0], "a") as f:
        f.attrs["fingerprint"] = json.dumps({"visual_model": "ViT-B-32"})
    rc = main(["predict", "--checkpoint", str(out / "model.pt"), "--features", str(other.shards[0]), "--split",
               str(other.test_csv), "--output", str(tmp_path / "p.h5")])
    err = capsys.readouterr().err
    assert rc == 2 and "trained on features of another extractor" in err and "visual_model" in err


def test_ablation_table(trained, tmp_path):
    m = {"segment": dict(audio=50.0, visual=40.0, audio_visual=30.0, type_av=40.0, event_av=45.0),
         "event": dict(audio=20.0, visual=10.0, audio_visual=5.0, type_av=35 / 3, event_av=15.0), "split": "test.csv"}
    paths = []
    for v in ("han", "ecma"):
        p = tmp_path / f"{v}.json"
        p.write_text(json.dumps(m))
        paths.append(f"{v}={p}")
    assert main(["ablation", "--metrics", *paths, "--output-md", str(tmp_path / "a.md"), "--output-json", str(tmp_path / "a.json")]) == 0
    md = (tmp_path / "a.md").read_text()
    assert "| han | 50.00 | 40.00 | 30.00 | 40.00 | 45.00 | 20.00 | 10.00 | 5.00 | 11.67 | 15.00 |" in md
    assert list(json.loads((tmp_path / "a.json").read_text())["variants"]) == ["han", "ecma"]


def test_every_subcommand_and_option_says_what_it_does():
    """`ecma --help` lists every subcommand with a line for users; no option goes without help."""
    import argparse

    from ecma.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    listed = {c.dest: c.help for c in sub._choices_actions}
    assert set(listed) == set(sub.choices) and all(listed.values())
    undocumented = []
    for name, command in sub.choices.items():
        for action in command._actions:
            if not isinstance(action, argparse._HelpAction) and not action.help:
                undocumented.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert undocumented == []
    for name, command in sub.choices.items():
        assert command.description and "example:" in (command.epilog or ""), name
    assert "commands:" in parser.format_help() and "parse" in parser.format_help()
