"""What was run, from the metrics files themselves: commit, package version, feature fingerprint, seeds.

The front page of ``snakemake --report`` can only read the config; the commit and the extractor's
fingerprint are what the jobs recorded in each metrics.json's ``provenance``, so they are shown from there.
"""

from __future__ import annotations

import html
import json
from typing import Mapping, Sequence

import pandas as pd

from ecma.report.html import page


def seed_labels(m: Mapping, position: int) -> list[str]:
    """The training seeds behind a metrics file: a summary's seeds, else the seed its model was trained with
    (recorded by ``ecma predict``), else its position among the variant's files."""
    if isinstance(m.get("seeds"), Mapping) and m["seeds"]:
        return [str(s) for s in m["seeds"]]
    prov = m.get("provenance") or {}
    seed = (prov.get("model") or {}).get("seed", ((prov.get("training_config") or {}).get("train") or {}).get("seed"))
    return [str(seed if seed is not None else position)]


def runs_frame(runs: Mapping[str, Sequence[Mapping]]) -> pd.DataFrame:
    """One row per (variant, metrics file): seed label, split, videos, commit, version, checkpoint, time."""
    rows = []
    for variant, metrics in runs.items():
        for i, m in enumerate(metrics):
            prov = m.get("provenance") or {}
            seeds = seed_labels(m, i)
            rows.append({
                "variant": variant,
                "seeds": ", ".join(seeds),
                "split": m.get("split", ""),
                "videos": m.get("num_videos"),
                "git_commit": prov.get("git_commit") or "unknown",
                "ecma_version": prov.get("ecma_version") or "unknown",
                "checkpoint": (prov.get("model") or {}).get("checkpoint", ""),
                "created_at": prov.get("created_at", ""),
            })
    return pd.DataFrame(rows)


def fingerprints(runs: Mapping[str, Sequence[Mapping]]) -> list[dict]:
    """The distinct feature fingerprints the runs were scored on (one, when all is well)."""
    seen: list[dict] = []
    for metrics in runs.values():
        for m in metrics:
            fp = (m.get("provenance") or {}).get("feature_fingerprint")
            if fp and fp not in seen:
                seen.append(fp)
    return seen


def _distinct(values: list) -> list:
    out: list = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def _features(fp: Mapping) -> str:
    """What the models read, from a feature fingerprint: published features, or the encoders and their weights."""
    if fp.get("source") == "import":
        return f"published features, format {fp.get('format')} (imported)"

    def encoder(side: Mapping) -> str:
        weights = side.get("weights")
        if weights == "random-init":
            how = f"randomly initialised (seed {side.get('seed')})"
        elif weights == "file":
            how = f"weights sha256 {str(side.get('sha256'))[:12]}..."
        else:
            how = str(weights)
        return f"{side.get('model')} ({how})"

    return f"visual {encoder(fp.get('visual') or {})}; audio {encoder(fp.get('audio') or {})}"


def recorded_settings(runs: Mapping[str, Sequence[Mapping]]) -> list[tuple[str, list[str]]]:
    """What trained and scored the models, as their metrics files recorded it (the checkpoints' own settings,
    carried through the predictions): one line per distinct value, never what a config file says now."""
    configs, evaluations = [], []
    for metrics in runs.values():
        for m in metrics:
            prov = m.get("provenance") or {}
            if prov.get("training_config"):
                configs.append(prov["training_config"])
            if prov.get("evaluation"):
                evaluations.append(prov["evaluation"])
    facts: list[tuple[str, list[str]]] = []
    if configs:
        training = _distinct([
            f"{c['train']['epochs']} epochs, batch size {c['train']['batch_size']}, learning rate {c['train']['lr']:g} "
            f"(x{c['train']['lr_gamma']:g} every {c['train']['lr_step_epochs']} epochs)" for c in configs])
        models = _distinct([
            f"{c['model']['backbone']} backbone: d_model {c['model']['d_model']}, {c['model']['num_layers']} layer(s), "
            f"{c['model']['num_heads']} head(s), {c['model']['num_classes']} classes" for c in configs])
        facts += [("training", training), ("model", models)]
    if evaluations:
        facts.append(("evaluation", _distinct([
            f"protocol {e.get('protocol')}, video threshold {e.get('video_threshold')}, segment threshold "
            f"{e.get('segment_threshold')}" for e in evaluations])))
    feats = _distinct([_features(fp) for fp in fingerprints(runs)])
    if feats:
        facts.append(("features", feats))
    return facts


def run_summary_html(runs: Mapping[str, Sequence[Mapping]], title: str = "What was run") -> str:
    frame = runs_frame(runs)
    commits = sorted(set(frame["git_commit"])) if len(frame) else []
    versions = sorted(set(frame["ecma_version"])) if len(frame) else []
    fps = fingerprints(runs)
    facts = [
        ("variants", ", ".join(runs)),
        ("seeds", "; ".join(f"{v}: {', '.join(s)}" for v, s in frame.groupby("variant", sort=False)["seeds"]
                            .apply(lambda labels: [x for label in labels for x in label.split(", ")]).items())),
        ("git commit", "; ".join(commits) + ("  (runs differ!)" if len(commits) > 1 else "")),
        ("ecma version", ", ".join(versions)),
        ("split", ", ".join(sorted(set(frame["split"].astype(str)))) if len(frame) else ""),
        ("videos scored", ", ".join(sorted({str(v) for v in frame["videos"]})) if len(frame) else ""),
        *recorded_settings(runs),
    ]
    for i, fp in enumerate(fps):
        label = "feature fingerprint" + (f" #{i + 1}" if len(fps) > 1 else "")
        # one setting a line: a fingerprint is long, and read key by key
        facts.append((label, [f"{k}: {json.dumps(v)}" for k, v in sorted(fp.items())]))
    dd = lambda v: "<br>".join(html.escape(str(x)) for x in v) if isinstance(v, list) else html.escape(str(v))  # noqa: E731
    dl = "<dl>\n" + "\n".join(f"<dt>{html.escape(k)}</dt><dd>{dd(v)}</dd>" for k, v in facts) + "\n</dl>"
    table = frame.to_html(index=False, escape=True, border=0, classes="runs", justify="left") if len(frame) else ""
    note = ("<p class=\"note\">Taken from the <code>provenance</code> of each metrics file: the seeds and settings "
            "each model was trained with (its checkpoint's own), the thresholds that scored it, the commit of the "
            "checkout the jobs ran from (<code>+dirty</code>: with local changes) and the extractor settings "
            "of the features they were scored on.</p>")
    return page(title, f"<h1>{html.escape(title)}</h1>\n{note}\n{dl}\n<h1 style=\"margin-top:20px\">Runs</h1>\n{table}")
