"""The ablation over variants and seeds: a pandas frame of mean and std, and its Markdown, HTML and JSON.

Input: {variant: [metrics dict, ...]}, one dict per seed; a dict that is itself a seed summary (a
``seeds`` block, from :func:`ecma.report.seeds.summarize_seeds`) counts as its seeds. Spread: sample
standard deviation over seeds (ddof=1), 0 for a variant with one seed (shown without "±").

For an LLP dataset the paper's own figures for the same variants (its Table 3, :mod:`ecma.evaluation.paper`)
follow in a table of their own, headed and captioned as the paper's and printed as the paper prints them
(one decimal), never as rows of ours; the JSON keeps them under ``paper``.
"""

from __future__ import annotations

import html
from typing import Mapping, Sequence

import pandas as pd

from ecma import registry
from ecma.errors import EcmaError
from ecma.evaluation import paper
from ecma.report.html import page
from ecma.report.seeds import AV_ONLY_KEYS, LEVELS, check_metrics, expand_seeds, mean_std, metric_keys

SHORT = {"audio": "A", "visual": "V", "audio_visual": "AV", "type_av": "Type@AV", "event_av": "Event@AV"}
LEVEL_SHORT = {"segment": "seg", "event": "evt"}


def description(variant: str) -> str:
    """The short description of a variant's row (its backbone registered it; ecma.registry); '' for others."""
    known = registry.variants()
    return known[variant].label if variant in known else ""


BASELINE_NAME = "nothing predicted"


def variant_seeds(runs: Mapping[str, Sequence[Mapping]]) -> dict[str, dict[str, dict]]:
    """{variant: {seed label: {segment, event}}}; plain metrics are labelled by their position."""
    out: dict[str, dict[str, dict]] = {}
    for variant, metrics in runs.items():
        if not metrics:
            raise EcmaError(f"variant {variant!r}: no metrics given")
        seeds: dict[str, dict] = {}
        for i, m in enumerate(metrics):
            check_metrics(m, f"variant {variant!r}, metrics #{i + 1}")
            expanded = expand_seeds(m)
            if "seeds" not in m:
                expanded = {str(len(seeds)): next(iter(expanded.values()))}
            for seed, block in expanded.items():
                if seed in seeds:
                    raise EcmaError(f"variant {variant!r}: seed {seed} is given twice")
                seeds[seed] = block
        out[variant] = seeds
    return out


def ablation_frame(runs: Mapping[str, Sequence[Mapping]]) -> pd.DataFrame:
    """Mean, std (ddof=1) and number of seeds per variant and metric.

    Index: variant (in the order given); columns: MultiIndex (level, metric, stat) with stat one of
    ``mean``, ``std``, ``n``.
    """
    frames = []
    names = _keys_of_runs(runs)
    for variant, seeds in variant_seeds(runs).items():
        rows = [(variant, seed, level, key, float(block[level][key]))
                for seed, block in seeds.items() for level in LEVELS for key in names]
        frames.append(pd.DataFrame(rows, columns=["variant", "seed", "level", "metric", "value"]))
    stats = mean_std(pd.concat(frames, ignore_index=True), ["variant", "level", "metric"])
    wide = stats.unstack(["level", "metric"]).reorder_levels([1, 2, 0], axis=1)
    columns = pd.MultiIndex.from_tuples(
        [(level, key, stat) for level in LEVELS for key in names for stat in ("mean", "std", "n")],
        names=["level", "metric", "stat"],
    )
    frame = wide.reindex(columns=columns)
    frame.index.name = "variant"
    return frame


def _keys_of_runs(runs: Mapping[str, Sequence[Mapping]]) -> tuple[str, ...]:
    """The metrics the runs carry (all alike): the benchmark's five, or AV alone for AV-only datasets."""
    keys = {metric_keys(m) for metrics in runs.values() for m in metrics}
    if len(keys) != 1:
        raise EcmaError("the variants' metrics come from different protocols (AV-only and benchmark): not one table")
    return keys.pop()


def _keys_of(frame: pd.DataFrame) -> tuple[str, ...]:
    return tuple(dict.fromkeys(frame.columns.get_level_values("metric")))


def _protocol(names: tuple[str, ...]) -> str:
    return "AV-only protocol (unav100-av: only audio-visual events are annotated)" if names == AV_ONLY_KEYS else "AVVP benchmark protocol"


def _cell(mean: float, std: float, n: int) -> str:
    return f"{mean:.2f}" if n <= 1 else f"{mean:.2f} ± {std:.2f}"


def _split_of(runs: Mapping[str, Sequence[Mapping]]) -> str:
    for metrics in runs.values():
        for m in metrics:
            if m.get("split"):
                return str(m["split"])
    return ""


def _papers_rows(frame: pd.DataFrame, dataset: str | None) -> dict[str, dict]:
    """The paper's rows for the frame's variants (:func:`ecma.evaluation.paper.paper_rows`), where the
    dataset has them and our columns are the paper's (the benchmark's five, not the AV-only protocol)."""
    if dataset is None or _keys_of(frame) != paper.METRICS:
        return {}
    return paper.paper_rows(dataset, [str(v) for v in frame.index])


def _papers_markdown(rows: Mapping[str, dict]) -> str:
    keys = [(level, key) for level in LEVELS for key in paper.METRICS]
    lines = ["| variant | " + " | ".join(f"{LEVEL_SHORT[lv]} {SHORT[k]}" for lv, k in keys) + " | the paper's name |",
             "|" + "---|" * (len(keys) + 2)]
    for variant, row in rows.items():
        lines.append(f"| {variant} | " + " | ".join(f"{row[lv][k]:.1f}" for lv, k in keys)
                     + f" | {paper.PAPER_NAMES[variant]} |")
    return ("\n## The paper's figures (not ours)\n\n"
            f"{paper.SOURCE}: F1 in percent, one published run per row. Not computed by this project; the targets of "
            "our rows of the same variant above.\n\n" + "\n".join(lines) + "\n")


def ablation_markdown(frame: pd.DataFrame, baseline: Mapping | None = None, split: str = "",
                      papers: Mapping[str, dict] | None = None) -> str:
    """Markdown: one row per variant (mean ± std over seeds), a last row for predicting nothing, then the
    paper's rows (``papers``, from :func:`_papers_rows`) in a table of their own."""
    names = _keys_of(frame)
    keys = [(level, key) for level in LEVELS for key in names]
    header = "| variant | " + " | ".join(f"{LEVEL_SHORT[lv]} {SHORT[k]}" for lv, k in keys) + " | seeds |"
    lines = [header, "|" + "---|" * (len(keys) + 2)]
    for variant, row in frame.iterrows():
        n = int(row[(LEVELS[0], names[0], "n")])
        cells = [_cell(row[(lv, k, "mean")], row[(lv, k, "std")], n) for lv, k in keys]
        lines.append(f"| {variant} | " + " | ".join(cells) + f" | {n} |")
    if baseline is not None:
        lines.append(f"| *{BASELINE_NAME}* | " + " | ".join(f"{float(baseline[lv][k]):.2f}" for lv, k in keys) + " | – |")
    seeds = sorted({int(n) for n in frame[(LEVELS[0], names[0], "n")]})
    spread = ("mean ± sample standard deviation (ddof=1) over seeds; " if max(seeds, default=1) > 1 else "")
    return (
        f"# Ablation ({split})\n\nF1 in percent, {_protocol(names)}; {spread}seeds per variant in the last column."
        + ("" if baseline is None else f" *{BASELINE_NAME}*: the score of all-zero predictions on the same truth.")
        + "\n\n" + "\n".join(lines) + "\n"
        + (_papers_markdown(papers) if papers else "")
    )


def _papers_html(rows: Mapping[str, dict]) -> str:
    keys = [(level, key) for level in LEVELS for key in paper.METRICS]
    n = len(paper.METRICS)
    head_group = ('<tr class="group"><th rowspan="2">variant</th>'
                  + "".join(f'<th colspan="{n}" class="sep">{level}-level F1 (%)</th>' for level in LEVELS) + "</tr>")
    head_keys = "<tr>" + "".join(f'<th{" class=sep" if i % n == 0 else ""}>{html.escape(SHORT[k])}</th>'
                                 for i, (_, k) in enumerate(keys)) + "</tr>"
    body = []
    for variant, row in rows.items():
        cells = "".join(f'<td class="num{" sep" if i % n == 0 else ""}">{row[lv][k]:.1f}</td>'
                        for i, (lv, k) in enumerate(keys))
        body.append(f'<tr class="paper"><td class="name">{html.escape(variant)}'
                    f'<span class="desc">the paper\'s {html.escape(paper.PAPER_NAMES[variant])}</span></td>{cells}</tr>')
    caption = (f"{html.escape(paper.SOURCE)}. F1 in percent, one published run per row. Not computed by this "
               "project: the targets of our rows of the same variant above.")
    return ("<h2>The paper's figures (not ours)</h2>\n"
            f"<table class=\"paper\">\n<caption>{caption}</caption>\n<thead>\n{head_group}\n{head_keys}\n</thead>\n"
            "<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>")


def ablation_html(frame: pd.DataFrame, baseline: Mapping | None = None, split: str = "",
                  papers: Mapping[str, dict] | None = None) -> str:
    """A self-contained, styled HTML page of the table (the best mean of each column in bold), then the
    paper's rows (``papers``) in a table of their own."""
    names = _keys_of(frame)
    keys = [(level, key) for level in LEVELS for key in names]
    best = {k: frame[(*k, "mean")].max() for k in keys}
    head_group = ('<tr class="group"><th rowspan="2">variant</th>'
                  + "".join(f'<th colspan="{len(names)}" class="sep">{level}-level F1 (%)</th>' for level in LEVELS)
                  + '<th rowspan="2" class="sep">seeds</th></tr>')
    head_keys = "<tr>" + "".join(
        f'<th{" class=sep" if i % len(names) == 0 else ""}>{html.escape(SHORT[k])}</th>'
        for i, (_, k) in enumerate(keys)) + "</tr>"
    body = []
    for variant, row in frame.iterrows():
        n = int(row[(LEVELS[0], names[0], "n")])
        cells = []
        for i, k in enumerate(keys):
            mean, std = row[(*k, "mean")], row[(*k, "std")]
            classes = ["num"] + (["sep"] if i % len(names) == 0 else []) + (["best"] if len(frame) > 1 and mean == best[k] else [])
            sd = f'<span class="sd">± {std:.2f}</span>' if n > 1 else ""  # below the mean: narrow columns
            cells.append(f'<td class="{" ".join(classes)}">{mean:.2f}{sd}</td>')
        body.append(f'<tr><td class="name">{html.escape(str(variant))}'
                    f'<span class="desc">{html.escape(description(str(variant)))}</span></td>'
                    + "".join(cells) + f'<td class="num sep">{n}</td></tr>')
    if baseline is not None:
        cells = "".join(f'<td class="num{" sep" if i % len(names) == 0 else ""}">{float(baseline[lv][k]):.2f}</td>'
                        for i, (lv, k) in enumerate(keys))
        body.append(f'<tr class="baseline"><td class="name">{BASELINE_NAME}'
                    f'<span class="desc">all probabilities 0, same truth</span></td>{cells}<td class="num sep">–</td></tr>')
    n_max = int(frame[(LEVELS[0], names[0], "n")].max()) if len(frame) else 1
    spread = ("Mean ± sample standard deviation (ddof=1) over seeds. " if n_max > 1 else "")
    caption = (f"F1 in percent, {_protocol(names)}{', ' + html.escape(split) if split else ''}. {spread}"
               "Bold: the best mean of each column. A: audio, V: visual, AV: audio-visual, "
               "Type@AV: mean of A, V and AV; Event@AV: audio and visual counts pooled.")
    table = (f"<table>\n<caption>{caption}</caption>\n<thead>\n{head_group}\n{head_keys}\n</thead>\n<tbody>\n"
             + "\n".join(body) + "\n</tbody>\n</table>")
    theirs = f"\n{_papers_html(papers)}" if papers else ""
    return page("Ablation", f"<h1>Ablation</h1>\n<p class=\"note\">Every variant on the test split.</p>\n{table}{theirs}")


def ablation_json(frame: pd.DataFrame, runs: Mapping[str, Sequence[Mapping]], baseline: Mapping | None = None,
                  papers: Mapping[str, dict] | None = None) -> dict:
    """ablation.json: ``variants`` -> {variant: {segment, event (means), description, num_seeds}}, ``std``,
    ``seeds`` ({variant: [seed labels]}), ``ddof``, if given ``baseline`` ({segment, event}), and where the
    paper has figures for these variants ``paper`` ({source, variants: {variant: {name, segment, event}}})."""
    names = _keys_of(frame)
    seeds = variant_seeds(runs)
    keys = names

    def blocks(row, stat):
        return {lv: {k: float(row[(lv, k, stat)]) for k in keys} for lv in LEVELS}

    out = {"split": _split_of(runs), "variants": {}, "std": {}, "seeds": {}, "ddof": 1}
    for variant, row in frame.iterrows():
        out["variants"][variant] = {**blocks(row, "mean"), "description": description(str(variant)),
                                    "num_seeds": int(row[(LEVELS[0], names[0], "n")])}
        out["std"][variant] = blocks(row, "std")
        out["seeds"][variant] = list(seeds[variant])
    if baseline is not None:
        out["baseline"] = {lv: {k: float(baseline[lv][k]) for k in names} for lv in LEVELS}
    if papers:
        out["paper"] = {"source": paper.SOURCE,
                        "variants": {v: {"name": paper.PAPER_NAMES[v], **row} for v, row in papers.items()}}
    return out


def ablation_outputs(runs: Mapping[str, Sequence[Mapping]], baseline: Mapping | None = None,
                     dataset: str | None = None) -> tuple[str, str, dict]:
    """(markdown, html, json-able dict) of {variant: [metrics per seed]}; ``dataset`` (the workflow's name)
    decides whether the paper's figures are shown beside ours (LLP datasets only)."""
    if not runs:
        raise EcmaError("no variants to compare")
    if baseline is not None:
        check_metrics(baseline, "the baseline")
    frame = ablation_frame(runs)
    split = _split_of(runs)
    papers = _papers_rows(frame, dataset)
    return (ablation_markdown(frame, baseline, split, papers), ablation_html(frame, baseline, split, papers),
            ablation_json(frame, runs, baseline, papers))
