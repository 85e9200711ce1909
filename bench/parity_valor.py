"""Parity of the ``valor`` extraction profile with VALOR's own feature code, run from a VALOR checkout.

    PY bench/parity_valor.py --reference VALOR_CHECKOUT [--work DIR] [--small] [--also-antialias]

VALOR's side runs VALOR's functions unchanged: ``utils/extract_frames.extract_frames`` (ffmpeg to a JPEG
folder), ``utils/clip_preprocess.LLP_dataset`` and ``get_image_embedding`` (with a Hugging Face
``CLIPModel``), ``utils/clap_preprocess.get_audio_feature_maps`` with ``clap_utils.My_CLAP`` (librosa,
``get_audio_features``, its own HTSAT forward). Ours runs ``ecma.extract.extract_videos`` with
``extract.profile: valor`` into a shard. Both load the same weights: a randomly initialised CLIP ViT-L/14
(a ``CLIPModel`` built from openai/clip-vit-large-patch14's configuration; its vision tensors copied into an
open_clip ``ViT-L-14-quickgelu`` state dict) and a randomly initialised LAION-CLAP fusion HTSAT-tiny saved
as a CLAP checkpoint. Videos: the real LLP clip (../shared) and generated ones (ffmpeg lavfi: a moving test
pattern, a pitch that changes every second): 10, 7 and 25 s, 25 and 30 fps, 44.1 and 48 kHz, mono and stereo.

Two things of VALOR's pinned environment (environment.yaml) differ from today's libraries and are put back:
torchvision 0.13's ``Resize`` did not antialias tensors (``--also-antialias`` also shows today's default),
and transformers 4.30's ``get_image_features`` returned the projected tensor (5.x returns an output object).
VALOR's ``clap_utils`` imports torchaudio, which the project does not install: run this with a Python that
has it, e.g. a venv in /tmp that sees the project's packages (see docs/benchmarks.md, "VALOR parity").

Reported per video: the frames each side picked (and whether the picked JPEG files are the same bytes),
the largest difference of the inputs (squashed frames, 480,000-sample waveform), and per segment the
cosine similarity and largest absolute difference of the visual and audio features (audio: the 10
per-second vectors the import conversion makes of VALOR's (64, 768) map; the map itself too).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import importlib
import json
import platform
import sys
import tempfile
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

LLP_CLIP = REPO.parent / "shared" / "data" / "llp" / "BjCEufrlXm4.mp4"
# name (11 characters: VALOR's code keys files by the first 11 of the filename) -> generated clip
GENERATED = {
    "gen10s25fmo": dict(seconds=10, fps=25, sample_rate=48000, channels=1, size="640x360"),
    "gen10s30fst": dict(seconds=10, fps=30, sample_rate=44100, channels=2, size="320x240"),
    "gen07s25fst": dict(seconds=7, fps=25, sample_rate=44100, channels=2, size="480x360"),
    "gen25s30fmo": dict(seconds=25, fps=30, sample_rate=48000, channels=1, size="640x480"),
    "gen10s30f48": dict(seconds=10, fps=30, sample_rate=48000, channels=2, size="1280x720"),
}


def load_valor(reference: Path):
    """VALOR's utils modules, imported from the checkout (laion_clap's package is not imported: its
    __init__ downloads tokenizers; VALOR's scripts only use it to build the model, which we build)."""
    utils = reference / "utils"
    if not (utils / "clap_preprocess.py").is_file():
        raise SystemExit(f"{reference}: not a VALOR checkout (no utils/clap_preprocess.py)")
    sys.path.insert(0, str(utils))
    try:
        import torchaudio  # noqa: F401
    except ImportError:
        raise SystemExit("VALOR's clap_utils imports torchaudio: run this with a Python that has it "
                         "(docs/benchmarks.md, 'VALOR parity')") from None
    stub = sys.modules.setdefault("laion_clap", types.ModuleType("laion_clap"))
    try:
        clap_pre = importlib.import_module("clap_preprocess")
    finally:
        if sys.modules.get("laion_clap") is stub:  # ecma finds the real package's files again
            del sys.modules["laion_clap"]
    return (importlib.import_module("extract_frames"), importlib.import_module("clip_preprocess"), clap_pre,
            importlib.import_module("clap_utils"))


def hf_clip_config(small: bool):
    from transformers import CLIPConfig

    if small:  # a quick check of the plumbing: ViT-L/14's layout, fewer and narrower layers
        vision = dict(hidden_size=256, intermediate_size=1024, num_attention_heads=4, num_hidden_layers=2)
        text = dict(hidden_size=128, intermediate_size=512, num_attention_heads=2, num_hidden_layers=1)
    else:  # openai/clip-vit-large-patch14's config.json
        vision = dict(hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=24)
        text = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12)
    return CLIPConfig(
        vision_config=dict(image_size=224, patch_size=14, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                           projection_dim=768, **vision),
        text_config=dict(hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=768, vocab_size=49408,
                         max_position_embeddings=77, **text),
        projection_dim=768)


def open_clip_config(small: bool, work: Path) -> str:
    """The open_clip model name for the HF config (ViT-L-14-quickgelu, or a registered small twin)."""
    if not small:
        return "ViT-L-14-quickgelu"
    import open_clip

    cfg = {"embed_dim": 768, "quick_gelu": True,
           "vision_cfg": {"image_size": 224, "layers": 2, "width": 256, "head_width": 64, "mlp_ratio": 4.0,
                          "patch_size": 14},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 128, "heads": 2, "layers": 1}}
    path = work / "parity-ViT-small-14-quickgelu.json"
    path.write_text(json.dumps(cfg))
    open_clip.add_model_config(path)
    return path.stem


def clip_weights(model_name: str, small: bool, work: Path, seed: int = 0):
    """A random HF CLIPModel and an open_clip state dict file holding the same vision tensors."""
    import open_clip
    import torch
    from transformers import CLIPModel

    torch.manual_seed(seed)
    hf = CLIPModel(hf_clip_config(small)).eval()
    oc = open_clip.create_model(model_name).state_dict()
    sd = hf.state_dict()
    v = "vision_model."
    oc["visual.class_embedding"] = sd[v + "embeddings.class_embedding"]
    oc["visual.conv1.weight"] = sd[v + "embeddings.patch_embedding.weight"]
    oc["visual.positional_embedding"] = sd[v + "embeddings.position_embedding.weight"]
    oc["visual.ln_pre.weight"], oc["visual.ln_pre.bias"] = sd[v + "pre_layrnorm.weight"], sd[v + "pre_layrnorm.bias"]
    oc["visual.ln_post.weight"], oc["visual.ln_post.bias"] = sd[v + "post_layernorm.weight"], sd[v + "post_layernorm.bias"]
    oc["visual.proj"] = sd["visual_projection.weight"].T.contiguous()
    layers = hf.config.vision_config.num_hidden_layers
    for i in range(layers):
        h, o = f"{v}encoder.layers.{i}.", f"visual.transformer.resblocks.{i}."
        for part in ("weight", "bias"):
            oc[o + f"attn.in_proj_{part}"] = torch.cat([sd[h + f"self_attn.{q}_proj.{part}"] for q in "qkv"])
            oc[o + f"attn.out_proj.{part}"] = sd[h + f"self_attn.out_proj.{part}"]
            oc[o + f"ln_1.{part}"] = sd[h + f"layer_norm1.{part}"]
            oc[o + f"ln_2.{part}"] = sd[h + f"layer_norm2.{part}"]
            oc[o + f"mlp.c_fc.{part}"] = sd[h + f"mlp.fc1.{part}"]
            oc[o + f"mlp.c_proj.{part}"] = sd[h + f"mlp.fc2.{part}"]
    path = work / f"{model_name}-random.pt"
    torch.save(oc, path)
    return hf, path


def clap_weights(work: Path, seed: int = 0):
    """A random LAION-CLAP fusion HTSAT-tiny saved as a CLAP checkpoint, and VALOR's My_CLAP input (the
    model object CLAP_Module would hold) loaded from the same file."""
    import torch

    from ecma.extract.audio import _Cfg, _htsat_module, audio_model_config, load_audio_branch_state

    cfg = audio_model_config("HTSAT-tiny")
    torch.manual_seed(seed)
    tower = _htsat_module().create_htsat_model(_Cfg(**cfg), enable_fusion=True, fusion_type="aff_2d")
    path = work / "clap-fusion-random.pt"
    torch.save({"state_dict": {f"module.audio_branch.{k}": t for k, t in tower.state_dict().items()}}, path)
    reference = _htsat_module().create_htsat_model(_Cfg(**cfg), enable_fusion=True, fusion_type="aff_2d")
    reference.load_state_dict(load_audio_branch_state(str(path)), strict=True)
    model = torch.nn.Module()
    model.audio_branch = reference
    return types.SimpleNamespace(model=model, model_cfg={"audio_cfg": cfg}), path


@contextlib.contextmanager
def torchvision_013_resize():
    """torchvision 0.13 (VALOR's pin) did not antialias when resizing tensors; today's default does."""
    import torchvision.transforms as T

    original = T.Resize
    T.Resize = functools.partial(original, antialias=False)
    try:
        yield
    finally:
        T.Resize = original


class Transformers430Clip:
    """transformers 4.30 (VALOR's pin): get_image_features returned the projected embeddings as a tensor."""

    def __init__(self, model):
        self.model = model

    def get_image_features(self, **kw):
        return self.model.get_image_features(**kw).pooler_output


def make_clips(work: Path) -> dict[str, Path]:
    from media import make_video

    clips = {}
    if LLP_CLIP.is_file():
        clips[LLP_CLIP.stem] = LLP_CLIP
    else:
        print(f"note: {LLP_CLIP} not found; generated clips only", file=sys.stderr)
    for name, spec in GENERATED.items():
        clips[name] = make_video(work / "videos" / f"{name}.mp4", pattern="testsrc2", **spec)
    return clips


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def cosines(a, b):
    import numpy as np

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", required=True, type=Path, help="a checkout of github.com/Franklin905/VALOR")
    ap.add_argument("--work", type=Path, help="working folder (default: a new temporary one)")
    ap.add_argument("--small", action="store_true", help="a narrow 2-layer ViT in ViT-L/14's layout (quick)")
    ap.add_argument("--also-antialias", action="store_true",
                    help="also run VALOR's visual side with today's torchvision Resize default (antialias)")
    ap.add_argument("--json", type=Path, help="write every figure here too")
    args = ap.parse_args()

    import numpy as np
    import torch
    from torch.utils.data import DataLoader

    from ecma.config import ExtractConfig
    from ecma.data.shards import FeatureShard
    from ecma.extract import extract_videos
    from ecma.extract.pipeline import build_encoders
    from ecma.extract.decode import DecodeSpec, decode_video
    from ecma.extract.valor.ffmpeg import run_ffmpeg
    from ecma.extract.valor.frames import ffmpeg_jpeg_args, split_jpegs
    from ecma.importers.clap import clap_map_to_segments

    torch.set_grad_enabled(False)
    extract_frames, clip_pre, clap_pre, clap_utils = load_valor(args.reference.resolve())
    work = args.work or Path(tempfile.mkdtemp(prefix="parity_valor."))
    work.mkdir(parents=True, exist_ok=True)
    clips = make_clips(work)
    model_name = open_clip_config(args.small, work)
    hf, clip_file = clip_weights(model_name, args.small, work)
    clap, clap_file = clap_weights(work)
    my_clap = clap_utils.My_CLAP(clap, torch.device("cpu"))

    # --- ours: the extraction pipeline, into a shard ------------------------------------------------------
    cfg = ExtractConfig(profile="valor", visual_model=model_name, visual_pretrained=str(clip_file),
                        audio_checkpoint=str(clap_file), workers=2, batch_videos=4, device="cpu")
    t0 = time.perf_counter()
    rep = extract_videos(list(clips.values()), work / "ours.h5", cfg, names=list(clips), overwrite=True, progress=False)
    ours_seconds = time.perf_counter() - t0
    assert rep.extracted == len(clips) and not rep.failed, rep
    enc = build_encoders(cfg)

    # --- VALOR's: its functions, one video at a time --------------------------------------------------------
    csv = work / "valor.csv"
    csv.write_text("filename\tevent_labels\n" + "".join(f"{n}\tSpeech\n" for n in clips))
    frames_dir, audio_dir = work / "valor_frames", work / "valor_audio"
    audio_dir.mkdir(exist_ok=True)
    for name, path in clips.items():
        (audio_dir / f"{name[:11]}.mp4").unlink(missing_ok=True)
        (audio_dir / f"{name[:11]}.mp4").symlink_to(path.resolve())
        dst = frames_dir / name[:11]
        dst.mkdir(parents=True, exist_ok=True)
        with contextlib.redirect_stdout(sys.stderr):
            extract_frames.extract_frames(str(audio_dir / f"{name[:11]}.mp4") + " -loglevel error", str(dst))
    from transformers import CLIPImageProcessor

    processor = types.SimpleNamespace(image_processor=CLIPImageProcessor())  # its default mean/std: OpenAI's
    t0 = time.perf_counter()
    variants = {"valor": True, **({"antialias": False} if args.also_antialias else {})}
    valor_visual, valor_pixels = {}, {}
    for variant, old_resize in variants.items():
        with torchvision_013_resize() if old_resize else contextlib.nullcontext():
            dataset = clip_pre.LLP_dataset(str(csv), str(frames_dir), processor)
        out = work / f"valor_clip_{variant}"
        with contextlib.redirect_stdout(sys.stderr):
            clip_pre.get_image_embedding(Transformers430Clip(hf), DataLoader(dataset, batch_size=1), str(out),
                                         torch.device("cpu"), False)
        valor_visual[variant] = {n: np.load(out / f"{n[:11]}.npy") for n in clips}
        valor_pixels[variant] = {dataset[i]["video_name"]: dataset[i]["video_frames"] for i in range(len(dataset))}
    with contextlib.redirect_stdout(sys.stderr):
        loader = [{"video_name": [n]} for n in clips]
        clap_pre.get_audio_feature_maps(my_clap, loader, str(audio_dir), str(work / "valor_clap"), False)
    valor_seconds = time.perf_counter() - t0
    valor_maps = {n: np.load(work / "valor_clap" / f"{n[:11]}.npy") for n in clips}

    # --- compare ----------------------------------------------------------------------------------------------
    import librosa

    results = {}
    with FeatureShard(work / "ours.h5") as shard:
        for name, path in clips.items():
            audio, visual = shard.read(name)
            attrs = shard.attrs(name)
            ours_idx = [int(i) for i in attrs["frame_indices"]]
            jpgs = sorted((frames_dir / name[:11]).glob("*.jpg"))
            valor_idx = [int(i) for i in np.round(np.linspace(0, len(jpgs) - 1, 10))]  # clip_preprocess's formula
            piped = split_jpegs(run_ffmpeg(ffmpeg_jpeg_args(str(path))).stdout)
            same_bytes = len(piped) == len(jpgs) and all(md5(piped[i]) == md5(jpgs[i].read_bytes()) for i in range(len(jpgs)))
            d = decode_video(0, name, path, DecodeSpec(profile="valor"))
            pix = valor_pixels["valor"][name].numpy().transpose(0, 2, 3, 1)  # normalised, as VALOR's loader gives
            mean, std = (np.array(x, np.float32) for x in (processor.image_processor.image_mean, processor.image_processor.image_std))
            ours_pix = (d.images - mean) / std
            wav, _ = librosa.load(str(audio_dir / f"{name[:11]}.mp4"), sr=48000)
            wav = wav[np.round(np.linspace(0, len(wav) - 1, 480000)).astype(np.int32)]
            wav = clap_utils.int16_to_float32(clap_utils.float32_to_int16(wav))
            our_map = enc.audio.feature_maps(torch.from_numpy(d.waveform[None])).numpy()[0]
            va, vv = clap_map_to_segments(valor_maps[name]), valor_visual["valor"][name]
            r = {
                "frames_8fps": {"ours": int(attrs["frames_8fps"]), "valor": len(jpgs)},
                "indices": {"ours": ours_idx, "valor": valor_idx}, "same_jpeg_bytes": bool(same_bytes),
                "pixels_max_abs": float(np.abs(ours_pix - pix).max()),
                "waveform_max_abs": float(np.abs(d.waveform - wav).max()),
                "visual_cos": cosines(visual, vv).tolist(), "visual_max_abs": np.abs(visual - vv).max(1).tolist(),
                "audio_cos": cosines(audio, va).tolist(), "audio_max_abs": np.abs(audio - va).max(1).tolist(),
                "map_max_abs": float(np.abs(our_map - valor_maps[name]).max()),
                "map_cos_min": float(cosines(our_map, valor_maps[name]).min()),
            }
            if "antialias" in valor_visual:
                r["visual_cos_vs_antialias"] = cosines(visual, valor_visual["antialias"][name]).tolist()
            results[name] = r

    print(f"\nmachine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; CLIP {'small twin of ' if args.small else ''}ViT-L/14 and fusion "
          f"HTSAT-tiny, random weights; ours {ours_seconds:.1f} s (extract_videos, {len(clips)} videos), "
          f"VALOR's {valor_seconds:.1f} s (frames on disk, then CLIP, then CLAP, one video at a time)")
    print("\n| video | 8-fps frames (ours/VALOR) | picked frames (both) | same JPEG bytes | max abs: pixels | "
          "max abs: waveform | visual cos min | visual max abs | audio cos min | audio max abs | map max abs |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        same = r["indices"]["ours"] == r["indices"]["valor"]
        picked = ",".join(map(str, r["indices"]["ours"])) if same else f"DIFFER: {r['indices']}"
        print(f"| {name} | {r['frames_8fps']['ours']}/{r['frames_8fps']['valor']} | {picked} | "
              f"{'yes' if r['same_jpeg_bytes'] else 'NO'} | {r['pixels_max_abs']:.1e} | {r['waveform_max_abs']:.1e} | "
              f"{min(r['visual_cos']):.7f} | {max(r['visual_max_abs']):.1e} | {min(r['audio_cos']):.7f} | "
              f"{max(r['audio_max_abs']):.1e} | {r['map_max_abs']:.1e} |")
    if args.also_antialias:
        print("\nVALOR's code with today's torchvision Resize default (antialias), against ours: visual cos min per video: "
              + ", ".join(f"{n} {min(r['visual_cos_vs_antialias']):.4f}" for n, r in results.items()))
    print("\nper segment (cos visual / cos audio):")
    for name, r in results.items():
        print(f"  {name}: " + " ".join(f"{a:.6f}/{b:.6f}" for a, b in zip(r["visual_cos"], r["audio_cos"])))
    ok = all(min(r["visual_cos"]) >= 0.999 and min(r["audio_cos"]) >= 0.999 and r["indices"]["ours"] == r["indices"]["valor"]
             for r in results.values())
    print(f"\ntarget (every segment cosine >= 0.999, same frame indices): {'met' if ok else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
