"""The workflow's JSON schema, generated from the dataclasses of :mod:`ecma.config`.

Types, enums, defaults and bounds have one source, the dataclasses; ``workflow/schemas/config.schema.yaml``
is this module's output (``python -m ecma.config_schema > workflow/schemas/config.schema.yaml``), and a test
checks that the committed file is current.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from typing import Any, Literal, Union

import yaml

from ecma import config as C

_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object"}
_BOUND_KEYWORDS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}
HEADER = """\
# JSON schema (draft 2020-12) of config.yaml, validated by the Snakefile before any job runs.
# GENERATED from the dataclasses of ecma/config.py: do not edit; regenerate with
#   python -m ecma.config_schema > workflow/schemas/config.schema.yaml
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
        prop = _property(hints[f.name])
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
    sections = {f.name: typing.get_type_hints(C.EcmaConfig)[f.name] for f in dataclasses.fields(C.EcmaConfig)}
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
                     "items": {"enum": list(C.VARIANTS)}, "minItems": 1, "uniqueItems": True,
                     "default": list(C.DEFAULT_VARIANTS)},
        "main_variant": {"description": "The variant whose test metrics become results/<dataset>/metrics.json.",
                         "enum": list(C.VARIANTS), "default": "ecma"},
    }
    properties["parse"] = {"$ref": "#/$defs/parse", "default": None}
    defs["parse"] = section_schema(C.ParseConfig, with_defaults=False, nullable=True)
    for name in sections:
        properties[name] = {"$ref": f"#/$defs/{name}", "default": {}}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "description": "The workflow's config.yaml, generated from ecma/config.py.",
        "type": "object", "additionalProperties": False, "properties": properties, "$defs": defs,
    }


def schema_text() -> str:
    return HEADER + yaml.safe_dump(workflow_schema(), sort_keys=False, width=110)


if __name__ == "__main__":
    sys.stdout.write(schema_text())
