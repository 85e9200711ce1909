"""The backbones and what every one of them gives the rest of the package.

``contracts`` (the interface: ``Backbone``, ``Batch``, ``ModelOutput``), ``factory`` (a config's backbone and
network, through :mod:`ecma.registry`), ``checkpoint`` (saving and loading trained models, for training and
inference alike), ``checkpoint_import`` (other codes' weights), ``layers`` (shared pieces); one subpackage per
backbone, each registering itself: ``coleaf`` (the paper's), ``han``.

This package's face imports nothing heavy: the registry imports the backbone subpackages while the config
is being built.
"""
