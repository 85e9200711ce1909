"""ecma: weakly-supervised audio-visual video parsing with E-CMA, end to end."""

__version__ = "0.1.0"
