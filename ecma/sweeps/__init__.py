"""Hyperparameter sweeps: settings searched on the validation split, the chosen ones then scored on the test split.

Two jobs, two modules: :mod:`~ecma.sweeps.trials` (what a sweep of ``config.yaml`` runs: its sampler's points,
each trial's settings checked as every setting is, the directory each trial trains in) and
:mod:`~ecma.sweeps.selection` (what the trials gave: their validation scores read from their checkpoints, the
table, and the choice). The workflow (``workflow/rules/sweep.smk``), ``ecma sweep`` and the tests all take the
trials from :func:`~ecma.sweeps.trials.sweep_trials`.
"""
