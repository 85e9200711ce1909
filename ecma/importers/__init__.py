"""Published feature folders -> HDF5 shards (``ecma import``), so that training needs no raw video.

One module per format, each registering itself with :mod:`ecma.registry` (:mod:`~ecma.importers.valor`,
:mod:`~ecma.importers.han`, with VALOR's CLAP conversion in :mod:`~ecma.importers.clap`;
:mod:`~ecma.importers.unav100` for UnAV-100's I3D/VGGish grid), what a format is (:mod:`~ecma.importers.spec`),
the safe ``.npy`` reader (:mod:`~ecma.importers.npy`) and the driver that writes the shard and the failures
table (:mod:`~ecma.importers.run`). This package's face imports nothing: the registry loads the formats.
"""
