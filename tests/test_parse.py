"""``ecma parse``: events from probabilities, windows, the JSON, the extractor check, bad files, end to end
on a tiny trained checkpoint with real small videos, and the page in a real browser (Debian's Chromium)."""

from __future__ import annotations

import html
import json
import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
import yaml

from ecma.cli import main
from ecma.parse.events import extract_events, runs
from ecma.parse.windows import parse_probabilities, plan_windows
from media import FFMPEG, make_video

CLASSES = ["Speech", "Dog", "Car"]


# --- events from probabilities ------------------------------------------------------------------------
def _events(audio, visual, video, **kw):
    return [e.to_dict() for e in extract_events(np.array(audio, float), np.array(visual, float), np.array(video, float), CLASSES[: np.shape(audio)[1]], **kw)]


def test_runs_are_maximal_and_end_exclusive():
    assert runs(np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 1], bool)) == [(1, 3), (4, 5), (7, 10)]
    assert runs(np.zeros(4, bool)) == [] and runs(np.ones(3, bool)) == [(0, 3)]


def test_events_onsets_offsets_merging_and_confidence():
    # one class, 6 one-second segments; audio on at 1-2 and 4 (>= 0.5, the benchmark's >=), visual at 2-3
    audio = [[0.1], [0.6], [0.9], [0.4], [0.5], [0.2]]
    visual = [[0.2], [0.3], [0.8], [0.7], [0.1], [0.0]]
    ev = _events(audio, visual, [0.9])
    assert ev == [
        {"class": "Speech", "modality": "audio", "onset": 1.0, "offset": 3.0, "confidence": pytest.approx((0.6 + 0.9) / 2)},
        {"class": "Speech", "modality": "visual", "onset": 2.0, "offset": 4.0, "confidence": pytest.approx((0.8 + 0.7) / 2)},
        # audio-visual where both: second 2 only; its probability is min(audio, visual) = 0.8
        {"class": "Speech", "modality": "audio_visual", "onset": 2.0, "offset": 3.0, "confidence": pytest.approx(0.8)},
        {"class": "Speech", "modality": "audio", "onset": 4.0, "offset": 5.0, "confidence": pytest.approx(0.5)},
    ]


def test_events_gated_by_the_video_probability_and_scaled_by_segment_length():
    audio = [[0.9, 0.9], [0.9, 0.9], [0.1, 0.1]]
    visual = [[0.0, 0.0]] * 3
    ev = _events(audio, visual, [0.49, 0.5], segment_seconds=2.0)  # class 0 gated off, class 1 on (>=)
    assert ev == [{"class": "Dog", "modality": "audio", "onset": 0.0, "offset": 4.0, "confidence": pytest.approx(0.9)}]
    # a per-second gate (long videos): class 1 passes only in the first second
    ev = _events(audio, visual, [[0.0, 0.9], [0.0, 0.2], [0.0, 0.9]], video_threshold=0.5)
    assert [(e["class"], e["onset"], e["offset"]) for e in ev] == [("Dog", 0.0, 1.0)]
    # thresholds are the caller's; a last segment past the video's end is cut to the duration
    ev = _events([[0.3], [0.35]], [[0.0], [0.0]], [0.2], video_threshold=0.1, segment_threshold=0.3, duration=1.6)
    assert [(e["onset"], e["offset"]) for e in ev] == [(0.0, 1.6)]


def test_events_are_ordered_by_onset_then_class_then_modality():
    audio = [[0.0, 0.9], [0.9, 0.9]]
    visual = [[0.0, 0.9], [0.9, 0.0]]
    ev = _events(audio, visual, [0.9, 0.9])
    assert [(e["onset"], e["class"], e["modality"]) for e in ev] == [
        (0.0, "Dog", "audio"), (0.0, "Dog", "visual"), (0.0, "Dog", "audio_visual"),
        (1.0, "Speech", "audio"), (1.0, "Speech", "visual"), (1.0, "Speech", "audio_visual")]


# --- windows and padding ------------------------------------------------------------------------------
T = 10


def position_model(seen: list):
    """A fake model: segment probability (t + 1) / T at window position t (audio) and 1 - that (visual);
    video probability = the window's first audio feature / 100 (the window start, see ``features``)."""
    def infer(a, v):
        seen.append((a.copy(), v.copy()))
        w = len(a)
        pos = np.broadcast_to(((np.arange(T) + 1) / T)[None, :, None], (w, T, 2))
        return a[:, 0, :2] / 100.0, pos.copy(), 1 - pos
    return infer


def features(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Feature row t = (t, t): a window starting at s then carries s in its first row."""
    f = np.repeat(np.arange(n, dtype=np.float32)[:, None], 2, axis=1)
    return f, f + 0.5


def test_short_video_is_padded_and_the_padding_dropped():
    seen = []
    a, v = features(3)
    probs = parse_probabilities(a, v, position_model(seen), T)
    (wa, wv), = seen
    assert wa.shape == (1, T, 2) and (wa[0, 3:] == a[2]).all() and (wv[0, 3:] == v[2]).all()  # repeat last
    assert np.allclose(probs.audio[:, 0], [0.1, 0.2, 0.3]) and probs.audio.shape == (3, 2)
    assert probs.plan.describe()["mode"] == "padded" and probs.plan.padded_segments == 7


def test_ten_second_video_is_one_window():
    seen = []
    probs = parse_probabilities(*features(10), position_model(seen), T)
    assert len(seen) == 1 and probs.plan.mode == "single" and probs.plan.starts == [0]
    assert np.allclose(probs.audio[:, 1], np.arange(1, 11) / 10) and np.allclose(probs.visual[:, 1], 1 - np.arange(1, 11) / 10)


def test_long_video_windows_overlap_and_average():
    seen = []
    probs = parse_probabilities(*features(47), position_model(seen), T)
    starts = [0, 5, 10, 15, 20, 25, 30, 35, 37]  # stride T/2, the last window aligned to the end
    assert probs.plan.starts == starts and [int(x) for x in seen[0][0][:, 0, 0]] == starts
    # by hand: second s is at position s - start in each window covering it
    expect = {0: [0.1], 7: [0.8, 0.3], 36: [0.7, 0.2], 40: [0.6, 0.4], 46: [1.0]}
    for s, ps in expect.items():
        assert probs.audio[s, 0] == pytest.approx(np.mean(ps)), s
        assert probs.visual[s, 0] == pytest.approx(np.mean([1 - p for p in ps])), s
    # the gate is the covering windows' mean video probability (window start / 100)
    assert probs.video_gate[7, 0] == pytest.approx((0 + 5) / 200) and probs.video_gate[40, 0] == pytest.approx((35 + 37) / 200)
    assert probs.video[0] == pytest.approx(37 / 100)  # the whole video's: the highest per-second gate
    w = probs.plan.describe()
    assert w == {"mode": "windows", "window_segments": 10, "stride_segments": 5, "window_starts": starts,
                 "padded_segments": 0, "video_segments": 47}


def test_window_plans():
    assert plan_windows(11, 10).starts == [0, 1] and plan_windows(20, 10, 10).starts == [0, 10]
    assert plan_windows(47, 10, whole=True).describe()["mode"] == "whole"
    with pytest.raises(ValueError):
        plan_windows(20, 10, 11)


# --- end to end on a tiny trained checkpoint -----------------------------------------------------------
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="the ffmpeg binary is needed to make test videos")
# small random encoders, float32 whatever the CPU, decoding in-process (no worker start-up in a test)
EXTRACT = {"visual_model": "ViT-B-32", "workers": 0, "batch_videos": 4, "device": "cpu", "amp": False}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A checkpoint trained for one epoch on planted features that carry the fingerprint of EXTRACT's
    encoders, plus a 3-s, a 12-s, a broken and a missing video."""
    if FFMPEG is None:
        pytest.skip("the ffmpeg binary is needed to make test videos")
    from ecma.config import ExtractConfig
    from ecma.data.shards import FeatureShard
    from ecma.extract.pipeline import build_encoders, fingerprint_of
    from synthetic import make_planted_data

    root = tmp_path_factory.mktemp("parse")
    cfg = ExtractConfig(**EXTRACT)
    fingerprint = fingerprint_of(cfg, build_encoders(cfg))
    data = make_planted_data(root / "data", n_train=16, n_val=8, n_test=0, audio_dim=768, visual_dim=512, n_shards=1)
    with FeatureShard(data.shards[0], "a") as shard:
        shard.fingerprint = fingerprint
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"audio_dim": 768, "visual_dim": 512, "d_model": 32, "num_layers": 1, "num_heads": 2, "d_ff": 64},
        "train": {"epochs": 1, "batch_size": 8, "threads": 2}, "extract": EXTRACT,
    }))
    out = root / "model"
    assert main(["train", "--config", str(config), "--features", str(data.shards[0]), "--output-dir", str(out),
                 "--train", str(data.train_csv), "--val", str(data.val_csv), "--eval-audio", str(data.eval_audio_csv),
                 "--eval-visual", str(data.eval_visual_csv), "--variant", "han", "--quiet"]) == 0
    videos = root / "videos"
    short = make_video(videos / "short.mp4", seconds=3, size="64x48")
    long = make_video(videos / "long clip.mp4", seconds=12, size="64x48", pattern="rgbtestsrc")
    broken = videos / "broken.mp4"
    broken.write_bytes(b"this is not a video" * 50)
    return {"root": root, "checkpoint": out / "model.pt", "config": config, "fingerprint": fingerprint,
            "videos": [short, broken, long, videos / "absent.mp4"]}


@pytest.fixture(scope="module")
def parsed(tiny):
    out = tiny["root"] / "parsed"
    rc = main(["parse", "--checkpoint", str(tiny["checkpoint"]), *map(str, tiny["videos"]), "--output-dir", str(out), "--quiet"])
    return rc, out


def test_parse_writes_every_output_and_lists_bad_files(tiny, parsed, capsys):
    rc, out = parsed
    assert rc == 3  # as extraction: some videos failed, the others were parsed
    for name in ("short", "long clip"):
        for ext in ("json", "html", "png"):
            assert (out / f"{name}.{ext}").is_file(), (name, ext)
    assert not list(out.glob("broken.*")) and not list(out.glob("absent.*"))
    failures = (out / "failures.tsv").read_text().splitlines()
    assert failures[0] == "filename\tstage\treason"
    assert [line.split("\t")[:2] for line in failures[1:]] == [["broken", "decode"], ["absent", "open"]]
    index = (out / "index.html").read_text()
    assert index.count('class="card video"') == 2 and 'href="long%20clip.html"' in index
    assert "Not parsed (2)" in index and "broken" in index and "file not found" in index
    assert "http://" not in index and "https://" not in index
    assert 'src="../videos/long%20clip.mp4"' in (out / "long clip.html").read_text()  # linked relative to the page


def test_keep_going_when_every_video_is_bad(tiny, tmp_path, capsys):
    bad = [str(p) for p in tiny["videos"] if p.stem in ("broken", "absent")]
    assert main(["parse", "--checkpoint", str(tiny["checkpoint"]), *bad, "--output-dir", str(tmp_path), "--quiet", "--keep-going"]) == 0
    assert "parsed 0 video(s), 0 events, failed 2" in capsys.readouterr().err
    assert "Not parsed (2)" in (tmp_path / "index.html").read_text() and len((tmp_path / "failures.tsv").read_text().splitlines()) == 3


def test_json_schema_and_windowing(tiny, parsed):
    rc, out = parsed
    from ecma import __version__
    from ecma.data.classes import LLP_CLASSES
    from ecma.extract.fingerprint import file_sha256

    for name, n, mode, starts in (("short", 3, "padded", [0]), ("long clip", 12, "windows", [0, 2])):
        r = json.loads((out / f"{name}.json").read_text())
        assert set(r) == {"format", "video", "classes", "events", "suppressed", "probabilities", "thresholds", "windowing",
                          "provenance"}
        assert r["format"] == "ecma-parse/2" and r["classes"] == list(LLP_CLASSES)
        assert r["suppressed"] == {"missing_streams": [], "modalities": [], "events": {}}
        assert r["video"]["name"] == name and r["video"]["n_segments"] == n and r["video"]["segment_seconds"] == 1.0
        assert r["video"]["duration_seconds"] == pytest.approx(n, abs=0.1)
        assert r["windowing"]["mode"] == mode and r["windowing"]["window_starts"] == starts
        assert r["windowing"]["window_segments"] == 10 and r["windowing"]["window_source"] == "fingerprint n_segments"
        assert r["windowing"]["padded_segments"] == (7 if n == 3 else 0)
        assert r["thresholds"] == {"video": 0.5, "segment": 0.5}  # the checkpoint's eval defaults
        p = r["probabilities"]
        assert set(p) == {"audio", "visual", "video_gate", "video"}
        for m in ("audio", "visual", "video_gate"):
            assert set(p[m]) == set(LLP_CLASSES) and all(len(x) == n and all(0 <= y <= 1 for y in x) for x in p[m].values())
        prov = r["provenance"]
        assert prov["checkpoint"] == str(tiny["checkpoint"]) and prov["checkpoint_sha256"] == file_sha256(tiny["checkpoint"])
        assert prov["fingerprint"] == tiny["fingerprint"] and prov["ecma_version"] == __version__
        assert prov["audio_reader"] == "ffmpeg stream"  # decord's samples, streamed (tests/test_parse_stream.py)
        for e in r["events"]:
            assert set(e) == {"class", "modality", "onset", "offset", "confidence"}
            assert e["modality"] in ("audio", "visual", "audio_visual") and 0 <= e["onset"] < e["offset"] <= n
        # the events are those the stored probabilities give by the benchmark's rule (4-decimal rounding aside)
        a = np.array([p["audio"][c] for c in LLP_CLASSES]).T
        v = np.array([p["visual"][c] for c in LLP_CLASSES]).T
        g = np.array([p["video_gate"][c] for c in LLP_CLASSES]).T
        again = [e.to_dict() for e in extract_events(a, v, g, LLP_CLASSES, duration=r["video"]["duration_seconds"])]
        assert [(e["class"], e["modality"], e["onset"], e["offset"]) for e in again] == \
            [(e["class"], e["modality"], e["onset"], e["offset"]) for e in r["events"]]


def test_parse_thresholds_and_probabilities_match_the_model(tiny, parsed, tmp_path):
    """The 12-s video's probabilities equal the model run by hand on the two windows (rows 0-9 and 2-11) of
    the features the extraction pipeline gives for it, averaged where they overlap; threshold 0 turns every
    class on everywhere."""
    from ecma.config import ExtractConfig
    from ecma.data.shards import load_features
    from ecma.device import amp_dtype
    from ecma.evaluation.inference import run_model
    from ecma.extract import extract_videos
    from ecma.models.checkpoint import load_model
    import torch

    long = tiny["videos"][2]
    r = json.loads((parsed[1] / "long clip.json").read_text())
    # by hand: features of the whole 12 s (n_segments None), the model on rows 0-9 and 2-11, averaged
    extract_videos([long], tmp_path / "f.h5", ExtractConfig(**{**EXTRACT, "n_segments": None}), progress=False)
    fs = load_features([tmp_path / "f.h5"], ["long clip"])
    model, _, _ = load_model(tiny["checkpoint"])
    a, v = fs.audio[0], fs.visual[0]
    cpu = torch.device("cpu")
    out = run_model(model, np.stack([a[:10], a[2:]]), np.stack([v[:10], v[2:]]), batch_size=2, device=cpu,
                    precision=amp_dtype(cpu, True))  # as the checkpoint was trained (train.amp)
    expect = np.zeros((12, 25))
    expect[:2], expect[10:] = out.audio_prob[0, :2], out.audio_prob[1, 8:]
    expect[2:10] = (out.audio_prob[0, 2:] + out.audio_prob[1, :8]) / 2
    got = np.array([r["probabilities"]["audio"][c] for c in r["classes"]]).T
    assert np.allclose(got, expect, atol=1e-4)
    assert main(["parse", "--checkpoint", str(tiny["checkpoint"]), str(tiny["videos"][0]), "--output-dir", str(tmp_path),
                 "--threshold", "0", "--quiet"]) == 0
    r = json.loads((tmp_path / "short.json").read_text())
    assert len(r["events"]) == 25 * 3 and r["thresholds"] == {"video": 0.0, "segment": 0.0}
    assert all((e["onset"], e["offset"]) == (0.0, pytest.approx(3, abs=0.1)) for e in r["events"])


def test_fingerprint_mismatch_is_one_line_naming_both(tiny, tmp_path, capsys):
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"extract": {**EXTRACT, "normalize": True, "frames_per_segment": 2}}))
    rc = main(["parse", "--checkpoint", str(tiny["checkpoint"]), str(tiny["videos"][0]), "--output-dir", str(tmp_path / "o"),
               "--config", str(other), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"ecma parse: error: {tiny['checkpoint']}: trained on features of another extractor than {other}")
    assert "differing: frames_per_segment, normalize" in err and "normalize: False vs True" in err
    assert not (tmp_path / "o" / "short.json").exists()
    # another encoder is named by its dotted key, and refused before it is built
    other.write_text(yaml.safe_dump({"extract": {**EXTRACT, "visual_model": "ViT-H-14"}}))
    assert main(["parse", "--checkpoint", str(tiny["checkpoint"]), str(tiny["videos"][0]), "--output-dir", str(tmp_path / "o"),
                 "--config", str(other), "--quiet"]) == 2
    assert "(differing: visual; checkpoint's vs this config's: visual.model: 'open_clip/ViT-B-32' vs 'open_clip/ViT-H-14')" \
        in capsys.readouterr().err
    # a --config whose extract section gives the checkpoint's fingerprint is accepted (runtime keys may differ)
    same = tmp_path / "same.yaml"
    same.write_text(yaml.safe_dump({"extract": {**EXTRACT, "batch_videos": 1}}))
    assert main(["parse", "--checkpoint", str(tiny["checkpoint"]), str(tiny["videos"][0]), "--output-dir",
                 str(tmp_path / "o"), "--config", str(same), "--quiet"]) == 0


def test_checkpoint_whose_stored_extract_section_differs(tiny, tmp_path, capsys):
    import torch

    payload = torch.load(tiny["checkpoint"], weights_only=False)
    payload["fingerprint"] = {**payload["fingerprint"], "sample_rate": 44100}
    bad = tmp_path / "bad.pt"
    torch.save(payload, bad)
    rc = main(["parse", "--checkpoint", str(bad), str(tiny["videos"][0]), "--output-dir", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "its stored config's extract section" in err and "sample_rate: 44100 vs 48000" in err


# --- what a page may claim, links, and a video failing mid-way ------------------------------------------
ODD = "a #1 100% sure? yes"  # '#' ends a URL's path, '?' starts its query, '%' starts an escape, ' ' is not allowed


@pytest.fixture(scope="module")
def special(tiny):
    """One parse, every class on everywhere (threshold 0), of: a 4-s video without an audio stream (named ODD),
    a 4-s file without a video stream, and a 30-s video whose audio decoder fails after 22 s, in its second
    20-s chunk (an ffmpeg that stops with an error there; every other file goes to the real one)."""
    import os

    root = tiny["root"] / "special"
    videos = [make_video(root / "videos" / f"{ODD}.mp4", seconds=4, size="64x48", audio=False),
              make_video(root / "videos" / "sound only.mp4", seconds=4, video=False),
              make_video(root / "videos" / "fails mid-way.mp4", seconds=30, size="64x48")]
    fake = root / "bin" / "ffmpeg"
    fake.parent.mkdir(parents=True)
    # 22 s of 16-kHz mono float samples, then an error, for the one file; the real ffmpeg for the rest
    fake.write_text(f"#!/bin/sh\ncase \"$*\" in *\"fails mid-way\"*) head -c {22 * 16000 * 4} /dev/zero; "
                    f"echo 'Error while decoding stream #0:1: Invalid data found' >&2; exit 1;; esac\nexec {FFMPEG} \"$@\"\n")
    fake.chmod(0o755)
    out = root / "parsed"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
        rc = main(["parse", "--checkpoint", str(tiny["checkpoint"]), *map(str, videos), "--output-dir", str(out),
                   "--threshold", "0", "--quiet"])
    return rc, out


def _record(out: Path, name: str) -> dict:
    return json.loads((out / f"{name}.json").read_text())


@pytest.mark.parametrize("name,missing,kept,dropped", [
    (ODD, "audio", "visual", {"audio": 25, "audio_visual": 25}),
    ("sound only", "visual", "audio", {"visual": 25, "audio_visual": 25})])
def test_a_file_without_a_stream_claims_nothing_of_it(special, name, missing, kept, dropped):
    """At threshold 0 every class is on in every second of every modality; what needs the missing stream
    (audio-visual always does) is dropped and counted, and the page, the index and the PNG say so."""
    from PIL import Image

    rc, out = special
    r = _record(out, name)
    assert r["video"]["flags"][f"{missing}_missing"] and not r["video"]["flags"][f"{kept}_missing"]
    assert r["provenance"]["audio_reader"] == ("none: no audio stream" if missing == "audio" else "ffmpeg stream")
    assert len(r["events"]) == 25 and {e["modality"] for e in r["events"]} == {kept}
    assert r["suppressed"] == {"missing_streams": [missing], "modalities": sorted(dropped, key=["audio", "visual",
                               "audio_visual"].index), "events": dropped}
    page = (out / f"{name}.html").read_text()
    notice = re.search(r'<div class="notice" role="note" data-missing="(\w+)"><b>(.*?)</b>(.*?)</div>', page)
    assert notice and notice.group(1) == missing
    assert notice.group(2) == f"No {'audio' if missing == 'audio' else 'video'} stream: nothing is reported as " \
                              f"{'heard' if missing == 'audio' else 'seen'}."
    assert "50 such events were left out." in notice.group(3)
    legend = re.search(r'<div class="legend">(.*?)</div>', page).group(1)
    assert re.findall(r"</i>([\w-]+)</span>", legend) == [{"audio": "audio", "visual": "visual"}[kept]]
    assert f'data-modality="{missing}"' not in page and 'data-modality="audio_visual"' not in page  # no lane, no near miss
    index = (out / "index.html").read_text()
    card = index[index.index(f'data-video="{html.escape(name)}"'):]
    assert card[: card.index("</section>")].count(f'class="no-stream" data-missing="{missing}"') == 1
    # the PNG: one 0.27-inch line more than its lanes and title need, at 150 dpi
    assert Image.open(out / f"{name}.png").size[1] == round((1.15 + 0.36 * 25 + 0.27) * 150)


def test_a_video_failing_mid_way_fails_once_and_leaves_nothing(special):
    rc, out = special
    assert rc == 3
    rows = [ln.split("\t") for ln in (out / "failures.tsv").read_text().splitlines()]
    assert rows == [["filename", "stage", "reason"],
                    ["fails mid-way", "decode", "audio: Error while decoding stream #0:1: Invalid data found"]]
    assert not list(out.glob("fails mid-way.*"))
    assert "Not parsed (1)" in (out / "index.html").read_text()


def test_links_to_files_with_odd_names_resolve(special):
    """Every href and src of the page and the index, unquoted and resolved against its folder, names a file
    that is there (the page's JSON link was not quoted: '#' cut it)."""
    from urllib.parse import unquote, urlsplit

    _, out = special
    for page in (out / f"{ODD}.html", out / "index.html"):
        links = re.findall(r'(?:href|src)="([^"]+)"', page.read_text())
        assert links and all(not urlsplit(u).query and not urlsplit(u).fragment for u in links), links
        assert all((page.parent / unquote(html.unescape(u))).resolve().is_file() for u in links), links
    page = (out / f"{ODD}.html").read_text()
    assert f'href="{quote(ODD)}.json"' in page and f'src="../videos/{quote(ODD)}.mp4"' in page
    index = (out / "index.html").read_text()
    assert all(f'{attr}="{quote(ODD)}{ext}"' in index for attr, ext in (("href", ".html"), ("href", ".json"),
                                                                             ("href", ".png"), ("src", ".png")))


# --- the page in a real browser ------------------------------------------------------------------------
def _browser():
    """Headless Debian Chromium through its chromedriver, or a skip saying what is missing."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (it is in the test extra: pip install -e '.[test]')")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/install installs them)")
    opts = webdriver.ChromeOptions()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1200,1000", "--autoplay-policy=no-user-gesture-required"):
        opts.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="ecma-chromium-")
    opts.add_argument(f"--user-data-dir={profile}")
    opts.binary_location = chromium
    try:
        return webdriver.Chrome(options=opts, service=Service(driver)), profile
    except Exception as e:  # a driver that does not match the browser, a browser that cannot start
        shutil.rmtree(profile, ignore_errors=True)
        pytest.skip(f"chromium did not start under chromedriver ({type(e).__name__}: {str(e).splitlines()[0][:200]})")


def hand_record(video: Path, name: str = "clip", flags: dict | None = None, classes: list[str] = CLASSES) -> dict:
    """A 10-s record: Speech heard 2-6 s and seen 3-7 s (so audio-visual 3-6 s), Dog seen 0-3 s, Car heard 7-9 s
    (``classes`` renames the three)."""
    from ecma.parse.record import build_record
    from ecma.parse.windows import VideoProbabilities, plan_windows

    a, v = np.full((10, 3), 0.1), np.full((10, 3), 0.2)
    a[2:6, 0], v[3:7, 0], v[0:3, 1], a[7:9, 2] = 0.9, 0.8, 0.7, 0.95
    probs = VideoProbabilities(a, v, np.full((10, 3), 0.9), plan_windows(10, 10))
    events = extract_events(a, v, probs.video_gate, classes)
    return build_record(name=name, path=str(video), duration=10.0, segment_seconds=1.0, flags=flags or {}, classes=classes,
                        probs=probs, events=events, thresholds={"video": 0.5, "segment": 0.5}, window_source="test",
                        provenance={"checkpoint": "model.pt", "checkpoint_sha256": "0" * 64, "fingerprint": {},
                                    "ecma_version": "test", "variant": "ecma", "precision": "float32"})


def test_png_class_names_stay_clear_of_their_badges(tmp_path, monkeypatch):
    """LLP's longest class names are wider than the room between a lane's badge and the lane: each label must
    end up right of its badge (it overran it), on two lines where needed."""
    from matplotlib.patches import FancyBboxPatch

    from ecma.parse import timeline_png

    figures = []
    monkeypatch.setattr(timeline_png.plt, "close", figures.append)  # keep the figure to measure it
    classes = ["Telephone_bell_ringing", "Cat", "Basketball_bounce"]
    record = hand_record(tmp_path / "clip.mp4", classes=classes)
    timeline_png.plot_timeline(record, tmp_path / "clip.png")
    (fig,) = figures
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    badges = [a for a in ax.get_children() if isinstance(a, FancyBboxPatch)]
    labels = [t for t in ax.texts if t.get_text().replace("\n", " ") in {c.replace("_", " ") for c in classes}]
    assert len(labels) == len(badges) == 5
    for label, badge in zip(labels, badges):
        assert label.get_window_extent(renderer).x0 > badge.get_window_extent(renderer).x1, label.get_text()
    assert "Telephone\nbell ringing" in [t.get_text() for t in labels] and "Cat" in [t.get_text() for t in labels]
    assert (tmp_path / "clip.png").stat().st_size > 0


@needs_ffmpeg
@pytest.mark.parametrize("embed", [False, True], ids=["linked", "embedded"])
def test_page_in_chromium_seeks_to_a_clicked_event(tmp_path, embed):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from ecma.parse.page import write_page
    from ecma.parse.record import lanes

    video = make_video(tmp_path / "media" / "clip.mp4", seconds=10, size="96x64")  # H.264/AAC, as the demo's
    record = hand_record(video)
    assert lanes(record) == [("Dog", "visual"), ("Speech", "audio"), ("Speech", "visual"), ("Speech", "audio_visual"),
                             ("Car", "audio")]
    page = tmp_path / "out" / "clip.html"
    write_page(page, record, str(video), embed=embed)
    text = page.read_text()
    assert ('src="../media/clip.mp4"' in text) != embed and ("data:video/mp4;base64," in text) == embed
    browser, profile = _browser()
    try:
        browser.get(page.as_uri())
        WebDriverWait(browser, 20).until(lambda b: b.execute_script("return document.getElementById('video').readyState >= 1"))
        assert browser.execute_script("return document.getElementById('video').duration") == pytest.approx(10, abs=0.2)
        shown = [(el.get_attribute("data-class"), el.get_attribute("data-modality")) for el in browser.find_elements(By.CSS_SELECTOR, ".lane:not(.near)")]
        assert shown == lanes(record)  # one lane per detected class and modality
        # the strongest classes without events are folded away below them, unseen until opened
        near = browser.find_elements(By.CSS_SELECTOR, "details.near-misses .lane.near")
        assert [(el.get_attribute("data-class"), el.get_attribute("data-modality")) for el in near] == \
            [("Car", "visual"), ("Dog", "audio")]  # highest probability 0.2, then 0.1
        assert not any(el.is_displayed() or el.find_elements(By.CSS_SELECTOR, ".event") for el in near)
        # clicking the Car bar (onset 7 s) seeks the video there, and the cursor follows (7 of 10 s)
        bar = browser.find_element(By.CSS_SELECTOR, '.lane[data-class="Car"] .event')
        assert bar.get_attribute("data-onset") == "7.0"
        bar.click()
        WebDriverWait(browser, 10).until(lambda b: b.execute_script("return document.getElementById('video').currentTime") == 7.0)
        WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "cursor").get_attribute("style") == "left: 70%;")
        # a row of the events table (Speech heard from 2 s) does the same
        row = browser.find_elements(By.CSS_SELECTOR, "tbody tr")[1]
        assert "Speech" in row.text and "2.0 s" in row.text
        row.click()
        WebDriverWait(browser, 10).until(lambda b: b.execute_script("return document.getElementById('video').currentTime") == 2.0)
        # the page fetched nothing but itself and the video (no network)
        urls = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert all(u.startswith(("file:", "data:")) for u in urls), urls
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


@needs_ffmpeg
def test_page_in_chromium_says_the_audio_is_missing_and_its_links_resolve(tmp_path):
    """A video without sound, named with '#', '%', '?' and spaces: the rendered page shows the notice above the
    player and no audible lane, its JSON link opens the JSON, and the index shows the PNG and links the page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from ecma.io import write_json
    from ecma.parse.index import write_index
    from ecma.parse.page import write_page
    from ecma.parse.record import lanes
    from ecma.parse.timeline_png import plot_timeline

    video = make_video(tmp_path / "media" / f"{ODD}.mp4", seconds=10, size="96x64", audio=False)
    record = hand_record(video, ODD, {"audio_missing": True, "visual_missing": False})
    assert lanes(record) == [("Dog", "visual"), ("Speech", "visual")]  # Speech and Car heard: dropped
    assert record["suppressed"]["events"] == {"audio": 2, "audio_visual": 1}
    out = tmp_path / "out"
    page, data, png = (out / f"{ODD}{ext}" for ext in (".html", ".json", ".png"))
    write_page(page, record, str(video))
    write_json(data, record)
    plot_timeline(record, png)
    write_index(out / "index.html", [record], [], checkpoint="model.pt")
    browser, profile = _browser()
    try:
        browser.get(page.as_uri())
        notice = browser.find_element(By.CSS_SELECTOR, ".notice")
        assert notice.is_displayed() and notice.get_attribute("data-missing") == "audio"
        assert notice.text.startswith("No audio stream: nothing is reported as heard. This file has no audio stream")
        assert "3 such events were left out." in notice.text
        # above the player, where it is read first
        assert notice.location["y"] < browser.find_element(By.ID, "video").location["y"]
        # no audible lane, not even among the near misses: Dog and Speech seen, and Car seen below the thresholds
        assert [(el.get_attribute("data-class"), el.get_attribute("data-modality"))
                for el in browser.find_elements(By.CSS_SELECTOR, ".lane")] == [("Dog", "visual"), ("Speech", "visual"),
                                                                                ("Car", "visual")]
        assert [el.text for el in browser.find_elements(By.CSS_SELECTOR, ".card .legend span")] == \
            ["visual", "probability per second"]
        link = browser.find_element(By.XPATH, "//footer/a[contains(., '.json')]")
        assert link.get_attribute("href") == data.as_uri()  # resolved by the browser: the whole name, not cut at '#'
        link.click()
        WebDriverWait(browser, 10).until(lambda b: b.current_url == data.as_uri())
        assert json.loads(browser.find_element(By.TAG_NAME, "pre").text)["video"]["name"] == ODD
        browser.get((out / "index.html").as_uri())
        img = browser.find_element(By.CSS_SELECTOR, ".video img")
        WebDriverWait(browser, 10).until(lambda b: b.execute_script("return arguments[0].complete", img))
        assert browser.execute_script("return arguments[0].naturalWidth", img) == 1500  # the PNG loaded (10 in x 150 dpi)
        assert browser.find_element(By.CSS_SELECTOR, ".video h2 a").get_attribute("href") == page.as_uri()
        badge = browser.find_element(By.CSS_SELECTOR, ".video .no-stream")
        assert badge.is_displayed() and badge.text == "no audio stream: nothing is reported as heard"
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)
