"""A third backbone registered entirely from this file, with no edit to any file of the package: per-segment
linear heads with MMIL pooling, a config section of its own and two variants. It trains and predicts through
the CLI, and shows up in `ecma train --help`'s variants, in the generated schema, in config checks and in the
ablation table, all read from the registry (ecma.registry)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

import pytest
import torch
import yaml
from torch import nn

from ecma import registry
from ecma.config import bounded
from ecma.models.contracts import Backbone, Batch, ExtraLoss, ModelOutput, finish_step
from ecma.models.han.losses import avvp_loss
from ecma.models.han.network import MMILHead
from synthetic import make_planted_data


@dataclass
class LinearSettings:
    """The linear backbone's own settings (section ``linear``)."""

    hidden: int = bounded(0, ge=0)  # a hidden layer of this width before the heads; 0: none
    lr_scale: float = bounded(1.0, gt=0.0)


class LinearNet(nn.Module):
    """Each segment's audio and visual features projected to d_model, then HAN's MMIL head (no attention)."""

    def __init__(self, cfg):
        super().__init__()
        m, own = cfg.model, cfg.linear
        self.k = m.visual_frames_per_segment

        def proj(d_in: int) -> nn.Module:
            if own.hidden:
                return nn.Sequential(nn.Linear(d_in, own.hidden), nn.ReLU(), nn.Linear(own.hidden, m.d_model))
            return nn.Linear(d_in, m.d_model)

        self.audio, self.visual = proj(m.audio_dim), proj(m.visual_dim)
        self.head = MMILHead(m.d_model, m.num_classes)

    def forward(self, audio, visual, visual_3d=None, mask=None) -> ModelOutput:
        b, n, d = visual.shape
        a = self.audio(audio)
        v = self.visual(visual.view(b, n // self.k, self.k, d).mean(2))
        video_prob, a_prob, v_prob, segment_prob = self.head(a, v, mask)
        return ModelOutput(video_prob.clamp(0, 1), a_prob.clamp(0, 1), v_prob.clamp(0, 1), segment_prob, a, v, mask)


class LinearBackbone(Backbone):
    name = "linear"
    loss_terms = ("avvp",)

    def __init__(self, cfg, device):
        self.cfg, self.net = cfg, LinearNet(cfg).to(device)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=cfg.train.lr * cfg.linear.lr_scale)

    @classmethod
    def network(cls, cfg) -> nn.Module:
        return LinearNet(cfg)

    @classmethod
    def build(cls, cfg, *, steps_per_epoch: int, device: torch.device, precision: Optional[torch.dtype]):
        return cls(cfg, device)

    def train_step(self, batch: Batch, *, epoch: int, step: int, extra_loss: Optional[ExtraLoss] = None):
        out = self.net(batch.audio, batch.visual, batch.visual_3d, batch.mask)
        avvp = avvp_loss(out, batch.labels)
        total, terms = finish_step(avvp, {"avvp": avvp}, extra_loss(out) if extra_loss else None)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        return terms

    def end_epoch(self) -> None:
        pass

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def training_state(self) -> dict:
        return {"optimizer": self.optimizer.state_dict()}

    def load_training_state(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])


SPEC = registry.BackboneSpec(
    name="linear",
    backbone=f"{__name__}:LinearBackbone",
    variants=(
        registry.Variant("linear", "linear", False, False, "per-segment linear heads alone", "linear heads alone"),
        registry.Variant("linear_ecma", "linear", True, True, "per-segment linear heads with E-CMA",
                         "linear heads + E-CMA (teacher + CMA)"),
    ),
    section=("linear", LinearSettings),
)


@pytest.fixture
def linear_backbone():
    registry.register_backbone(SPEC)
    try:
        yield SPEC
    finally:
        registry.unregister_backbone("linear")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return make_planted_data(tmp_path_factory.mktemp("plugin") / "data", n_train=48, n_val=16, n_test=16)


def test_a_registered_backbone_is_everywhere_the_built_in_ones_are(linear_backbone, planted, tmp_path, capsys):
    from ecma.cli import build_parser, main
    from ecma.config import config_class, config_from_dict
    from ecma.config.schema import workflow_schema
    from ecma.evaluation.predictions import read_predictions
    from ecma.report.ablation import ablation_outputs

    # the CLI's choices
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "linear_ecma" in help_text and "han_ecma" in help_text
    # the config: its section, its names, its bounds
    assert config_from_dict({}).linear.hidden == 0 and "linear" in [f for f in config_class().__dataclass_fields__]
    with pytest.raises(Exception, match=r"linear\.hidden must be >= 0, got -1"):
        config_from_dict({"linear": {"hidden": -1}})
    cfg = config_from_dict({"model": {"backbone": "linear"}, "train": {"variant": "linear_ecma"}})
    assert cfg.model.backbone == "linear"
    # the schema
    schema = workflow_schema()
    assert "linear_ecma" in schema["properties"]["variants"]["items"]["enum"]
    assert schema["$defs"]["linear"]["properties"]["hidden"]["minimum"] == 0
    assert "linear" in schema["$defs"]["model"]["properties"]["backbone"]["enum"]

    # it trains and predicts through the CLI, its own section included
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"audio_dim": planted.audio_dim, "visual_dim": planted.visual_dim, "d_model": 16},
        "train": {"epochs": 2, "batch_size": 16, "lr": 0.05, "threads": 1},
        "linear": {"hidden": 8},
    }))
    out = tmp_path / "model"
    assert main(["train", "--config", str(config), "--variant", "linear_ecma", "--features", *map(str, planted.shards),
                 "--output-dir", str(out), "--train", str(planted.train_csv), "--val", str(planted.val_csv),
                 "--eval-audio", str(planted.eval_audio_csv), "--eval-visual", str(planted.eval_visual_csv),
                 "--quiet"]) == 0
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 2 and history[1]["loss_pseudo"] >= 0.0 and "loss_avvp" in history[0]
    preds, metrics = tmp_path / "test.h5", tmp_path / "metrics.json"
    assert main(["predict", "--checkpoint", str(out / "model.pt"), "--features", *map(str, planted.shards),
                 "--split", str(planted.test_csv), "--output", str(preds), "--quiet"]) == 0
    assert read_predictions(preds).audio_prob.shape == (16, 10, 25)
    assert main(["evaluate", "--predictions", str(preds), "--split", str(planted.test_csv), "--eval-audio",
                 str(planted.eval_audio_csv), "--eval-visual", str(planted.eval_visual_csv), "--output",
                 str(metrics), "--quiet"]) == 0
    scored = json.loads(metrics.read_text())
    assert scored["provenance"]["training_config"]["linear"]["hidden"] == 8  # its section travels with the model

    # and the ablation names it
    md, page, table = ablation_outputs({"linear_ecma": [scored]})
    assert "linear_ecma" in md and table["variants"]["linear_ecma"]["description"] == "linear heads + E-CMA (teacher + CMA)"
    assert "linear heads + E-CMA (teacher + CMA)" in page


def test_a_name_taken_twice_is_refused_and_unregistering_restores_the_config(linear_backbone):
    from ecma.config import config_class, section_classes
    from ecma.errors import EcmaError

    with pytest.raises(EcmaError, match="backbone 'linear' is registered already"):
        registry.register_backbone(SPEC)
    clash = registry.BackboneSpec("other", f"{__name__}:LinearBackbone",
                                  (registry.Variant("ecma", "other", True, True, "", ""),))
    with pytest.raises(EcmaError, match="variant 'ecma' of backbone 'other' is registered already"):
        registry.register_backbone(clash)
    assert "linear" in section_classes()
    registry.unregister_backbone("linear")
    assert "linear" not in section_classes() and "linear" not in config_class().__dataclass_fields__
    registry.register_backbone(SPEC)  # for the fixture's own clean-up
