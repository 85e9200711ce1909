"""Scoring a model: inference, predictions files, the benchmark metrics and protocols, the paper's numbers."""
