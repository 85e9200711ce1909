"""ecma: weakly-supervised audio-visual video parsing with E-CMA, end to end."""

from ecma.runtime_env import apply_runtime_defaults as _apply_runtime_defaults

__version__ = "0.1.0"

# Before any ecma module imports torch: how OpenMP threads wait, and how many (ecma/runtime_env.py).
_apply_runtime_defaults()
