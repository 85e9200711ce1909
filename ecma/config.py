"""All settings of the package, typed, with their defaults: the one place configuration lives.

A YAML file (or the workflow's ``config.yaml``) holds sections named like the fields of
:class:`EcmaConfig` (``model``, ``loss``, ``coleaf``, ``pseudo``, ``train``, ``eval``, ``extract``); sections and keys
left out take the defaults below, other top-level keys (the workflow's ``datasets``, ...) are ignored, and
an unknown key or a value of the wrong type is an :class:`~ecma.errors.EcmaError` naming it.
"""

from __future__ import annotations

import dataclasses
import operator
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Sequence, Union

import yaml

from ecma.errors import EcmaError

# Ablation variants, per backbone. Table 3 of the E-CMANet paper, in its order, on the CoLeaF backbone:
# CoLeaF (CoLeaF-dagger alone), w/o CMA, w/o EMA, E-CMANet; the same four on the HAN backbone. The switches
# each variant turns on are in ecma.training.variants.
COLEAF_VARIANTS = ("coleaf", "no_cma", "no_ema", "ecma")
HAN_VARIANTS = ("han", "han_no_cma", "han_no_ema", "han_ecma")
VARIANTS = COLEAF_VARIANTS + HAN_VARIANTS
DEFAULT_VARIANTS = COLEAF_VARIANTS  # what the workflow trains and compares unless config.yaml names others
Variant = Literal["coleaf", "no_cma", "no_ema", "ecma", "han", "han_no_cma", "han_no_ema", "han_ecma"]


def bounded(default: Any, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
            lt: float | None = None, runtime: bool = False) -> Any:
    """A dataclass field with its bounds: the one place a setting's range is stated (checked on load).
    ``runtime``: see :func:`runtime_setting`."""
    return field(default=default, metadata={"bounds": {"ge": ge, "gt": gt, "le": le, "lt": lt}, "runtime": runtime})


def runtime_setting(default: Any) -> Any:
    """A setting that decides where and how fast a job runs (device, threads, workers, inference batch sizes),
    not what it computes: changing it reruns no job (:func:`split_runtime`). Device and batch sizes can move
    results at the last bits of float rounding, never more (docs/method.md, "Runtime settings")."""
    return field(default=default, metadata={"runtime": True})


# A device name the package accepts; whether this machine has it is checked where a job starts.
DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?"


@dataclass
class ModelConfig:
    """The backbone network (CoLeaF's or HAN's); the defaults are CoLeaF's (github faeghehsardari/coleaf,
    nets/net_audiovisual.py and option.py), the HAN backbone shares the sizes above its own section."""

    backbone: Literal["coleaf", "han"] = "coleaf"  # coleaf: the paper's backbone (E-CMANet builds on CoLeaF)
    audio_dim: int = bounded(768, ge=1)  # Da: CLAP HTSAT-tiny embeddings
    visual_dim: int = bounded(768, ge=1)  # Dv: CLIP ViT-L/14 embeddings (2048 for HAN's ResNet-152 frames)
    # HAN's own visual input stage, for the features HAN published: the visual stream has this many frames
    # per segment (8 for ResNet-152), each projected, then averaged per segment; 1: one row per segment.
    visual_frames_per_segment: int = bounded(1, ge=1)
    # D3 of a second, per-segment visual stream (512 for HAN's R(2+1)D), projected and fused with the
    # frames by a Linear over the concatenation, as HAN does; 0: no such stream.
    visual_3d_dim: int = bounded(0, ge=0)
    num_classes: int = bounded(25, ge=1)
    d_model: int = bounded(512, ge=1)  # CoLeaF: every Linear of MMIL_Net is 512 wide
    num_layers: int = bounded(1, ge=1)  # CoLeaF: option.py --num_layers 1
    num_heads: int = bounded(1, ge=1)  # CoLeaF: Encoder(..., nhead=1)
    d_ff: int = bounded(512, ge=1)  # CoLeaF: Encoder(..., dim_feedforward=512)
    dropout: float = bounded(0.1, ge=0.0, lt=1.0)  # CoLeaF: att_dropout=0.1 (attention, residuals, FFN)
    # The CoLeaF backbone only (HAN ignores these).
    classifier_dropout: float = bounded(0.5, ge=0.0, lt=1.0)  # cls_dropout=0.5: on the visual embedding before the heads
    interaction_dropout: float = bounded(0.2, ge=0.0, lt=1.0)  # v2a / a2v: Linear, Dropout(0.2), LeakyReLU(0.2)
    leaky_slope: float = bounded(0.2, ge=0.0)  # classifier1, v2a, a2v: LeakyReLU(0.2)
    evidence_temperature: float = bounded(0.8, gt=0.0)  # exp_evidence(y, temp=0.8)
    evidence_clamp: float = bounded(10.0, gt=0.0)  # exp_evidence: torch.clamp(y, -10, 10)
    # training pass: x = 0.8 * encoder(with cross-attention) + 0.2 * encoder(without) (MMIL_Net.forward: ratio = 0.80)
    train_cross_attention_ratio: float = bounded(0.8, ge=0.0, le=1.0)
    # inference: P = 0.7 * P(with cross-attention) + 0.3 * P(without) (option.py --fuse_ratio 0.7, main.py eval())
    fuse_ratio: float = bounded(0.7, ge=0.0, le=1.0)


@dataclass
class LossConfig:
    """E-CMA's weights, L = L_backbone + w_pseudo L_pseudo + w_cma L_CMA, and the HAN backbone's L_AVVP
    (weight w_avvp); the CoLeaF backbone's own terms are in section ``coleaf``."""

    w_avvp: float = bounded(1.0, ge=0.0)
    w_pseudo: float = bounded(1.0, ge=0.0)
    w_cma: float = bounded(1.0, ge=0.0)
    # Label smoothing of the modality-level targets: target = (1 - eps) * y + eps / 2.
    # The HAN recipe smooths the visual target to 0.9 y + 0.05 (eps = 0.1) and leaves audio as y.
    audio_smoothing: float = bounded(0.0, ge=0.0, le=1.0)
    visual_smoothing: float = bounded(0.1, ge=0.0, le=1.0)
    # Omega = {(t, c): P^a > tau_a, P^v > tau_v, y_c = 1}
    cma_tau_a: float = bounded(0.5, ge=0.0, le=1.0)
    cma_tau_v: float = bounded(0.5, ge=0.0, le=1.0)


@dataclass
class CoLeaFLossSettings:
    """The CoLeaF backbone's losses, label denoising and auxiliary networks (section ``coleaf``).

    Sources: CoLeaF's public code (github faeghehsardari/coleaf, commit a36a153): option.py (command-line
    defaults), main.py (the training step, where many weights are literals), utils/eval_metrics.py (the
    asymmetric loss). The modality-target smoothing is ``loss.audio_smoothing``/``visual_smoothing``.
    """

    clamp: float = bounded(1e-7, gt=0.0, lt=0.5)  # option.py --clamp: probabilities clamped before BCE
    w_audio: float = bounded(2.0, ge=0.0)  # option.py --audio_weight
    w_visual: float = bounded(1.0, ge=0.0)  # option.py --visual_weight
    w_video: float = bounded(2.0, ge=0.0)  # option.py --video_weight
    w_nce: float = bounded(1.0, ge=0.0)  # option.py --nce_weight
    w_mutual: float = bounded(1.0, ge=0.0)  # option.py --mutual-weight
    w_cooccurrence_audio: float = bounded(1e-4, ge=0.0)  # main.py train(): 0.0001 * loss_cc_a
    w_cooccurrence_visual: float = bounded(1e-4, ge=0.0)  # main.py train(): 0.0001 * loss_cc_v
    w_aux_nce_audio: float = bounded(0.009, ge=0.0)  # main.py train(): 0.009 * loss_a_4
    w_aux_nce_visual: float = bounded(1.0, ge=0.0)  # main.py train(): 1 * loss_v_4
    collaborative_start_epoch: int = bounded(1, ge=0)  # main.py: `if epoch > 1` (1-based): 0-based epoch >= 1
    nce_temperature: float = bounded(0.2, gt=0.0)  # main.py: criterion_nce(0.2, ...) (option.py --temperature)
    nce_smoothing: float = bounded(0.1, ge=0.0, lt=1.0)  # main.py: criterion_nce(0.2, 0.1, ...) (--nce_smooth)
    mutual_lambda: float = bounded(1.0, ge=0.0)  # MutualLearningLoss(lamb=1.0)
    mutual_uncertainty_floor: float = bounded(0.9, ge=0.0, le=1.0)  # mutual_loss.py: clamp(global_uct, min=0.9)
    denoise: bool = True  # JoMoLD's label denoising, as CoLeaF runs it
    # 'han': the ratios CoLeaF ships for HAN's features (package data); or a .json/.npz path; null: no denoising
    noise_ratios: Optional[str] = "han"
    denoise_warmup_epochs: float = bounded(0.9, ge=0.0)  # option.py --warm_up_epoch 0.9
    aux_warmup_epochs: int = bounded(3, ge=0)  # option.py --second_warm_up_epoch 3 (`epoch > 3`, 1-based)
    aux_target_threshold_audio: float = bounded(0.5, ge=0.0, le=1.0)  # main.py: (a_prob >= 0.5).float() * Pa
    aux_target_threshold_visual: float = bounded(0.6, ge=0.0, le=1.0)  # main.py: (v_prob >= 0.6).float() * Pv
    confident_high_audio: float = bounded(0.8, ge=0.0, le=1.0)  # main.py: s_a_prob >= 0.8
    confident_low_audio: float = bounded(0.1, ge=0.0, le=1.0)  # main.py: s_a_prob <= 0.1
    confident_high_visual: float = bounded(0.6, ge=0.0, le=1.0)  # main.py: s_v_prob >= 0.6
    confident_low_visual: float = bounded(0.4, ge=0.0, le=1.0)  # main.py: s_v_prob <= 0.4
    modality_only_threshold: float = bounded(0.5, ge=0.0, le=1.0)  # main.py: s_a_prob >= 0.5, s_v_prob >= 0.5
    # Auxiliary losses: w_label ASL(p, P) + w_tokens ASL(p_tokens, P) + w_main ASL(p, P_main); _warmup weights
    # (and no w_main term) before aux_warmup_epochs.
    aux_audio_w_label_warmup: float = bounded(1.0, ge=0.0)  # main.py: 1 * criterion_bce_2(s_a_prob, Pa)
    aux_audio_w_tokens_warmup: float = bounded(1.2, ge=0.0)  # main.py: 1.2 * criterion_bce_2(cls_a, Pa)
    aux_audio_w_label: float = bounded(0.5, ge=0.0)  # main.py: 0.5 * criterion_bce_2(s_a_prob, Pa)
    aux_audio_w_tokens: float = bounded(0.001, ge=0.0)  # main.py: 0.001 * criterion_bce_2(cls_a, Pa)
    aux_audio_w_main: float = bounded(0.5, ge=0.0)  # main.py: 0.5 * criterion_bce_2(s_a_prob, a_prob)
    aux_visual_w_label_warmup: float = bounded(1.0, ge=0.0)  # main.py: 1 * criterion_bce_2(s_v_prob, Pv)
    aux_visual_w_tokens_warmup: float = bounded(1.0, ge=0.0)  # main.py: 1 * criterion_bce_2(cls_v, Pv)
    aux_visual_w_label: float = bounded(0.5, ge=0.0)  # main.py: 0.5 * criterion_bce_2(s_v_prob, Pv)
    aux_visual_w_tokens: float = bounded(0.0, ge=0.0)  # main.py: 0.000 * criterion_bce_2(cls_v, Pv)
    aux_visual_w_main: float = bounded(0.5, ge=0.0)  # main.py: 0.5 * criterion_bce_2(s_v_prob, v_prob)
    asl_gamma_pos: float = bounded(1.0, ge=0.0)  # utils/eval_metrics.py AsymmetricLoss(gamma_pos=1)
    asl_gamma_neg: float = bounded(1.0, ge=0.0)  # AsymmetricLoss(gamma_neg=1)
    asl_clip: float = bounded(0.05, ge=0.0, lt=1.0)  # AsymmetricLoss(clip=0.05)
    asl_eps: float = bounded(1e-8, gt=0.0)  # AsymmetricLoss(eps=1e-8)


@dataclass
class PseudoConfig:
    """Segment-level pseudo masks written by the EMA teacher."""

    rule: Literal["adaptive", "topk"] = "adaptive"
    gamma: float = bounded(1.0, gt=0.0)  # adaptive: tau_c = gamma * mean_t P~_(t,c)
    k: int = bounded(3, ge=1)  # topk: the k segments with the highest P~_(t,c)
    # Masks only on classes in the video's weak label (the project's reading of the paper: a mask on an
    # absent class would teach a false event).
    restrict_to_labels: bool = True
    update_every_steps: Optional[int] = bounded(None, ge=1)  # None: regenerate at the start of every epoch
    warmup_epochs: int = bounded(1, ge=0)  # epochs before L_pseudo starts (the teacher must learn something first)


@dataclass
class TrainConfig:
    """Optimisation; the defaults are CoLeaF's (option.py), which E-CMANet keeps. The CoLeaF backbone's
    auxiliary networks get their own Adam and StepLR with the same settings, as CoLeaF trains them."""

    variant: Variant = "ecma"  # its backbone must be model.backbone (ecma.training.variants)
    epochs: int = bounded(10, ge=1)  # CoLeaF: option.py --epochs 10
    batch_size: int = bounded(128, ge=1)  # CoLeaF: option.py --batch_size 128
    lr: float = bounded(5e-4, gt=0.0)  # CoLeaF: option.py --lr 5e-4 (Adam)
    weight_decay: float = bounded(0.0, ge=0.0)  # CoLeaF: option.py --weight_decay 0
    lr_step_epochs: int = bounded(6, ge=1)  # StepLR: lr *= lr_gamma every lr_step_epochs (CoLeaF: --lr_step_size 6)
    lr_gamma: float = bounded(0.25, gt=0.0, le=1.0)  # CoLeaF: option.py --lr_gamma 0.25
    ema_alpha: float = bounded(0.999, ge=0.0, lt=1.0)
    # Mean Teacher's ramp: alpha_k = min(1 - 1/(k + 1), ema_alpha) at the k-th update (k from 0), so that
    # early masks do not come from a mostly random teacher; false: the constant ema_alpha.
    ema_ramp: bool = True
    grad_clip: Optional[float] = bounded(None, gt=0.0)  # CoLeaF does not clip; null: no clipping
    # model.pt is the epoch with the best validation segment Type@AV, segment AV F1 (audio_visual: AV-only
    # datasets, UnAV-100), or (average) with the best mean of
    # all ten metrics (segment and event level, audio, visual, audio-visual, Type@AV, Event@AV), as CoLeaF selects.
    select: Literal["type_av", "audio_visual", "average"] = "type_av"
    seed: int = bounded(0, ge=0)  # the workflow sets it per job from `seeds`
    # The workflow trains each variant once per seed (one job each) and reports mean ± std over them.
    seeds: list[int] = field(default_factory=lambda: [0])
    threads: Optional[int] = bounded(None, ge=1, runtime=True)  # torch CPU threads; None keeps torch's default
    device: str = runtime_setting("auto")  # auto | cpu | cuda | cuda:N
    amp: bool = True  # bf16 autocast on CUDA and on CPUs with native bf16 (AVX512-BF16, AMX); false: float32
    missing_videos: Literal["error", "skip"] = "error"
    # Variable-length videos (UnAV-100); equal-length data (LLP) ignores both. Batches are sorted by length
    # within chunks of this many batches, then the batches shuffled: less padding (0: no bucketing).
    bucket_batches: int = bounded(32, ge=0)
    # Videos longer than this train on a random window of this many segments (per epoch); validation and
    # prediction always see whole videos. 0: no cap (cutting a weakly labelled video can cut out its event).
    max_segments: int = bounded(0, ge=0)


@dataclass
class EvalConfig:
    """Binarisation thresholds (the benchmark uses 0.5 for both) and the evaluation protocol."""

    # benchmark: HAN's evaluation (video-level gating, the thresholds above), comparable across papers;
    # coleaf: CoLeaF's (main.py eval()): modality-level gating and its own thresholds below.
    protocol: Literal["benchmark", "coleaf"] = "benchmark"
    video_threshold: float = bounded(0.5, ge=0.0, le=1.0)
    segment_threshold: float = bounded(0.5, ge=0.0, le=1.0)
    coleaf_audio_threshold: float = bounded(0.52, ge=0.0, le=1.0)  # main.py eval(): oa = a_prob >= 0.52
    coleaf_visual_threshold: float = bounded(0.52, ge=0.0, le=1.0)  # v_thres_list = np.full((1, 25), 0.52)
    coleaf_segment_threshold: float = bounded(0.25, ge=0.0, le=1.0)  # Pa = (frame_prob >= 0.25) * oa
    batch_size: int = bounded(256, ge=1, runtime=True)  # videos per inference pass (validation, prediction)


@dataclass
class ExtractConfig:
    """Feature extraction from raw video."""

    # native: ecma's own recipe, set by the settings below. valor: VALOR's published CLIP/CLAP features
    # (docs/method.md, "VALOR's features"): its recipe fixes the segments (10 per video, whatever its
    # length), the sampling and the L2 norms, computes and stores float32 (amp and dtype are the native
    # recipe's), and takes a fusion CLAP checkpoint (laion:630k-fusion-best.pt) and weights files.
    profile: Literal["native", "valor"] = "native"
    n_segments: Optional[int] = bounded(10, ge=1)  # None: the number of whole seconds of each video
    segment_seconds: float = bounded(1.0, gt=0.0, le=60.0)
    frames_per_segment: int = bounded(1, ge=1, le=64)  # 1: the frame at the segment's middle; K: K frames averaged
    visual_model: str = "ViT-L-14-quickgelu"
    visual_pretrained: Optional[str] = None  # an open_clip tag ('openai'; fetched), a local file, or None (random)
    audio_model: str = "HTSAT-tiny"
    audio_checkpoint: Optional[str] = None  # 'laion:<release>' (fetched), a local CLAP checkpoint, or None (random)
    audio_mode: Literal["clip", "segment"] = "clip"
    sample_rate: int = bounded(48000, ge=8000)
    normalize: bool = False  # L2-normalise the embeddings
    dtype: Literal["float16", "float32"] = "float16"
    batch_videos: int = bounded(8, ge=1, runtime=True)
    workers: int = bounded(2, ge=0, runtime=True)  # decoding processes (0: decode in the encoding process)
    device: str = runtime_setting("auto")  # auto | cpu | cuda | cuda:N
    amp: bool = True  # bf16 encoders where the hardware computes bf16 natively (CUDA, AVX512-BF16/AMX CPUs)
    seed: int = bounded(0, ge=0)  # random-init encoders are seeded so that features are reproducible


@dataclass
class EcmaConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    coleaf: CoLeaFLossSettings = field(default_factory=CoLeaFLossSettings)
    pseudo: PseudoConfig = field(default_factory=PseudoConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def split_runtime(self, sections: Sequence[str]) -> tuple[dict[str, dict], dict[str, dict]]:
        """The settings of ``sections`` in two parts: ({section: what decides the numbers}, {section: the
        runtime settings}); the workflow reruns a job when the first part changes, never for the second."""
        numeric: dict[str, dict] = {}
        runtime: dict[str, dict] = {}
        for name in sections:
            section = getattr(self, name)
            keys = runtime_keys(type(section))
            values = dataclasses.asdict(section)
            numeric[name] = {k: v for k, v in values.items() if k not in keys}
            runtime[name] = {k: v for k, v in values.items() if k in keys}
        return numeric, {k: v for k, v in runtime.items() if v}


def runtime_keys(cls: type) -> tuple[str, ...]:
    """The runtime settings of a section (:func:`runtime_setting`)."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("runtime"))


def merge_runtime(raw: dict, runtime: dict, source: str = "--runtime") -> dict:
    """``raw`` sections with ``runtime`` ({section: {key: value}}) put in; only runtime settings may be given."""
    if not isinstance(runtime, dict):
        raise EcmaError(f"{source}: expected a mapping of sections, got {type(runtime).__name__}")
    hints = typing.get_type_hints(EcmaConfig)
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for section, values in runtime.items():
        if section not in hints or not isinstance(values, dict):
            raise EcmaError(f"{source}: {section!r} is not a section with runtime settings")
        allowed = runtime_keys(hints[section])
        for key in values:
            if key not in allowed:
                raise EcmaError(f"{source}: {section}.{key} is not a runtime setting (runtime: "
                                f"{', '.join(f'{section}.{k}' for k in allowed) or 'none'})")
        out.setdefault(section, {}).update(values)
    return out


@dataclass
class DemoConfig:
    """Size and seed of the generated demo dataset (``ecma demo``)."""

    n_train: int = bounded(48, ge=1)
    n_val: int = bounded(16, ge=1)
    n_test: int = bounded(16, ge=1)
    seed: int = bounded(0, ge=0)
    n_parse: int = bounded(3, ge=0)  # test videos the demo parses into timeline pages (results/<name>/parsed/)
    # llp: mp4 videos and LLP's csvs, extracted; unav100: UnAV-100-shaped features and JSON, imported
    format: Literal["llp", "unav100"] = "llp"


FEATURE_FORMATS = ("valor", "han", "unav100")


@dataclass
class FeaturesConfig:
    """Published features a dataset is imported from (``source: features``)."""

    # valor: CLIP/ and CLAP/; han: vggish/, res152/, r2plus1d_18/; unav100: <id>_rgb/_flow/_vggish.npy in one folder
    format: Literal["valor", "han", "unav100"] = "valor"
    root: str = ""  # the folder holding the format's files (for valor and han: its sub-folders)


@dataclass
class DatasetConfig:
    """One dataset of the workflow's ``datasets:`` mapping.

    Paths are relative to the working directory the workflow runs in. A dataset with ``demo`` set is
    generated by ``ecma demo`` into ``results/<name>/data`` and its ``annotations``/``videos`` are ignored.
    A dataset with ``source: features`` has no videos: its shards are imported from published features.
    """

    # the folder of the LLP-format csv files below; for features.format unav100, UnAV-100's annotation JSON
    annotations: Optional[str] = None
    source: Literal["videos", "features"] = "videos"  # features: import published features, no videos
    videos: Optional[str] = None  # folder with the raw videos (<filename>.mp4 or <YouTube id>.mp4)
    features: Optional[FeaturesConfig] = None  # with source: features
    train_csv: str = "AVVP_train.csv"
    val_csv: str = "AVVP_val_pd.csv"
    test_csv: str = "AVVP_test_pd.csv"
    eval_audio_csv: str = "AVVP_eval_audio.csv"
    eval_visual_csv: str = "AVVP_eval_visual.csv"
    n_shards: int = bounded(1, ge=1, le=4096)  # videos go to shards by a stable hash of their filename
    # 'error': an annotation row without a video stops the workflow; 'skip': its videos are left out.
    missing_videos: Literal["error", "skip"] = "error"
    # A video listed in two splits (train and test, say) is leakage: it stops the workflow unless allowed.
    allow_split_overlap: bool = False
    # A real dataset refuses randomly initialised encoders (extract.visual_pretrained or audio_checkpoint
    # null): its features would mean nothing. The demo and tests say true.
    random_encoders: bool = False
    demo: Optional[DemoConfig] = None
    # Per-dataset overrides of the top-level sections, e.g. {extract: {visual_model: ViT-B-32}}.
    overrides: Optional[dict] = None

    @property
    def imports_features(self) -> bool:
        """Its shards come from `ecma import` (published features, or the UnAV-format demo), not from videos."""
        return self.source == "features" or (self.demo is not None and self.demo.format == "unav100")

    @property
    def annotation_format(self) -> str:
        """unav100: UnAV-100's JSON (its features, or the UnAV-format demo); llp: LLP's csv files."""
        if self.demo is not None:
            return self.demo.format
        return "unav100" if self.source == "features" and self.features.format == "unav100" else "llp"


@dataclass
class ParseConfig:
    """The workflow's ``parse:`` target: new videos parsed into timelines by a trained model."""

    videos: Optional[str] = None  # folder of videos to parse into results/parse/
    checkpoint: Optional[str] = None  # a model.pt; or, instead:
    dataset: Optional[str] = None  # the trained model of this workflow dataset (main variant, first seed)


def _check_value(where: str, value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _check_value(where, value, inner[0])
    if origin is Literal:
        if value not in args:
            raise EcmaError(f"config: {where} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise EcmaError(f"config: {where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise EcmaError(f"config: {where} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EcmaError(f"config: {where} must be a number, got {value!r}")
        return float(value)
    if dataclasses.is_dataclass(tp):
        return _build(tp, where, value)
    if origin is list:
        if not isinstance(value, list):
            raise EcmaError(f"config: {where} must be a list, got {value!r}")
        return [_check_value(f"{where}[{i}]", v, args[0]) for i, v in enumerate(value)]
    if tp is dict:
        if not isinstance(value, dict):
            raise EcmaError(f"config: {where} must be a mapping, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise EcmaError(f"config: {where} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r}")


_BOUND_OPS = {"ge": (">=", operator.ge), "gt": (">", operator.gt), "le": ("<=", operator.le), "lt": ("<", operator.lt)}


def _check_bounds(where: str, value: Any, bounds: dict) -> None:
    if value is None:  # an Optional setting left unset
        return
    for key, limit in bounds.items():
        symbol, holds = _BOUND_OPS[key]
        if limit is not None and not holds(value, limit):
            raise EcmaError(f"config: {where} must be {symbol} {limit:g}, got {value!r}")


def field_bounds(cls: type) -> dict[str, dict]:
    """name -> {ge, gt, le, lt} of the dataclass's bounded fields (None where a side is open)."""
    return {f.name: f.metadata["bounds"] for f in dataclasses.fields(cls) if "bounds" in f.metadata}


def _build(cls: type, section: str, raw: Any) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise EcmaError(f"config: section {section!r} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise EcmaError(f"config: unknown key {section}.{unknown[0]} (known: {', '.join(sorted(names))})")
    values = {k: _check_value(f"{section}.{k}", v, hints[k]) for k, v in raw.items()}
    for name, bounds in field_bounds(cls).items():
        if name in values:
            _check_bounds(f"{section}.{name}", values[name], bounds)
    return cls(**values)


def _validate(cfg: EcmaConfig) -> None:
    """Checks across keys (each key's own range is its field's bounds)."""
    m = cfg.model
    from ecma.training.variants import VARIANT_TABLE  # the variants' switches live beside the trainer

    variant_backbone = VARIANT_TABLE[cfg.train.variant].backbone
    checks = [
        (m.d_model % m.num_heads == 0, "model.d_model must be divisible by model.num_heads"),
        (variant_backbone == m.backbone, f"train.variant {cfg.train.variant} is a variant of the {variant_backbone} "
                                         f"backbone but model.backbone is {m.backbone}"),
    ]
    seeds = cfg.train.seeds
    checks.append((bool(seeds) and len(set(seeds)) == len(seeds) and min(seeds) >= 0,
                   f"train.seeds must be distinct seeds >= 0, at least one, got {seeds!r}"))
    checks += valor_profile_checks(cfg.extract)
    for section in ("train", "extract"):
        device = getattr(cfg, section).device
        checks.append((re.fullmatch(DEVICE_PATTERN, device) is not None,
                       f"{section}.device must be auto, cpu, cuda or cuda:N, got {device!r}"))
    for ok, message in checks:
        if not ok:
            raise EcmaError(f"config: {message}")


# The settings VALOR's recipe fixes, with its values: a valor extraction refuses others rather than ignore them.
VALOR_FIXED = {"n_segments": 10, "segment_seconds": 1.0, "frames_per_segment": 1, "sample_rate": 48000,
               "audio_mode": "clip", "normalize": False}


def valor_profile_checks(extract: ExtractConfig) -> list[tuple[bool, str]]:
    """(ok, message) of each setting the valor profile fixes."""
    if extract.profile != "valor":
        return []
    return [(getattr(extract, key) == value,
             f"extract.{key} is {getattr(extract, key)!r}, but extract.profile valor fixes it to {value!r} "
             "(VALOR's recipe: 10 segments per video, each frame and the audio sampled as VALOR does)")
            for key, value in VALOR_FIXED.items()]


def config_from_dict(raw: dict | None, source: str = "config") -> EcmaConfig:
    """Build and validate a config from a mapping of sections; other top-level keys are ignored."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise EcmaError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    kwargs = {}
    for f in dataclasses.fields(EcmaConfig):
        cls = typing.get_type_hints(EcmaConfig)[f.name]
        try:
            kwargs[f.name] = _build(cls, f.name, raw.get(f.name))
        except EcmaError as e:
            raise EcmaError(f"{source}: {str(e).removeprefix('config: ')}") from None
    cfg = EcmaConfig(**kwargs)
    try:
        _validate(cfg)
    except EcmaError as e:
        raise EcmaError(f"{source}: {str(e).removeprefix('config: ')}") from None
    return cfg


def load_config(path: str | os.PathLike | None, overrides: dict | None = None) -> EcmaConfig:
    """Read a YAML config (None: all defaults), apply ``overrides`` ({section: {key: value}}), validate."""
    raw: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise EcmaError(f"{p}: config file not found")
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise EcmaError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(raw, dict):
            raise EcmaError(f"{p}: expected a mapping of sections at the top level")
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {})
        if isinstance(raw[section], dict):
            raw[section].update(values)
    return config_from_dict(raw, str(path) if path else "config")


@dataclass
class WorkflowConfig:
    """The workflow's ``config.yaml``: the package sections plus datasets and variants."""

    settings: EcmaConfig
    datasets: dict[str, DatasetConfig]
    variants: list[str]
    main_variant: str
    raw: dict
    parse: Optional[ParseConfig] = None

    def dataset(self, name: str) -> DatasetConfig:
        if name not in self.datasets:
            raise EcmaError(f"config: unknown dataset {name!r} (configured: {', '.join(self.datasets)})")
        return self.datasets[name]

    def for_dataset(self, name: str, variant: str | None = None, seed: int | None = None) -> EcmaConfig:
        """The package config for one dataset (its overrides applied) and, optionally, one variant and seed."""
        ds = self.dataset(name)
        merged = {k: dict(v) if isinstance(v, dict) else v for k, v in self.raw.items() if k in _SECTIONS}
        for section, values in (ds.overrides or {}).items():
            if section not in _SECTIONS:
                raise EcmaError(f"config: datasets.{name}.overrides.{section} is not a section ({', '.join(_SECTIONS)})")
            if not isinstance(values, dict):
                raise EcmaError(f"config: datasets.{name}.overrides.{section} must be a mapping")
            # the override's own keys, types and bounds, named by their full path
            _build(typing.get_type_hints(EcmaConfig)[section], f"datasets.{name}.overrides.{section}", values)
            merged.setdefault(section, {}).update(values)
        if variant is not None:  # a variant names its backbone too
            from ecma.training.variants import VARIANT_TABLE

            merged.setdefault("train", {})["variant"] = variant
            if variant in VARIANT_TABLE:
                merged.setdefault("model", {})["backbone"] = VARIANT_TABLE[variant].backbone
        if seed is not None:
            merged.setdefault("train", {})["seed"] = seed
        return config_from_dict(merged, f"config (dataset {name})")


_SECTIONS = tuple(f.name for f in dataclasses.fields(EcmaConfig))
_WORKFLOW_KEYS = ("datasets", "variants", "main_variant", "parse")


def _check_merged(source: str, name: str, ds: DatasetConfig, merged: EcmaConfig) -> None:
    """What only a dataset's merged settings can show: the noise ratios' classes, AV-only selection."""
    if (merged.model.backbone == "coleaf" and merged.coleaf.denoise and merged.coleaf.noise_ratios == "han"
            and merged.model.num_classes != 25):
        raise EcmaError(f"{source}: datasets.{name}: coleaf.noise_ratios 'han' holds CoLeaF's ratios for LLP's 25 "
                        f"classes, but model.num_classes is {merged.model.num_classes}: name a ratios file or set "
                        "its overrides coleaf.noise_ratios: null")
    if ds.annotation_format == "unav100" and merged.train.select != "audio_visual":
        raise EcmaError(f"{source}: datasets.{name} annotates audio-visual events only (UnAV-100): set its "
                        f"overrides train.select: audio_visual (Type@AV would score unannotated sounds as errors)")


def workflow_config_from_dict(raw: dict, source: str = "config") -> WorkflowConfig:
    """Validate a whole workflow config: unknown top-level keys, datasets, variants, and every dataset's merge."""
    if not isinstance(raw, dict):
        raise EcmaError(f"{source}: expected a mapping at the top level")
    unknown = sorted(set(raw) - set(_SECTIONS) - set(_WORKFLOW_KEYS))
    if unknown:
        raise EcmaError(f"{source}: unknown key {unknown[0]!r} (known: {', '.join(_SECTIONS + _WORKFLOW_KEYS)})")
    settings = config_from_dict(raw, source)
    datasets_raw = raw.get("datasets") or {}
    if not isinstance(datasets_raw, dict):
        raise EcmaError(f"{source}: datasets must be a mapping of dataset names")
    datasets = {}
    for name, ds in datasets_raw.items():
        try:
            datasets[name] = _build(DatasetConfig, f"datasets.{name}", ds)
        except EcmaError as e:
            raise EcmaError(f"{source}: {str(e).removeprefix('config: ')}") from None
        ds = datasets[name]
        if ds.source == "features":
            if ds.demo is not None or not ds.annotations or ds.features is None or not ds.features.root:
                raise EcmaError(f"{source}: datasets.{name} with source: features needs 'annotations' and "
                                "'features: {format: valor|han|unav100, root: DIR}' (and no 'demo')")
            if ds.features.format == "unav100" and not ds.annotations.lower().endswith(".json"):
                raise EcmaError(f"{source}: datasets.{name}.annotations must be UnAV-100's annotation JSON "
                                f"(features format unav100), got {ds.annotations!r}")
        elif ds.demo is None and not (ds.annotations and ds.videos):
            raise EcmaError(f"{source}: datasets.{name} needs 'annotations' and 'videos' folders (or 'demo')")
    variants = raw.get("variants", list(DEFAULT_VARIANTS))
    if not isinstance(variants, list) or not variants:
        raise EcmaError(f"{source}: variants must be a non-empty list of {', '.join(VARIANTS)}")
    for v in variants:
        if v not in VARIANTS:
            raise EcmaError(f"{source}: unknown variant {v!r} in variants (known: {', '.join(VARIANTS)})")
    main_variant = raw.get("main_variant", "ecma")
    if main_variant not in variants:
        raise EcmaError(f"{source}: main_variant {main_variant!r} is not one of the variants {variants}")
    parse = None
    if raw.get("parse") is not None:
        try:
            parse = _build(ParseConfig, "parse", raw["parse"])
        except EcmaError as e:
            raise EcmaError(f"{source}: {str(e).removeprefix('config: ')}") from None
        if not parse.videos or (parse.checkpoint is None) == (parse.dataset is None):
            raise EcmaError(f"{source}: parse needs 'videos' and one of 'checkpoint' (a model.pt) or 'dataset'")
        if parse.dataset is not None and parse.dataset not in datasets:
            raise EcmaError(f"{source}: parse.dataset {parse.dataset!r} is not a configured dataset ({', '.join(datasets)})")
    cfg = WorkflowConfig(settings, datasets, list(variants), main_variant, raw, parse)
    for name, ds in datasets.items():
        for v in variants:
            merged = cfg.for_dataset(name, v)  # every merge must validate before any job runs
            _check_merged(source, name, ds, merged)
    return cfg


def load_workflow_config(path: str | os.PathLike) -> WorkflowConfig:
    p = Path(path)
    if not p.is_file():
        raise EcmaError(f"{p}: config file not found")
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise EcmaError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    return workflow_config_from_dict(raw, str(p))


def schema_error_line(error: Exception) -> str:
    """One line from Snakemake's schema error (which dumps the whole schema): the message and where."""
    text = str(error)
    message = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("ValidationError:")),
                   text.strip().splitlines()[0] if text.strip() else "invalid config")
    where = re.search(r"On instance((?:\[[^\]]*\])*)", text)
    return f"config: {message}" + (f" (at {where.group(1)})" if where and where.group(1) else "")
