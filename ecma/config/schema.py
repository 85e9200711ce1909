"""The workflow's JSON schema, generated from the dataclasses of :mod:`ecma.config`, and Snakemake's reading of it.

Types, enums, defaults and bounds have one source, the dataclasses (and, for backbones, variants and feature
formats, :mod:`ecma.registry`); ``workflow/schemas/config.schema.yaml`` is this module's output
(``python -m ecma.config.schema > workflow/schemas/config.schema.yaml``), and a test checks that the committed
file is current. :func:`schema_error_line` turns Snakemake's schema error into one line.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import types
import typing
from typing import Any, Literal, Union

import yaml

from ecma import config as C
from ecma import registry
from ecma.config.typed import registered_kind

_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object"}
_BOUND_KEYWORDS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}
HEADER = """\
# JSON schema (draft 2020-12) of config.yaml, validated by the Snakefile before any job runs.
# GENERATED from the dataclasses of ecma/config/ and the registered plug-ins: do not edit; regenerate with
#   python -m ecma.config.schema > workflow/schemas/config.schema.yaml
# (tests/test_workflow.py checks that this file is current). Objects that may be null (a dataset's demo
# and overrides) carry no defaults: Snakemake's validate() would try to fill them into a null.
"""


def _property(tp: Any) -> dict:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        inner = _property(next(a for a in args if a is not type(None)))
        if "enum" in inner:
            return {"enum": inner["enum"] + [None]}
        return {"type": [inner["type"], "null"]}
    if origin is Literal:
        return {"enum": list(args)}
    if origin is list:
        return {"type": "array", "items": _property(args[0])}
    return {"type": _JSON_TYPES[tp]}


def _default(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def section_schema(cls: type, *, with_defaults: bool, nullable: bool = False, skip: tuple = ()) -> dict:
    """The schema of one dataclass: every field's type (and enum), bounds, and (optionally) default."""
    hints = typing.get_type_hints(cls)
    properties = {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind = registered_kind(f)
        prop = {"enum": list(registry.names(kind))} if kind else _property(hints[f.name])
        for side, limit in f.metadata.get("bounds", {}).items():
            if limit is not None:
                prop[_BOUND_KEYWORDS[side]] = limit
        if with_defaults:
            prop["default"] = _default(f)
        properties[f.name] = prop
    schema = {"type": ["object", "null"] if nullable else "object", "additionalProperties": False,
              "properties": properties}
    doc = (cls.__doc__ or "").strip().splitlines()
    if doc and not doc[0].startswith(cls.__name__ + "("):  # dataclasses invent a signature docstring
        schema = {"description": doc[0], **schema}
    return schema


def workflow_schema() -> dict:
    sections = C.section_classes()
    variants = list(registry.names("variants"))
    defs: dict[str, dict] = {}
    dataset = section_schema(C.DatasetConfig, with_defaults=True, skip=("demo", "overrides", "features"))
    dataset["properties"]["overrides"] = {
        "description": "Per-dataset overrides of the top-level sections (no defaults: only what is given overrides).",
        "type": ["object", "null"], "additionalProperties": False,
        "properties": {name: {"$ref": f"#/$defs/{name}_override"} for name in sections},
        "default": None,
    }
    dataset["properties"]["demo"] = {"$ref": "#/$defs/demo", "default": None}
    dataset["properties"]["features"] = {"$ref": "#/$defs/features", "default": None}
    defs["dataset"] = dataset
    defs["demo"] = section_schema(C.DemoConfig, with_defaults=False, nullable=True)
    defs["features"] = section_schema(C.FeaturesConfig, with_defaults=False, nullable=True)
    for name, cls in sections.items():
        defs[name] = section_schema(cls, with_defaults=True)
        defs[f"{name}_override"] = section_schema(cls, with_defaults=False)
    properties: dict[str, dict] = {
        "datasets": {"description": "Datasets by name; results go to results/<name>/.", "type": "object",
                     "additionalProperties": {"$ref": "#/$defs/dataset"}, "default": {}},
        "variants": {"description": "The variants to train and compare in the ablation table.", "type": "array",
                     "items": {"enum": variants}, "minItems": 1, "uniqueItems": True,
                     "default": list(C.default_variants())},
        "main_variant": {"description": "The variant whose test metrics become results/<dataset>/metrics.json.",
                         "enum": list(variants), "default": "ecma"},
    }
    properties["parse"] = {"$ref": "#/$defs/parse", "default": None}
    defs["parse"] = section_schema(C.ParseConfig, with_defaults=False, nullable=True)
    properties["sweeps"] = {"description": "Hyperparameter sweeps by name; results go to results/<dataset>/sweeps/<name>/.",
                            "type": "object", "additionalProperties": {"$ref": "#/$defs/sweep"}, "default": {}}
    sweep = section_schema(C.SweepConfig, with_defaults=True, skip=("settings",))
    sweep["properties"]["settings"] = {
        "description": "SECTION.KEY of a setting -> a list of its values, or a range.", "type": "object",
        "minProperties": 1,
        "additionalProperties": {"anyOf": [{"type": "array", "minItems": 1}, {"$ref": "#/$defs/sweep_range"}]},
    }
    defs["sweep"] = sweep
    defs["sweep_range"] = section_schema(C.SweepRange, with_defaults=False)
    for name in sections:
        properties[name] = {"$ref": f"#/$defs/{name}", "default": {}}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "description": "The workflow's config.yaml, generated from ecma/config/.",
        "type": "object", "additionalProperties": False, "properties": properties, "$defs": defs,
    }


def schema_error_line(error: Exception) -> str:
    """One line from Snakemake's schema error (which dumps the whole schema): the message and where."""
    text = str(error)
    message = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("ValidationError:")),
                   text.strip().splitlines()[0] if text.strip() else "invalid config")
    where = re.search(r"On instance((?:\[[^\]]*\])*)", text)
    return f"config: {message}" + (f" (at {where.group(1)})" if where and where.group(1) else "")


def schema_text() -> str:
    return HEADER + yaml.safe_dump(workflow_schema(), sort_keys=False, width=110)


if __name__ == "__main__":
    sys.stdout.write(schema_text())
