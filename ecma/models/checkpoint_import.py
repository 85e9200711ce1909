"""``ecma import-checkpoint``: another code's saved weights written as an ecma checkpoint.

Each backbone registers the formats it reads (:mod:`ecma.registry`; CoLeaF's: ``coleaf``,
:func:`ecma.models.coleaf.checkpoint_import.import_coleaf_checkpoint`).
"""

from __future__ import annotations

import os

from ecma import registry


def import_checkpoint(fmt: str, reference: str | os.PathLike, output: str | os.PathLike, *, config: str | None = None):
    """Write ``output`` from ``reference`` saved by the code of format ``fmt``; returns the config it holds."""
    return registry.checkpoint_importer(fmt)(reference, output, config=config)
