"""The report: seeds summarised and the ablation with mean ± std (checked against numpy), the baseline of
predicting nothing (checked by counting), the per-class chart, the timelines, the CLI contract, and the
pages rendered by a real headless Chromium where it is installed."""

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ecma.cli import build_parser, main
from ecma.data.classes import LLP_CLASSES
from ecma.evaluation.metrics import MODALITIES
from ecma.evaluation.predictions import Predictions, write_predictions
from ecma.report.ablation import ablation_frame, ablation_outputs
from ecma.report.baseline import nothing_predicted
from ecma.report.seeds import summarize_seeds
from ecma.report.timelines import timelines_of

LEVELS = ("segment", "event")
T = 10


def fake_metrics(rng, split="test.csv", n_videos=16):
    """A metrics dict of `ecma evaluate`'s schema with random numbers (type_av consistent with A, V, AV)."""
    m = {"num_videos": n_videos, "split": split, "thresholds": {"video": 0.5, "segment": 0.5}}
    for level in LEVELS:
        a, v, av, ev = rng.uniform(0, 100, size=4)
        m[level] = {"audio": a, "visual": v, "audio_visual": av, "type_av": (a + v + av) / 3, "event_av": ev}
    m["per_class"] = {level: {mod: {c: (None if i >= 6 else float(rng.uniform(0, 100))) for i, c in enumerate(LLP_CLASSES)}
                              for mod in ("audio", "visual", "audio_visual", "event_av")} for level in LEVELS}
    m["provenance"] = {"git_commit": "abc123", "ecma_version": "0.1.0", "feature_fingerprint": {"visual_model": "ViT-B-32"},
                       "model": {"checkpoint": "results/demo/models/ecma/model.pt"}}
    return m


@pytest.fixture
def runs():
    rng = np.random.default_rng(7)
    return {"ecma": [fake_metrics(rng) for _ in range(3)], "han": [fake_metrics(rng) for _ in range(2)],
            "no_cma": [fake_metrics(rng)]}


def test_summary_is_the_mean_and_sample_std_over_seeds(runs):
    per_seed = {str(s): m for s, m in zip((0, 1, 2), runs["ecma"])}
    summary = summarize_seeds(per_seed)
    for level in LEVELS:
        for key in MODALITIES:
            values = np.array([m[level][key] for m in runs["ecma"]])
            assert summary[level][key] == pytest.approx(values.mean(), abs=1e-12)
            assert summary["std"][level][key] == pytest.approx(values.std(ddof=1), abs=1e-12)
            assert [summary["seeds"][s][level][key] for s in "012"] == list(values)
    assert summary["num_seeds"] == 3 and summary["num_videos"] == 16 and summary["provenance"]["git_commit"] == "abc123"
    c = LLP_CLASSES[2]
    assert summary["per_class"]["segment"]["audio"][c] == pytest.approx(
        np.mean([m["per_class"]["segment"]["audio"][c] for m in runs["ecma"]]))
    assert summary["per_class"]["segment"]["audio"][LLP_CLASSES[20]] is None
    one = summarize_seeds({"5": runs["no_cma"][0]})
    assert one["segment"] == runs["no_cma"][0]["segment"] and all(v == 0.0 for v in one["std"]["event"].values())


def test_seeds_of_different_splits_are_refused(runs):
    from ecma.errors import EcmaError

    other = dict(runs["ecma"][1], split="val.csv")
    with pytest.raises(EcmaError, match="seed 1: split is 'val.csv' but seed 0 has 'test.csv'"):
        summarize_seeds({"0": runs["ecma"][0], "1": other})


def test_ablation_frame_equals_numpy(runs):
    frame = ablation_frame(runs)
    assert list(frame.index) == ["ecma", "han", "no_cma"]
    for variant, metrics in runs.items():
        for level in LEVELS:
            for key in MODALITIES:
                values = np.array([m[level][key] for m in metrics])
                assert frame.loc[variant, (level, key, "mean")] == pytest.approx(values.mean(), abs=1e-12)
                expected_std = values.std(ddof=1) if len(values) > 1 else 0.0
                assert frame.loc[variant, (level, key, "std")] == pytest.approx(expected_std, abs=1e-12)
                assert frame.loc[variant, (level, key, "n")] == len(values)


def test_ablation_markdown_json_and_html(runs):
    baseline = fake_metrics(np.random.default_rng(1))
    md, html, table = ablation_outputs(runs, baseline)
    seg_a = np.array([m["segment"]["audio"] for m in runs["ecma"]])
    assert f"| ecma | {seg_a.mean():.2f} ± {seg_a.std(ddof=1):.2f} |" in md
    single = runs["no_cma"][0]["segment"]["audio"]
    assert f"| no_cma | {single:.2f} |" in md  # one seed: no spread shown
    assert f"| *nothing predicted* | {baseline['segment']['audio']:.2f} |" in md
    assert md.splitlines()[-1].endswith("| – |") and "ddof=1" in md
    assert list(table["variants"]) == ["ecma", "han", "no_cma"]
    assert table["variants"]["ecma"]["segment"]["audio"] == pytest.approx(seg_a.mean())
    assert table["std"]["ecma"]["segment"]["audio"] == pytest.approx(seg_a.std(ddof=1))
    assert table["std"]["no_cma"]["event"]["type_av"] == 0.0
    assert table["seeds"] == {"ecma": ["0", "1", "2"], "han": ["0", "1"], "no_cma": ["0"]}
    assert table["baseline"]["event"]["event_av"] == baseline["event"]["event_av"]
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html and "http" not in html  # self-contained
    assert html.count('class="best"') + html.count(' best"') >= len(LEVELS) * len(MODALITIES)
    assert "nothing predicted" in html and f"{seg_a.mean():.2f}" in html


def test_the_papers_figures_follow_ours_in_their_own_table_on_llp_only(runs):
    """Table 3's printed figures (one decimal), headed as the paper's, after our table and never among its rows;
    JSON under ``paper``; only for LLP datasets and the benchmark's columns."""
    baseline = fake_metrics(np.random.default_rng(1))
    ours_md, ours_html, ours_json = ablation_outputs(runs, baseline)
    md, page, table = ablation_outputs(runs, baseline, "llp_valor")
    head, theirs = md.split("\n## The paper's figures (not ours)\n")
    assert head == ours_md  # our table is untouched, the paper's comes after it
    assert "E-CMANet, arXiv 2509.14097, Table 3" in theirs and "Not computed by this project" in theirs
    rows = [line for line in theirs.splitlines() if line.startswith("| ") and not line.startswith("| variant")]
    # no_cma and ecma are in the runs (han has no Table 3 row); Table 3's order; the paper's decimals
    assert rows == ["| no_cma | 65.4 | 68.2 | 60.4 | 64.7 | 64.4 | 54.4 | 64.7 | 52.3 | 57.2 | 53.8 | w/o CMA |",
                    "| ecma | 66.1 | 69.9 | 61.7 | 65.9 | 65.4 | 54.5 | 66.6 | 53.5 | 58.2 | 54.3 | E-CMANet |"]
    assert table == {**ours_json, "paper": {
        "source": "E-CMANet, arXiv 2509.14097, Table 3 (LLP test split, CoLeaF backbone on CLIP/CLAP features), as printed",
        "variants": {"no_cma": {"name": "w/o CMA",
                                "segment": {"audio": 65.4, "visual": 68.2, "audio_visual": 60.4, "type_av": 64.7, "event_av": 64.4},
                                "event": {"audio": 54.4, "visual": 64.7, "audio_visual": 52.3, "type_av": 57.2, "event_av": 53.8}},
                     "ecma": {"name": "E-CMANet",
                              "segment": {"audio": 66.1, "visual": 69.9, "audio_visual": 61.7, "type_av": 65.9, "event_av": 65.4},
                              "event": {"audio": 54.5, "visual": 66.6, "audio_visual": 53.5, "type_av": 58.2, "event_av": 54.3}}}}}
    ours_part, papers_part = page.split("<h2>The paper's figures (not ours)</h2>")
    assert ours_part.count('class="paper"') == 0 and "best" not in papers_part  # bold marks only our means
    assert papers_part.count('<tr class="paper">') == 2 and "<td class=\"num sep\">65.4</td>" in papers_part
    assert "the paper's E-CMANet" in papers_part and "as printed" in papers_part
    for other in ("demo", "unav100", "mine"):
        assert ablation_outputs(runs, baseline, other) == (ours_md, ours_html, ours_json)
    av_only = {v: [{"split": "t", "protocol": "unav100-av", **{lv: {"audio_visual": 50.0} for lv in LEVELS}}] for v in ("ecma",)}
    md, page, table = ablation_outputs(av_only, None, "llp_unav_named")  # not the paper's columns: not shown
    assert "paper" not in table and "paper's figures" not in md + page


def test_summaries_and_per_seed_files_give_the_same_ablation(runs):
    summaries = {v: [summarize_seeds({str(i): m for i, m in enumerate(ms)})] for v, ms in runs.items()}
    a, b = ablation_frame(runs), ablation_frame(summaries)
    assert np.allclose(a.to_numpy(dtype=float), b.to_numpy(dtype=float))


# -- a small split with truth and predictions, in the real file formats ---------------------------------

def write_tsv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(header)
        w.writerows(rows)


@pytest.fixture
def split(tmp_path):
    """12 videos; truth: random runs of a few classes; predictions: the truth with noise, some errors."""
    rng = np.random.default_rng(3)
    names = [f"vid{i:02d}" for i in range(12)]
    gt = {"audio": np.zeros((12, 25, T), bool), "visual": np.zeros((12, 25, T), bool)}
    rows = {"audio": [], "visual": []}
    labels = []
    for n, name in enumerate(names):
        vid_labels = set()
        for modality in ("audio", "visual"):
            for _ in range(0 if n in (3, 7) and modality == "audio" else int(rng.integers(1, 3))):
                c = int(rng.integers(0, 8))
                on = int(rng.integers(0, 8))
                off = int(rng.integers(on + 1, T + 1))
                gt[modality][n, c, on:off] = True
                rows[modality].append((name, on, off, LLP_CLASSES[c]))
                vid_labels.add(LLP_CLASSES[c])
        labels.append((name, ",".join(sorted(vid_labels))))
    write_tsv(tmp_path / "test.csv", ["filename", "event_labels"], labels)
    write_tsv(tmp_path / "eval_audio.csv", ["filename", "onset", "offset", "event_labels"], rows["audio"])
    write_tsv(tmp_path / "eval_visual.csv", ["filename", "onset", "offset", "event_labels"], rows["visual"])
    prob = {m: np.clip(g.transpose(0, 2, 1) * 0.7 + rng.uniform(0, 0.45, size=(12, T, 25)), 0, 1) for m, g in gt.items()}
    video_prob = np.clip(np.maximum(gt["audio"].any(2), gt["visual"].any(2)) * 0.6 + rng.uniform(0, 0.5, (12, 25)), 0, 1)
    write_predictions(tmp_path / "pred.h5", Predictions(names, list(LLP_CLASSES), video_prob.astype(np.float32),
                                                        prob["audio"].astype(np.float32), prob["visual"].astype(np.float32)))
    return {"dir": tmp_path, "names": names, "gt": gt, "prob": prob, "video_prob": video_prob,
            "csv": [str(tmp_path / f) for f in ("test.csv", "eval_audio.csv", "eval_visual.csv")]}


def test_nothing_predicted_scores_the_videos_without_events(split):
    """All-zero predictions: a video scores 1 in a modality without any true event there, else 0."""
    base = nothing_predicted(*split["csv"], classes=LLP_CLASSES)
    a, v = split["gt"]["audio"].any(axis=(1, 2)), split["gt"]["visual"].any(axis=(1, 2))
    av = (split["gt"]["audio"] & split["gt"]["visual"]).any(axis=(1, 2))
    expected = {"audio": 100 * np.mean(~a), "visual": 100 * np.mean(~v), "audio_visual": 100 * np.mean(~av),
                "event_av": 100 * np.mean(~(a | v))}
    expected["type_av"] = (expected["audio"] + expected["visual"] + expected["audio_visual"]) / 3
    for level in LEVELS:
        for key, value in expected.items():
            assert base[level][key] == pytest.approx(value)
    assert base["segment"]["audio"] == pytest.approx(100 * 2 / 12)  # vid03 and vid07 are silent


def test_timelines_binarise_with_the_benchmark_rule(split):
    videos = timelines_of(*[split["dir"] / "pred.h5", *split["csv"]], n_videos=3, video_threshold=0.6, segment_threshold=0.55)
    busy = split["gt"]["audio"].sum(axis=(1, 2)) + split["gt"]["visual"].sum(axis=(1, 2))
    expected_names = [split["names"][i] for i in sorted(range(12), key=lambda i: (-busy[i], i))[:3]]
    assert [v.filename for v in videos] == expected_names
    for video in videos:
        n = split["names"].index(video.filename)
        for modality in ("audio", "visual"):
            gated = (split["prob"][modality][n].T >= 0.55) & (split["video_prob"][n][:, None] >= 0.6)
            assert np.array_equal(video.predicted[modality], gated)
            assert np.array_equal(video.truth[modality], split["gt"][modality][n])


def png_size(path):
    with Image.open(path) as im:
        im.load()
        return im.size


def test_cli_contract(split, runs, tmp_path, capsys):
    d = split["dir"]
    paths = {}
    for variant, metrics in runs.items():
        for i, m in enumerate(metrics):
            p = tmp_path / f"{variant}-{i}.json"
            p.write_text(json.dumps(m))
            paths.setdefault(variant, []).append(p)
    # summarize: one variant's seeds
    assert main(["summarize", "--quiet", "--metrics", *[f"{i}={p}" for i, p in enumerate(paths["ecma"])],
                 "--output", str(tmp_path / "ecma.json")]) == 0
    summary = json.loads((tmp_path / "ecma.json").read_text())
    assert set(summary["seeds"]) == {"0", "1", "2"} and "std" in summary
    # baseline, then the ablation with a variant given once per seed
    assert main(["baseline", "--split", split["csv"][0], "--eval-audio", split["csv"][1], "--eval-visual", split["csv"][2],
                 "--output", str(tmp_path / "nothing.json")]) == 0
    metrics_args = [f"{v}={p}" for v, ps in paths.items() for p in ps]
    assert main(["ablation", "--quiet", "--metrics", *metrics_args, "--baseline", str(tmp_path / "nothing.json"),
                 "--output-md", str(tmp_path / "a.md"), "--output-json", str(tmp_path / "a.json"),
                 "--output-html", str(tmp_path / "a.html")]) == 0
    table = json.loads((tmp_path / "a.json").read_text())
    assert table["seeds"]["ecma"] == ["0", "1", "2"] and "baseline" in table
    assert "nothing predicted" in (tmp_path / "a.md").read_text() and "paper" not in table
    assert main(["ablation", "--quiet", "--metrics", *metrics_args, "--dataset", "llp", "--output-md", str(tmp_path / "l.md"),
                 "--output-json", str(tmp_path / "l.json")]) == 0
    assert list(json.loads((tmp_path / "l.json").read_text())["paper"]["variants"]) == ["no_cma", "ecma"]
    assert "## The paper's figures (not ours)" in (tmp_path / "l.md").read_text()
    # figures
    assert main(["per-class-chart", "--quiet", "--metrics", *metrics_args, "--output", str(tmp_path / "per_class.png")]) == 0
    best = max(runs, key=lambda v: np.mean([m["segment"]["type_av"] for m in runs[v]]))
    assert f"per-class F1 of {best}" in capsys.readouterr().err
    assert main(["timelines", "--quiet", "--predictions", str(d / "pred.h5"), "--split", split["csv"][0],
                 "--eval-audio", split["csv"][1], "--eval-visual", split["csv"][2], "--videos", "3",
                 "--output", str(tmp_path / "timelines.png")]) == 0
    assert main(["run-summary", "--quiet", "--metrics", *metrics_args, "--output", str(tmp_path / "run.html")]) == 0
    assert "abc123" in (tmp_path / "run.html").read_text()
    w, h = png_size(tmp_path / "per_class.png")
    assert w > 600 and h > 300
    w, h = png_size(tmp_path / "timelines.png")
    assert w > 800 and h > 400


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["summarize", "--metrics", f"0={tmp_path / 'nope.json'}", "--output", str(tmp_path / "s.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"ecma summarize: error: {tmp_path / 'nope.json'}: metrics file of seed 0 not found"
    (tmp_path / "bad.json").write_text('{"segment": {}}')
    assert main(["ablation", "--metrics", f"ecma={tmp_path / 'bad.json'}", "--output-md", str(tmp_path / "a.md"),
                 "--output-json", str(tmp_path / "a.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "segment.audio is missing" in err
    assert not (tmp_path / "a.md").exists()


def test_report_subcommands_have_descriptions_and_help_everywhere():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    for name in ("ablation", "summarize", "baseline", "per-class-chart", "timelines", "run-summary"):
        sp = subparsers[name]
        assert sp.description and "example:" in (sp.epilog or ""), name
        for action in sp._actions:
            assert action.help, f"ecma {name} {action.option_strings} has no help"


# -- the pages in a real browser ----------------------------------------------------------------------

def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(chromium() is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
def test_pages_render_in_headless_chromium(split, runs, tmp_path):
    from ecma.report.per_class import plot_per_class
    from ecma.report.timelines import plot_timelines

    from ecma.report.run_summary import run_summary_html

    _, html, _ = ablation_outputs(runs, fake_metrics(np.random.default_rng(1)))
    (tmp_path / "ablation.html").write_text(html)
    (tmp_path / "run.html").write_text(run_summary_html(runs))
    plot_per_class(summarize_seeds({"0": runs["ecma"][0], "1": runs["ecma"][1]}), tmp_path / "per_class.png", title="ecma")
    plot_timelines(timelines_of(split["dir"] / "pred.h5", *split["csv"], n_videos=2), tmp_path / "timelines.png")
    (tmp_path / "figures.html").write_text(
        "<!DOCTYPE html><html><body style='margin:0;background:#fff'>"
        "<img src='per_class.png' style='width:580px'><img src='timelines.png' style='width:600px'></body></html>")
    for page in ("ablation", "run", "figures"):
        shot = tmp_path / f"{page}.png.shot.png"
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / ('profile-' + page)}", f"--screenshot={shot}", "--window-size=1200,900",
               "--hide-scrollbars", (tmp_path / f"{page}.html").as_uri()]
        subprocess.run(cmd, capture_output=True, timeout=60, env={**os.environ, "HOME": str(tmp_path)})
        assert shot.is_file(), f"Chromium wrote no screenshot of {page}.html"
        with Image.open(shot) as im:
            pixels = np.asarray(im.convert("L"))
        assert pixels.shape == (900, 1200)
        # not blank: a real share of the page is drawn (text, bars), not only the white background
        assert (pixels < 200).mean() > 0.01, f"{page}.html rendered (nearly) blank"
        if os.environ.get("ECMA_KEEP_SCREENSHOTS"):
            shutil.copy(shot, Path(os.environ["ECMA_KEEP_SCREENSHOTS"]) / shot.name)


# -- the front page and the captions, rendered as `snakemake --report` renders them -------------------

REPORT_DIR = Path(__file__).resolve().parent.parent / "workflow" / "report"
CAPTIONS = ("metrics", "ablation", "per_class", "timelines", "curves", "run")


class FakeResult:
    """What the report templates may read of a result file (snakemake.report.FileRecord's path, target)."""

    def __init__(self, path):
        self.path = Path(path)
        self.target = self.path.name


def render_rst(path, snakemake_object, files):
    """Jinja2 with Snakemake's settings, Snakemake's link block appended, then docutils to HTML."""
    import textwrap

    from docutils.core import publish_parts
    from jinja2 import Environment

    links = "\n\n" + "\n".join(f".. _{f.target}: javascript:app.showResultInfo('{f.path}')" for f in files) + "\n"
    text = Environment(trim_blocks=True, lstrip_blocks=True).from_string(path.read_text() + textwrap.dedent(links))
    rst = text.render(snakemake=snakemake_object, categories={}, files=files)
    html = publish_parts(rst, writer="html", settings_overrides={"report_level": 5})["html_body"]
    return rst, html


def assert_clean_rst(rst, name):
    """docutils accepts it without a single warning (a warning would show as a red box in the report)."""
    import io

    from docutils.core import publish_doctree

    warnings = io.StringIO()
    publish_doctree(rst, settings_overrides={"warning_stream": warnings, "report_level": 2})
    assert warnings.getvalue() == "", f"{name}: {warnings.getvalue()}"


@pytest.fixture
def workflow_config():
    import yaml

    return yaml.safe_load((REPORT_DIR.parent.parent / "config.yaml").read_text())


def test_front_page_says_what_was_run(workflow_config):
    files = [FakeResult(p) for p in ("results/demo/metrics.json", "results/demo/ablation.html", "results/demo/report/run.html")]
    snakemake_object = type("Snakemake", (), {"config": workflow_config})
    rst, html = render_rst(REPORT_DIR / "workflow.rst", snakemake_object, files)
    assert_clean_rst(rst, "workflow.rst")
    # the demo's own seeds (its overrides), not the top-level setting, which says 0 alone
    assert workflow_config["train"]["seeds"] == [0]
    assert "coleaf, no_cma, no_ema, ecma" in html and "seeds\n  0, 1, 2" in rst
    assert "<tt class=\"docutils literal\">benchmark</tt> protocol" in html
    assert "ViT-B-32" in html and "HTSAT-tiny" in html and "randomly initialised" in html
    assert "48 training" in html
    assert "llp" not in html.replace("LLP", "")  # only the datasets in the report
    assert "run.html" in html and "showResultInfo" in html  # the link to the commit and fingerprint page
    assert "mailto:" not in html


def test_front_page_without_seeds_or_run_page(workflow_config):
    del workflow_config["train"]["seeds"]
    snakemake_object = type("Snakemake", (), {"config": workflow_config})
    rst, html = render_rst(REPORT_DIR / "workflow.rst", snakemake_object, [FakeResult("results/llp/metrics.json")])
    assert_clean_rst(rst, "workflow.rst")
    assert "seeds\n  0;" in rst and "ViT-L-14-quickgelu" in html and "weights openai" in html
    assert "provenance" in html


def test_front_page_gives_each_dataset_its_own_evaluation(workflow_config):
    files = [FakeResult("results/unav_demo/metrics.json")]
    snakemake_object = type("Snakemake", (), {"config": workflow_config})
    rst, html = render_rst(REPORT_DIR / "workflow.rst", snakemake_object, files)
    assert_clean_rst(rst, "workflow.rst")
    # unav_demo overrides the protocol to CoLeaF's (thresholds 0.52 and 0.25), and trains one seed
    assert "<tt class=\"docutils literal\">coleaf</tt> protocol" in html and "0.52" in html and "0.25" in html
    assert "seeds\n  0;" in rst
    # its features are generated and imported: no encoder runs, none is named
    assert "UnAV-100-format features (imported" in html and "ViT" not in html and "HTSAT" not in html
    files = [FakeResult("results/llp_valor/metrics.json")]
    rst, html = render_rst(REPORT_DIR / "workflow.rst", snakemake_object, files)
    assert_clean_rst(rst, "workflow.rst")
    assert "published <tt class=\"docutils literal\">valor</tt>" in html and "ViT" not in html


@pytest.mark.parametrize("name", CAPTIONS)
def test_every_caption_renders(name, workflow_config):
    from snakemake.iocontainers import Wildcards

    for wildcards in ({"dataset": "demo", "variant": "han"}, {"dataset": "demo", "variant": "han", "seed": "2"}):
        # what a caption can read: snakemake.wildcards and snakemake.config (as snakemake.report gives them)
        snakemake_object = type("Snakemake", (), {"config": workflow_config, "wildcards": Wildcards(fromdict=wildcards)})
        rst, html = render_rst(REPORT_DIR / f"{name}.rst", snakemake_object, [])
        assert_clean_rst(rst, f"{name}.rst")
        assert "demo" in html and len(html) > 300
        assert "mailto:" not in html  # docutils reads a bare Type@AV as an e-mail address
    if name == "curves":
        assert "seed 2" in html


def test_ablation_caption_says_the_protocol_and_the_av_only_columns(workflow_config):
    from snakemake.iocontainers import Wildcards

    def caption(dataset):
        snakemake_object = type("Snakemake", (), {"config": workflow_config, "wildcards": Wildcards(fromdict={"dataset": dataset})})
        rst, html = render_rst(REPORT_DIR / "ablation.rst", snakemake_object, [])
        assert_clean_rst(rst, "ablation.rst")
        return html

    demo, unav = caption("demo"), caption("unav_demo")
    assert "<tt class=\"docutils literal\">benchmark</tt> evaluation protocol" in demo and "audio-visual F1 alone" not in demo
    # the UnAV-format demo: its own protocol (config.yaml overrides it to coleaf) and only AV columns
    assert "<tt class=\"docutils literal\">coleaf</tt> evaluation protocol" in unav and "audio-visual F1 alone" in unav
    assert "mailto:" not in unav  # docutils reads a bare Type@AV as an e-mail address


def test_the_run_page_states_what_the_records_say(tmp_path):
    """Seeds, training settings, thresholds and features on run.html come from each metrics file's provenance
    (the checkpoint's own settings), not from a position or a config file."""
    from ecma.config import config_from_dict
    from ecma.report.run_summary import run_summary_html

    rng = np.random.default_rng(3)
    runs = {}
    for variant, seeds in (("ecma", (3, 7)), ("coleaf", (3, 7))):
        runs[variant] = []
        for seed in seeds:
            m = fake_metrics(rng)
            cfg = config_from_dict({"train": {"epochs": 40, "lr": 0.002, "seed": seed, "variant": variant},
                                    "model": {"d_model": 128, "num_layers": 2, "num_heads": 4}})
            m["provenance"]["model"]["seed"] = seed
            m["provenance"]["training_config"] = cfg.to_dict()
            m["provenance"]["evaluation"] = {"protocol": "benchmark", "video_threshold": 0.5, "segment_threshold": 0.5}
            m["provenance"]["feature_fingerprint"] = {
                "visual": {"model": "open_clip/ViT-B-32", "weights": "random-init", "seed": 0},
                "audio": {"model": "laion_clap/HTSAT-tiny", "weights": "file", "sha256": "ab" * 32}}
            runs[variant].append(m)
    page = run_summary_html(runs)
    assert "ecma: 3, 7; coleaf: 3, 7" in page  # the seeds trained, not the files' positions 0, 1
    assert "40 epochs, batch size 128, learning rate 0.002" in page
    assert "coleaf backbone: d_model 128, 2 layer(s), 4 head(s), 25 classes" in page
    assert "protocol benchmark, video threshold 0.5, segment threshold 0.5" in page
    assert "open_clip/ViT-B-32 (randomly initialised (seed 0))" in page and "sha256 abababababab..." in page
