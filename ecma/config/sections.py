"""The package's settings, typed, with their defaults: the one place configuration lives.

A YAML file (or the workflow's ``config.yaml``) holds sections named like the fields of ``EcmaConfig``:
``model``, ``loss``, ``pseudo``, ``train``, ``eval``, ``extract`` and each registered backbone's own (CoLeaF's
``coleaf``, :mod:`ecma.models.coleaf.settings`). Sections and keys left out take the defaults below, other
top-level keys (the workflow's ``datasets``, ...) are ignored, and an unknown key or a value of the wrong type
is an :class:`~ecma.errors.EcmaError` naming it (:mod:`ecma.config.typed`).

``EcmaConfig`` is built from the core sections and the registered ones (:func:`config_class`), so a backbone
registered later (:mod:`ecma.registry`) brings its section with it.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Sequence

from ecma import registry
from ecma.config.typed import bounded, build_section, read_yaml_file, registered, runtime_keys, runtime_setting
from ecma.errors import EcmaError

# A device name the package accepts; whether this machine has it is checked where a job starts.
DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?"
# The validation scores a model (train.select) or a sweep's trial (sweeps.NAME.metric) can be chosen by.
Selection = Literal["type_av", "audio_visual", "average"]


@dataclass
class ModelConfig:
    """The backbone network (CoLeaF's or HAN's); the defaults are CoLeaF's (github faeghehsardari/coleaf,
    nets/net_audiovisual.py and option.py), the HAN backbone shares the sizes above its own section."""

    backbone: str = registered("coleaf", "backbones")  # coleaf: the paper's backbone (E-CMANet builds on CoLeaF)
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

    variant: str = registered("ecma", "variants")  # its backbone must be model.backbone (ecma.registry)
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
    select: Selection = "type_av"
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


class ConfigSections:
    """What every ``EcmaConfig`` can do, whichever sections the registered backbones gave it."""

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


# The core sections, around the registered backbones' own (config.yaml's order: model, loss, coleaf, pseudo, ...).
CORE_BEFORE = (("model", ModelConfig), ("loss", LossConfig))
CORE_AFTER = (("pseudo", PseudoConfig), ("train", TrainConfig), ("eval", EvalConfig), ("extract", ExtractConfig))
_CLASSES: dict[tuple, type] = {}


def section_classes() -> dict[str, type]:
    """Section name -> its dataclass, in order: the core ones and every registered backbone's."""
    return dict(CORE_BEFORE + registry.config_sections() + CORE_AFTER)


def config_class() -> type:
    """``EcmaConfig``: a dataclass with one field per section (:func:`section_classes`), made once per set of
    sections."""
    sections = tuple(section_classes().items())
    if sections not in _CLASSES:
        _CLASSES[sections] = make_dataclass(
            "EcmaConfig", [(name, cls, field(default_factory=cls)) for name, cls in sections],
            bases=(ConfigSections,), namespace={"__module__": __name__,
                                                "__doc__": "Every section of the package's settings."})
    return _CLASSES[sections]


def __getattr__(name: str) -> Any:
    if name == "EcmaConfig":  # the current class: registering a backbone with a section makes a new one
        return config_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_variants() -> tuple[str, ...]:
    """What the workflow trains and compares unless config.yaml names others: the default backbone's variants
    (CoLeaF's: Table 3 of the paper)."""
    default = ModelConfig().backbone
    return tuple(v.name for v in registry.backbone_spec(default).variants)


def _validate(cfg: ConfigSections) -> None:
    """Checks across keys (each key's own range is its field's bounds)."""
    m = cfg.model
    variant_backbone = registry.variant(cfg.train.variant).backbone
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


def config_from_dict(raw: dict | None, source: str = "config") -> ConfigSections:
    """Build and validate a config from a mapping of sections; other top-level keys are ignored."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise EcmaError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    kwargs = {}
    for name, cls in section_classes().items():
        try:
            kwargs[name] = build_section(cls, name, raw.get(name))
        except EcmaError as e:
            raise EcmaError(f"{source}: {str(e).removeprefix('config: ')}") from None
    cfg = config_class()(**kwargs)
    try:
        _validate(cfg)
    except EcmaError as e:
        raise EcmaError(f"{source}: {str(e).removeprefix('config: ')}") from None
    return cfg


def load_config(path: str | os.PathLike | None, overrides: dict | None = None, *, raw: dict | None = None,
                source: str | None = None) -> ConfigSections:
    """Read a YAML config (None: ``raw`` sections, else all defaults), put ``raw``'s and then ``overrides``'
    ({section: {key: value}}) values over it, validate once; errors name ``source`` (default: the file)."""
    given, raw = raw or {}, {}
    if path is not None:
        raw = read_yaml_file(path)
        if not isinstance(raw, dict):
            raise EcmaError(f"{Path(path)}: expected a mapping of sections at the top level")
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for layer in (given, overrides or {}):
        for section, values in layer.items():
            if isinstance(values, dict) and isinstance(raw.setdefault(section, {}), dict):
                raw[section].update(values)
            else:
                raw[section] = values
    return config_from_dict(raw, source or (str(path) if path else "config"))


def merge_runtime(raw: dict, runtime: dict, source: str = "--runtime") -> dict:
    """``raw`` sections with ``runtime`` ({section: {key: value}}) put in; only runtime settings may be given."""
    if not isinstance(runtime, dict):
        raise EcmaError(f"{source}: expected a mapping of sections, got {type(runtime).__name__}")
    classes = section_classes()
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for section, values in runtime.items():
        if section not in classes or not isinstance(values, dict):
            raise EcmaError(f"{source}: {section!r} is not a section with runtime settings")
        allowed = runtime_keys(classes[section])
        for key in values:
            if key not in allowed:
                raise EcmaError(f"{source}: {section}.{key} is not a runtime setting (runtime: "
                                f"{', '.join(f'{section}.{k}' for k in allowed) or 'none'})")
        out.setdefault(section, {}).update(values)
    return out
