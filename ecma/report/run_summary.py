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


def runs_frame(runs: Mapping[str, Sequence[Mapping]]) -> pd.DataFrame:
    """One row per (variant, metrics file): seed label, split, videos, commit, version, checkpoint, time."""
    rows = []
    for variant, metrics in runs.items():
        for i, m in enumerate(metrics):
            prov = m.get("provenance") or {}
            seeds = list((m.get("seeds") or {}).keys()) or [str(i)]
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


def run_summary_html(runs: Mapping[str, Sequence[Mapping]], title: str = "What was run") -> str:
    frame = runs_frame(runs)
    commits = sorted(set(frame["git_commit"])) if len(frame) else []
    versions = sorted(set(frame["ecma_version"])) if len(frame) else []
    fps = fingerprints(runs)
    facts = [
        ("variants", ", ".join(runs)),
        ("seeds per variant", ", ".join(f"{v}: {n}" for v, n in frame.groupby("variant", sort=False)["seeds"]
                                         .apply(lambda s: sum(len(x.split(", ")) for x in s)).items())),
        ("git commit", "; ".join(commits) + ("  (runs differ!)" if len(commits) > 1 else "")),
        ("ecma version", ", ".join(versions)),
        ("split", ", ".join(sorted(set(frame["split"].astype(str)))) if len(frame) else ""),
        ("videos scored", ", ".join(sorted({str(v) for v in frame["videos"]})) if len(frame) else ""),
    ]
    for i, fp in enumerate(fps):
        label = "feature fingerprint" + (f" #{i + 1}" if len(fps) > 1 else "")
        # one setting a line: a fingerprint is long, and read key by key
        facts.append((label, [f"{k}: {json.dumps(v)}" for k, v in sorted(fp.items())]))
    dd = lambda v: "<br>".join(html.escape(str(x)) for x in v) if isinstance(v, list) else html.escape(str(v))  # noqa: E731
    dl = "<dl>\n" + "\n".join(f"<dt>{html.escape(k)}</dt><dd>{dd(v)}</dd>" for k, v in facts) + "\n</dl>"
    table = frame.to_html(index=False, escape=True, border=0, classes="runs", justify="left") if len(frame) else ""
    note = ("<p class=\"note\">Taken from the <code>provenance</code> of each metrics file: the commit of the "
            "checkout the jobs ran from (<code>+dirty</code>: with local changes) and the extractor settings "
            "of the features they were scored on.</p>")
    return page(title, f"<h1>{html.escape(title)}</h1>\n{note}\n{dl}\n<h1 style=\"margin-top:20px\">Runs</h1>\n{table}")
