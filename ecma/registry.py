"""The plug-ins: backbones (with their variants, config section and checkpoint imports) and published feature
formats, each registered from its own module.

What a backbone is made of lives in its own subpackage (``ecma/models/coleaf/``, ``ecma/models/han/``), which
registers a :class:`BackboneSpec` when it is imported; a feature format (``ecma/importers/valor.py``, ...)
registers itself likewise. Everything that lists backbones, variants or formats reads them here: the config's
types and checks, the schema, the CLI's choices, the trainer and the ablation's labels. So a new backbone is
a subpackage and one line in :data:`BUILTIN_PLUGINS`; a package of one's own registers through the
``ecma.plugins`` entry point group (a module to import), or a script calls :func:`register_backbone` before it
builds a config.

This module is the bottom of the package's layers (it imports no other part of ``ecma`` but its errors): the
plug-ins are loaded by name on first use, and their heavy parts (networks, torch) only when a backbone's
:attr:`BackboneSpec.backbone` is asked for.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable, Optional

from ecma.errors import EcmaError

# Imported on first use, in this order (the order of the variants in tables and choices).
BUILTIN_PLUGINS = ("ecma.models.coleaf", "ecma.models.han", "ecma.importers.valor", "ecma.importers.han", "ecma.importers.unav100")
ENTRY_POINT_GROUP = "ecma.plugins"


@dataclass(frozen=True)
class Variant:
    """An ablation variant: the backbone it trains and which of E-CMA's terms it switches on."""

    name: str
    backbone: str
    teacher: bool  # an EMA teacher writes pseudo masks, and L_pseudo trains on them
    cma: bool  # L_CMA aligns the audio and visual segment embeddings
    description: str  # what it is (CLI help, docs)
    label: str  # the ablation table's short description of the row

    @property
    def terms(self) -> tuple[str, ...]:
        """E-CMA's loss terms this variant adds to its backbone's."""
        return tuple(name for name, on in (("pseudo", self.teacher), ("cma", self.cma)) if on)


def _load(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class BackboneSpec:
    """A backbone as the rest of the package sees it.

    ``backbone``: ``"module:Class"`` of its :class:`ecma.models.contracts.Backbone` (imported when asked for);
    ``section``: (name, dataclass) of its own config section, if it has one (``coleaf``); ``checkpoint_imports``:
    format -> ``"module:function"`` reading another code's saved weights (``ecma import-checkpoint``).
    """

    name: str
    backbone: str
    variants: tuple[Variant, ...]
    section: Optional[tuple[str, type]] = None
    checkpoint_imports: dict[str, str] = field(default_factory=dict)

    def backbone_class(self) -> type:
        return _load(self.backbone)


@dataclass
class _Registry:
    backbones: dict[str, BackboneSpec] = field(default_factory=dict)
    feature_formats: dict[str, Any] = field(default_factory=dict)
    loaded: bool = False
    loading: bool = False


_REGISTRY = _Registry()


def _ensure_loaded() -> None:
    if _REGISTRY.loaded:
        return
    _REGISTRY.loaded = _REGISTRY.loading = True  # before the imports: the plug-ins call register_* while they load
    try:
        for name in BUILTIN_PLUGINS:
            importlib.import_module(name)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            importlib.import_module(ep.value.partition(":")[0])
    finally:
        _REGISTRY.loading = False


def _rank(spec: BackboneSpec, position: int) -> tuple[int, int]:
    """Built-in backbones in BUILTIN_PLUGINS' order, whichever was imported first; the others after them."""
    for i, module in enumerate(BUILTIN_PLUGINS):
        if spec.backbone.startswith(module + "."):
            return 0, i
    return 1, position


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    """Add a backbone and its variants; a name already taken (backbone or variant) is an error."""
    if spec.name in _REGISTRY.backbones:
        raise EcmaError(f"backbone {spec.name!r} is registered already")
    taken = {v.name for b in _REGISTRY.backbones.values() for v in b.variants}
    for v in spec.variants:
        if v.name in taken:
            raise EcmaError(f"variant {v.name!r} of backbone {spec.name!r} is registered already")
        if v.backbone != spec.name:
            raise EcmaError(f"variant {v.name!r} names backbone {v.backbone!r}, but is registered with {spec.name!r}")
    sections = {s.section[0] for s in _REGISTRY.backbones.values() if s.section}
    if spec.section and spec.section[0] in sections:
        raise EcmaError(f"config section {spec.section[0]!r} of backbone {spec.name!r} is registered already")
    _REGISTRY.backbones[spec.name] = spec
    return spec


def unregister_backbone(name: str) -> None:
    """Remove a backbone (tests that register one of their own clean up after themselves)."""
    _REGISTRY.backbones.pop(name, None)


def backbones() -> dict[str, BackboneSpec]:
    _ensure_loaded()
    ranked = sorted(enumerate(_REGISTRY.backbones.values()), key=lambda item: _rank(item[1], item[0]))
    return {spec.name: spec for _, spec in ranked}


def backbone_spec(name: str) -> BackboneSpec:
    specs = backbones()
    if name not in specs:
        raise EcmaError(f"unknown backbone {name!r} ({', '.join(specs)})")
    return specs[name]


def variants() -> dict[str, Variant]:
    """Every variant of every backbone, in registration order (Table 3's order for CoLeaF's)."""
    return {v.name: v for spec in backbones().values() for v in spec.variants}


def variant(name: str) -> Variant:
    """A variant by name; an unknown one is a ValueError (the config has checked users' names before)."""
    table = variants()
    if name not in table:
        raise ValueError(f"unknown variant {name!r} ({', '.join(table)})")
    return table[name]


def config_sections() -> tuple[tuple[str, type], ...]:
    """(name, dataclass) of the backbones' own config sections, in registration order."""
    specs = backbones()
    if _REGISTRY.loading:  # a plug-in's import reached for the config's class before every section was in
        raise RuntimeError("a plug-in asked for the config's sections while the plug-ins were loading: "
                           "import no EcmaConfig at the top of a module a plug-in's registration imports")
    return tuple(spec.section for spec in specs.values() if spec.section)


def checkpoint_importer(fmt: str) -> Callable:
    """The function of the backbone that reads checkpoints of format ``fmt``."""
    found = {f: path for spec in backbones().values() for f, path in spec.checkpoint_imports.items()}
    if fmt not in found:
        raise EcmaError(f"unknown checkpoint format {fmt!r} ({', '.join(found)})")
    return _load(found[fmt])


def checkpoint_formats() -> tuple[str, ...]:
    return tuple(f for spec in backbones().values() for f in spec.checkpoint_imports)


def register_feature_format(fmt: Any) -> Any:
    """Add a published feature format (an :class:`ecma.importers.spec.ImportFormat`, by its ``name``)."""
    if fmt.name in _REGISTRY.feature_formats:
        raise EcmaError(f"feature format {fmt.name!r} is registered already")
    _REGISTRY.feature_formats[fmt.name] = fmt
    return fmt


def feature_formats() -> dict[str, Any]:
    _ensure_loaded()
    return dict(_REGISTRY.feature_formats)


def feature_format(name: str) -> Any:
    formats = feature_formats()
    if name not in formats:
        raise EcmaError(f"unknown feature format {name!r} (known: {', '.join(formats)})")
    return formats[name]


def names(kind: str) -> tuple[str, ...]:
    """The registered names of a kind: 'backbones', 'variants' or 'feature_formats' (config choices)."""
    return tuple({"backbones": backbones, "variants": variants, "feature_formats": feature_formats}[kind]())
