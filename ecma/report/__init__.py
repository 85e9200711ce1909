"""What ``snakemake --report`` shows: seeds summarised, the ablation table, per-class and timeline figures.

One job per module:

- :mod:`~ecma.report.seeds`: mean and spread of metrics over training seeds (pandas);
- :mod:`~ecma.report.baseline`: the score of predicting nothing, from the truth alone;
- :mod:`~ecma.report.ablation`: the ablation as a DataFrame, Markdown, HTML and JSON;
- :mod:`~ecma.report.per_class`: the per-class F1 chart of the best variant;
- :mod:`~ecma.report.timelines`: predicted versus true events of a few videos;
- :mod:`~ecma.report.run_summary`: what was run (commit, fingerprint, seeds) as a small HTML page;
- :mod:`~ecma.report.html`: the shared page style.
"""
