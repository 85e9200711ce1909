"""The backbone interface, the EMA ramp, CoLeaF's evaluation protocol, model selection and checkpoint import;
expected numbers are computed here by hand."""

import numpy as np
import pytest
import torch
import yaml

from ecma.cli import main
from ecma.config import EvalConfig, config_from_dict
from ecma.evaluation.protocols import score_outputs, selection_score
from ecma.models.contracts import Batch
from ecma.models.factory import backbone_class
from ecma.models.coleaf.network import CoLeaFNet
from ecma.models.coleaf.checkpoint_import import import_coleaf_state_dict
from ecma.models.checkpoint import load_model
from ecma.training.ema import ema_decay, ema_update_, make_teacher
from test_coleaf import reference_state_dict, small_config


# --- the EMA ramp -------------------------------------------------------------------------------------------

def test_ema_ramp_follows_mean_teachers_schedule():
    assert [ema_decay(k, 0.9) for k in range(4)] == [0.0, 0.5, pytest.approx(2 / 3), 0.75]
    assert ema_decay(100, 0.9) == 0.9  # min(1 - 1/101, 0.9)
    assert ema_decay(0, 0.9, ramp=False) == ema_decay(5, 0.9, ramp=False) == 0.9
    # with the ramp the teacher is the running mean of the student's weights until 1 - 1/(k+1) reaches alpha
    student = torch.nn.Linear(1, 1, bias=False)
    teacher = make_teacher(student)
    weights = [3.0, 5.0, 10.0]
    for k, w in enumerate(weights):
        with torch.no_grad():
            student.weight.fill_(w)
        ema_update_(teacher, student, ema_decay(k, 0.99))
    assert teacher.weight.item() == pytest.approx(sum(weights) / 3)


# --- the interface ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("backbone", ["han", "coleaf"])
def test_a_backbone_trains_a_batch_and_names_its_terms(backbone):
    cfg = config_from_dict({"model": {"backbone": backbone, "audio_dim": 6, "visual_dim": 5, "num_classes": 4, "d_model": 8,
                                      "num_heads": 2, "d_ff": 16},
                            "train": {"variant": "ecma" if backbone == "coleaf" else "han_ecma", "amp": False},
                            "coleaf": {"noise_ratios": None}})
    torch.manual_seed(0)
    bb = backbone_class(backbone).build(cfg, steps_per_epoch=1, device=torch.device("cpu"), precision=None)
    batch = Batch(torch.randn(3, 10, 6), torch.randn(3, 10, 5), None, torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 1]]))
    before = {k: v.clone() for k, v in bb.net.state_dict().items()}
    extra = lambda out: (out.audio_emb.float().pow(2).mean() * 2.0, {"cma": out.audio_emb.float().pow(2).mean()})  # noqa: E731
    terms = bb.train_step(batch, epoch=0, step=0, extra_loss=extra)
    assert set(terms) == set(bb.loss_terms) | {"backbone", "cma", "total"}
    assert terms["total"].item() == pytest.approx(terms["backbone"].item() + 2.0 * terms["cma"].item(), rel=1e-5)
    assert any(not torch.equal(before[k], v) for k, v in bb.net.state_dict().items())  # the optimiser stepped
    # forward gives the fields every consumer reads, with their shapes
    out = bb.net.eval()(batch.audio, batch.visual)
    assert out.a_prob.shape == out.v_prob.shape == out.video_prob.shape == (3, 4)
    assert out.audio_prob.shape == out.visual_prob.shape == (3, 10, 4) and out.segment_prob.shape == (3, 10, 2, 4)
    assert torch.equal(out.audio_prob, out.segment_prob[:, :, 0])


def test_a_checkpoint_of_the_han_era_loads_as_a_han():
    from ecma.models.checkpoint import stored_config

    old = config_from_dict({"model": {"backbone": "han"}, "train": {"variant": "han_no_cma"}}).to_dict()
    del old["model"]["backbone"]
    old["train"]["variant"] = "no_cma"
    cfg = stored_config({"config": old}, "old.pt")
    assert cfg.model.backbone == "han" and cfg.train.variant == "han_no_cma"


# --- CoLeaF's evaluation protocol ---------------------------------------------------------------------------

class _Out:
    def __init__(self, **kw):
        self.__dict__.update({k: np.asarray(v, dtype=np.float32) for k, v in kw.items()})


def _one_video():
    """One video, 2 classes, 4 segments. Class 0 is audible in segments 0-1 and visible in 1-2; class 1 absent."""
    gt_a = np.zeros((1, 2, 4)); gt_a[0, 0, 0:2] = 1  # noqa: E702
    gt_v = np.zeros((1, 2, 4)); gt_v[0, 0, 1:3] = 1  # noqa: E702
    audio = np.zeros((1, 4, 2)); audio[0, :, 0] = [0.3, 0.3, 0.2, 0.1]  # noqa: E702  on >= 0.25 at t = 0, 1
    visual = np.zeros((1, 4, 2)); visual[0, :, 0] = [0.1, 0.4, 0.6, 0.3]  # noqa: E702  on >= 0.25 at 1, 2, 3
    visual[0, :, 1] = 0.9  # class 1 visually "on" everywhere, but its v_prob (0.5) is under 0.52: gated off
    return gt_a, gt_v, audio, visual


def test_the_coleaf_protocol_gates_by_modality_probabilities_with_its_thresholds():
    gt_a, gt_v, audio, visual = _one_video()
    out = _Out(video_prob=[[0.9, 0.9]], a_prob=[[0.6, 0.1]], v_prob=[[0.53, 0.5]], audio_prob=audio, visual_prob=visual)
    m = score_outputs(out, gt_a, gt_v, EvalConfig(protocol="coleaf"))
    # audio: pred {0, 1} = truth: F1 1. visual: pred {1, 2, 3} vs truth {1, 2}: TP 2, FP 1: F1 4/5.
    # audio-visual: pred {1} vs truth {1}: 1. event_av pools audio and visual counts: TP 4, FP 1, FN 0: 8/9.
    seg = m["segment"]
    assert seg["audio"] == pytest.approx(100.0) and seg["visual"] == pytest.approx(80.0)
    assert seg["audio_visual"] == pytest.approx(100.0) and seg["event_av"] == pytest.approx(800 / 9)
    assert seg["type_av"] == pytest.approx((100 + 80 + 100) / 3)
    # events: audio run [0,1] matches; visual run [1,3] vs [1,2]: IoU 2/3 >= 0.5, one TP: F1 1
    assert m["event"]["visual"] == pytest.approx(100.0)
    # the benchmark protocol at 0.5 sees other predictions: no audio segment reaches 0.5 -> audio F1 0
    bench = score_outputs(out, gt_a, gt_v, EvalConfig())
    assert bench["segment"]["audio"] == pytest.approx(0.0)


def test_audible_only_and_visible_only_metrics():
    gt_a, gt_v, audio, visual = _one_video()
    out = _Out(video_prob=[[0.9, 0.9]], a_prob=[[0.6, 0.1]], v_prob=[[0.53, 0.5]], audio_prob=audio, visual_prob=visual)
    only = score_outputs(out, gt_a, gt_v, EvalConfig(protocol="coleaf"))["modality_only"]["segment"]
    # audible-only: pred A & ~V = {0}, truth GA & ~GV = {0}: 1. visible-only: pred {2, 3}, truth {2}: TP 1, FP 1: 2/3.
    # audio-visual as usual (1); event_av pools: TP 2, FP 1: 4/5.
    assert only["audio"] == pytest.approx(100.0) and only["visual"] == pytest.approx(200 / 3)
    assert only["audio_visual"] == pytest.approx(100.0) and only["event_av"] == pytest.approx(80.0)


def test_selection_by_type_av_or_by_coleafs_average():
    level = {"audio": 10.0, "visual": 20.0, "audio_visual": 30.0, "type_av": 20.0, "event_av": 40.0}
    other = {k: v + 1.0 for k, v in level.items()}
    metrics = {"segment": level, "event": other, "modality_only": {"segment": other, "event": other}}
    assert selection_score(metrics, "type_av") == 20.0
    assert selection_score(metrics, "average") == pytest.approx((120 + 125) / 10)
    assert selection_score({**metrics, "protocol": "coleaf"}, "average") == pytest.approx(125 / 5)


# --- ecma import-checkpoint ---------------------------------------------------------------------------------

def _import_config(tmp_path, cfg):
    path = tmp_path / "coleaf.yaml"
    path.write_text(yaml.safe_dump({"model": {
        "audio_dim": cfg.audio_dim, "visual_dim": cfg.visual_dim, "visual_frames_per_segment": cfg.visual_frames_per_segment,
        "visual_3d_dim": cfg.visual_3d_dim, "num_classes": cfg.num_classes, "d_model": cfg.d_model,
        "num_layers": cfg.num_layers, "num_heads": cfg.num_heads, "d_ff": cfg.d_ff}}))
    return path


def test_import_checkpoint_writes_a_checkpoint_predict_accepts(tmp_path):
    cfg = small_config(num_classes=25)
    theirs = reference_state_dict(cfg)
    torch.save({"model": theirs, "epoch": 7}, tmp_path / "ref.pt")
    rc = main(["import-checkpoint", "--format", "coleaf", str(tmp_path / "ref.pt"), "--output", str(tmp_path / "model.pt"),
               "--config", str(_import_config(tmp_path, cfg)), "--quiet"])
    assert rc == 0
    model, loaded_cfg, payload = load_model(tmp_path / "model.pt")
    assert isinstance(model, CoLeaFNet) and loaded_cfg.model.backbone == "coleaf" and len(payload["classes"]) == 25
    direct = CoLeaFNet(cfg)
    direct.load_state_dict(import_coleaf_state_dict(theirs, cfg))
    g = torch.Generator().manual_seed(1)
    a, v, v3 = torch.randn(2, 4, 6, generator=g), torch.randn(2, 4 * 3, 5, generator=g), torch.randn(2, 4, 4, generator=g)
    assert torch.equal(model(a, v, v3).segment_prob, direct.eval()(a, v, v3).segment_prob)


def test_import_checkpoint_names_a_parameter_that_does_not_fit_and_exits_2(tmp_path, capsys):
    cfg = small_config(num_classes=25)
    wrong = reference_state_dict(cfg)
    wrong["fc_prob.weight"] = torch.zeros(25, cfg.d_model + 1)
    torch.save(wrong, tmp_path / "ref.pt")
    rc = main(["import-checkpoint", "--format", "coleaf", str(tmp_path / "ref.pt"), "--output", str(tmp_path / "model.pt"),
               "--config", str(_import_config(tmp_path, cfg)), "--quiet"])
    assert rc == 2 and not (tmp_path / "model.pt").exists()
    err = capsys.readouterr().err
    assert "'fc_prob.weight' has shape (25, 9)" in err and err.count("\n") == 1


def test_evaluate_files_under_the_coleaf_protocol(tmp_path):
    from ecma.data.classes import LLP_CLASSES
    from ecma.evaluation.evaluate import evaluate_files
    from ecma.evaluation.predictions import Predictions, write_predictions

    gt_a, gt_v, audio, visual = _one_video()
    pad = lambda x, fill=0.0: np.concatenate([x, np.full(x.shape[:-1] + (23,), fill)], axis=-1)  # noqa: E731  25 classes
    preds = Predictions(["v1"], list(LLP_CLASSES), pad(np.array([[0.9, 0.9]])), pad(audio), pad(visual),
                        a_prob=pad(np.array([[0.6, 0.1]])), v_prob=pad(np.array([[0.53, 0.5]])))
    write_predictions(tmp_path / "p.h5", preds)
    (tmp_path / "split.csv").write_text("filename\tevent_labels\nv1\t" + LLP_CLASSES[0] + "\n")
    (tmp_path / "a.csv").write_text(f"filename\tonset\toffset\tevent_labels\nv1\t0\t2\t{LLP_CLASSES[0]}\n")
    (tmp_path / "v.csv").write_text(f"filename\tonset\toffset\tevent_labels\nv1\t1\t3\t{LLP_CLASSES[0]}\n")
    r = evaluate_files(tmp_path / "p.h5", tmp_path / "split.csv", tmp_path / "a.csv", tmp_path / "v.csv",
                       eval_config=EvalConfig(protocol="coleaf"))
    assert r["protocol"] == "coleaf" and r["segment"]["visual"] == pytest.approx(80.0)
    assert r["modality_only"]["segment"]["visual"] == pytest.approx(200 / 3)
    assert r["thresholds"] == {"audio": 0.52, "visual": 0.52, "segment": 0.25}


def test_the_papers_table_3_rows_follow_the_coleaf_variants():
    from ecma.evaluation.paper import TABLE3_LLP, paper_rows

    assert list(TABLE3_LLP) == ["coleaf", "no_cma", "no_ema", "ecma"]
    assert set(paper_rows("llp_valor", ["ecma", "han"])) == {"ecma"} and paper_rows("demo", ["ecma"]) == {}
    assert list(paper_rows("llp", ["ecma", "coleaf"])) == ["coleaf", "ecma"]  # Table 3's order


def _markdown_tables(text: str) -> dict[str, list[list[str]]]:
    """'## Table N' -> its rows' cells (header and rule left out)."""
    tables, current = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            current = tables.setdefault(line[3:].split(":")[0], [])
        elif line.startswith("|") and current is not None and not line.startswith("|---"):
            current.append([c.strip() for c in line.strip("|").split("|")])
    return {k: rows[1:] for k, rows in tables.items()}


def test_the_papers_figures_are_its_tables_as_printed():
    """paper.py against the transcription of the paper's tables (../shared/paper/e-cmanet-tables.md)."""
    from conftest import REPO
    from ecma.evaluation.paper import METRICS, TABLE1_LLP_ECMANET, TABLE2_UNAV100_AV, TABLE3_LLP

    source = REPO.parent / "shared" / "paper" / "e-cmanet-tables.md"
    if not source.is_file():
        pytest.skip(f"{source} not found (the paper's tables as printed)")
    tables = _markdown_tables(source.read_text())
    table3 = {(level, variant.split(" ")[0]): [float(x) for x in cells]
              for level, variant, *cells in tables["Table 3"]}
    assert {(lv, v): [TABLE3_LLP[v][lv][m] for m in METRICS] for v in TABLE3_LLP for lv in ("segment", "event")} == table3
    ecmanet = next([float(x) for x in cells] for method, _venue, *cells in tables["Table 1"] if method == "E-CMANet")
    assert [TABLE1_LLP_ECMANET[lv][m] for lv in ("segment", "event") for m in METRICS] == ecmanet
    assert {m: [r["segment"], r["event"]] for m, r in TABLE2_UNAV100_AV.items()} == {
        method: [float(seg), float(evt)] for method, seg, evt in tables["Table 2"]}


def test_a_variant_must_be_one_of_the_configured_backbone():
    from ecma.config import workflow_config_from_dict
    from ecma.errors import EcmaError

    with pytest.raises(EcmaError, match="train.variant han_ecma is a variant of the han backbone but model.backbone is coleaf"):
        config_from_dict({"train": {"variant": "han_ecma"}})
    wf = workflow_config_from_dict({"datasets": {"d": {"demo": {"n_train": 4}}}, "variants": ["ecma", "han"]})
    assert wf.for_dataset("d", "han").model.backbone == "han" and wf.for_dataset("d", "ecma").model.backbone == "coleaf"


def test_readme_quotes_the_papers_targets_from_paper_py():
    """README's LLP and UnAV-100 sections give the paper's targets: the same figures as paper.py."""
    from conftest import REPO
    from ecma.evaluation.paper import METRICS, TABLE1_LLP_ECMANET, TABLE2_UNAV100_AV

    readme = " ".join((REPO / "README.md").read_text().split())  # line breaks as spaces
    llp = readme[readme.index("## Running on LLP"):readme.index("### Trusting the numbers")]
    for level in ("segment", "event"):
        assert f"| {level} | " + " | ".join(f"{TABLE1_LLP_ECMANET[level][m]:.1f}" for m in METRICS) + " |" in llp
    unav = readme[readme.index("## UnAV-100"):readme.index("## On a SLURM cluster")]
    e, c = TABLE2_UNAV100_AV["E-CMANet"], TABLE2_UNAV100_AV["CoLeaF"]
    assert (f"AV F1 {e['segment']:.1f} at segment level and {e['event']:.1f} at event level "
            f"(CoLeaF: {c['segment']:.1f} and {c['event']:.1f})") in unav
