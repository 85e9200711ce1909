"""Training on planted synthetic features: learning, variants, resumption and reproducibility."""

import math

import pytest
import torch

from ecma.config import config_from_dict
from ecma.data.classes import LLP_CLASSES
from ecma.data.splits import load_split
from ecma.errors import EcmaError
from ecma.models.factory import build_network
from ecma.models.checkpoint import load_model
from ecma.training.train import train, validate
from ecma.registry import variants

VARIANT_TABLE = variants()
from synthetic import make_planted_data


def _cfg(data, variant="han_ecma", epochs=8, loss=None, **train_kw):
    return config_from_dict({
        "model": {"backbone": VARIANT_TABLE[variant].backbone, "audio_dim": data.audio_dim, "visual_dim": data.visual_dim,
                  "d_model": 64, "num_layers": 2, "num_heads": 4, "d_ff": 128, "dropout": 0.1},
        "train": {"variant": variant, "epochs": epochs, "batch_size": 16, "lr": 1e-3, "threads": 2, **train_kw},
        "pseudo": {"warmup_epochs": 1},
        "loss": loss or {},
    })


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    data = make_planted_data(tmp_path_factory.mktemp("planted"))
    train_data = load_split(data.shards, data.train_csv, LLP_CLASSES)
    val_data = load_split(data.shards, data.val_csv, LLP_CLASSES, eval_audio_csv=data.eval_audio_csv, eval_visual_csv=data.eval_visual_csv)
    return data, train_data, val_data


def _run(planted, out, **kw):
    data, train_data, val_data = planted
    stop = kw.pop("stop_after_epochs", None)
    cfg = _cfg(data, **kw)
    return cfg, train(cfg, train_data, val_data, out, classes=LLP_CLASSES, fingerprint=train_data.features.fingerprint, progress=False, stop_after_epochs=stop)


@pytest.mark.parametrize("variant", ["han_ecma"])
def test_full_model_learns_segment_level_events(planted, tmp_path, variant):
    data, _, val_data = planted
    cfg, result = _run(planted, tmp_path, variant=variant, epochs=16)
    torch.manual_seed(0)
    untrained = validate(build_network(cfg), val_data, cfg, torch.device("cpu"))
    model, _, payload = load_model(tmp_path / "model.pt")
    trained = validate(model, val_data, cfg, torch.device("cpu"))
    # An untrained model predicts nearly nothing: only the videos' empty classes score, so it sits low.
    assert trained["segment"]["type_av"] > untrained["segment"]["type_av"] + 20, (untrained["segment"], trained["segment"])
    assert trained["segment"]["audio"] > 35 and trained["segment"]["visual"] > 25, trained["segment"]
    assert trained["event"]["type_av"] > untrained["event"]["type_av"] + 10, (untrained["event"], trained["event"])
    # model.pt is the best epoch by validation segment Type@AV, as recorded in the history
    best = max(result.history, key=lambda h: h["val_segment_type_av"])
    assert payload["epoch"] == best["epoch"] == result.best_epoch
    assert math.isclose(trained["segment"]["type_av"], best["val_segment_type_av"], rel_tol=0, abs_tol=1e-9)
    # the pseudo loss is off during the warm-up epoch and on afterwards; CMA found pairs once trained
    assert result.history[0]["loss_pseudo"] == 0.0 and result.history[-1]["loss_pseudo"] > 0.0
    assert result.history[-1]["loss_cma"] > 0.0
    for name in ("history.csv", "history.json", "last.pt"):
        assert (tmp_path / name).is_file()


@pytest.mark.parametrize("variant, pseudo_on, cma_on", [
    ("han", False, False), ("han_no_ema", False, True), ("han_no_cma", True, False),
    ("coleaf", False, False), ("no_ema", False, True), ("no_cma", True, False),
])
def test_variants_switch_the_loss_terms(planted, tmp_path, variant, pseudo_on, cma_on):
    # thresholds 0 make Omega every labelled (t, c), so L_CMA is non-zero exactly when it is on
    _, result = _run(planted, tmp_path, variant=variant, epochs=3, loss={"cma_tau_a": 0.0, "cma_tau_v": 0.0})
    last = result.history[-1]
    assert (last["loss_pseudo"] > 0) == pseudo_on
    assert (last["loss_cma"] > 0) == cma_on
    # the total is the weighted sum of the terms (weights 1), averaged over videos
    assert math.isclose(last["loss"], last["loss_backbone"] + last["loss_pseudo"] + last["loss_cma"], rel_tol=1e-6)
    # the backbone's own terms are all there, whatever the variant
    backbone = VARIANT_TABLE[variant].backbone
    own = ["loss_avvp"] if backbone == "han" else ["loss_audio", "loss_video", "loss_nce", "loss_mutual", "loss_aux_audio"]
    assert all(math.isfinite(last[k]) and last[k] > 0 for k in own), last


@pytest.mark.parametrize("variant", ["han_ecma", "ecma"])
def test_interrupted_training_resumes_to_the_same_weights(planted, tmp_path, variant):
    _run(planted, tmp_path / "straight", variant=variant, epochs=3)
    _, first = _run(planted, tmp_path / "resumed", variant=variant, epochs=3, stop_after_epochs=2)
    assert len(first.history) == 2
    _, second = _run(planted, tmp_path / "resumed", variant=variant, epochs=3)
    assert second.resumed_from == 1
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    for k in a["teacher"]:
        assert torch.equal(a["teacher"][k], b["teacher"][k]), k
    if variant == "ecma":  # CoLeaF's auxiliary networks resume too
        for net in ("audio_only", "visual_only"):
            for k in a["backbone"][net]:
                assert torch.equal(a["backbone"][net][k], b["backbone"][net][k]), (net, k)
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]
    torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)  # tensors and plain values only


def test_same_seed_same_run_other_seed_other_run(planted, tmp_path):
    _, r1 = _run(planted, tmp_path / "a", epochs=2)
    _, r2 = _run(planted, tmp_path / "b", epochs=2)
    _, r3 = _run(planted, tmp_path / "c", epochs=2, seed=1)
    assert [h["loss"] for h in r1.history] == [h["loss"] for h in r2.history]
    assert [h["loss"] for h in r1.history] != [h["loss"] for h in r3.history]


def test_feature_dimensions_must_match_the_model(planted, tmp_path):
    data, train_data, val_data = planted
    cfg = config_from_dict({"model": {"audio_dim": 768, "visual_dim": data.visual_dim}})
    with pytest.raises(EcmaError, match="training: the features are audio 32-d and visual 24-d, but the model takes 768-d and 24-d"):
        train(cfg, train_data, val_data, tmp_path, classes=LLP_CLASSES, fingerprint={}, progress=False)


def test_a_complete_or_foreign_last_checkpoint_is_not_resumed(planted, tmp_path):
    data, train_data, val_data = planted
    _run(planted, tmp_path, epochs=2)
    (tmp_path / "model.pt").unlink()  # as Snakemake removes a rule's outputs before rerunning it
    _, again = _run(planted, tmp_path, epochs=2)
    assert again.resumed_from is None and (tmp_path / "model.pt").is_file() and len(again.history) == 2
    _run(planted, tmp_path, epochs=3, stop_after_epochs=1)
    fewer = load_split(data.shards, data.train_csv, LLP_CLASSES)
    fewer.features.filenames.pop()  # other training videos: the interrupted run is not continued
    cfg = _cfg(data, epochs=3)
    result = train(cfg, fewer, val_data, tmp_path, classes=LLP_CLASSES, fingerprint={}, progress=False)
    assert result.resumed_from is None and len(result.history) == 3


@pytest.mark.parametrize("native, amp, precision", [(True, True, "bf16-autocast"), (True, False, "float32"), (False, True, "float32")])
def test_the_checkpoint_records_the_precision_trained_in(planted, tmp_path, monkeypatch, native, amp, precision):
    import ecma.device

    monkeypatch.setattr(ecma.device, "cpu_has_native_bf16", lambda: native)
    _, result = _run(planted, tmp_path, epochs=1, amp=amp)
    _, _, payload = load_model(tmp_path / "model.pt")
    assert payload["precision"] == precision
    assert math.isfinite(result.history[0]["loss"])
