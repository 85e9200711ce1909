"""Published feature folders -> HDF5 shards (``ecma import``), so that training needs no raw video.

One module per format (:mod:`~ecma.importers.valor`, :mod:`~ecma.importers.han`, with VALOR's CLAP
conversion in :mod:`~ecma.importers.clap`; :mod:`~ecma.importers.unav100` for UnAV-100's I3D/VGGish grid), the safe ``.npy`` reader (:mod:`~ecma.importers.npy`) and the
driver that writes the shard and the failures table (:mod:`~ecma.importers.run`).
"""

from ecma.importers.run import FORMATS, ImportReport, annotated_videos, feature_format, import_features

__all__ = ["FORMATS", "ImportReport", "annotated_videos", "feature_format", "import_features"]
