"""The typed loader: dataclass fields with their bounds, and the checks that turn a YAML mapping into one.

A setting is a dataclass field; its type (int, float, bool, str, Optional, Literal, list, a nested dataclass) and
its bounds (:func:`bounded`) are checked when a mapping is built into the dataclass (:func:`build_section`),
each failure an :class:`~ecma.errors.EcmaError` naming the key by its full path and the value. A field may
also be a runtime setting (:func:`runtime_setting`) or take one of the names a plug-in registered
(:func:`registered`: a backbone, a variant, a feature format; :mod:`ecma.registry`).
"""

from __future__ import annotations

import dataclasses
import operator
import os
import types
import typing
from dataclasses import field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from ecma import registry
from ecma.errors import EcmaError


def bounded(default: Any, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
            lt: float | None = None, runtime: bool = False) -> Any:
    """A dataclass field with its bounds: the one place a setting's range is stated (checked on load).
    ``runtime``: see :func:`runtime_setting`."""
    return field(default=default, metadata={"bounds": {"ge": ge, "gt": gt, "le": le, "lt": lt}, "runtime": runtime})


def runtime_setting(default: Any) -> Any:
    """A setting that decides where and how fast a job runs (device, threads, workers, inference batch sizes),
    not what it computes: changing it reruns no job (``EcmaConfig.split_runtime``). Device and batch sizes can
    move results at the last bits of float rounding, never more (docs/method.md, "Runtime settings")."""
    return field(default=default, metadata={"runtime": True})


def registered(default: str, kind: str) -> Any:
    """A string field whose value is one of the registered names of ``kind`` ('backbones', 'variants',
    'feature_formats'): the choices are read from :mod:`ecma.registry` when a config is checked, so a
    plug-in's names are valid as soon as it is registered."""
    return field(default=default, metadata={"registered": kind})


def registered_kind(f: dataclasses.Field) -> str | None:
    return f.metadata.get("registered")


def runtime_keys(cls: type) -> tuple[str, ...]:
    """The runtime settings of a section (:func:`runtime_setting`)."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("runtime"))


def _check_value(where: str, value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _check_value(where, value, inner[0])
    if origin is Literal:
        if value not in args:
            raise EcmaError(f"config: {where} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise EcmaError(f"config: {where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise EcmaError(f"config: {where} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EcmaError(f"config: {where} must be a number, got {value!r}")
        return float(value)
    if dataclasses.is_dataclass(tp):
        return build_section(tp, where, value)
    if origin is list:
        if not isinstance(value, list):
            raise EcmaError(f"config: {where} must be a list, got {value!r}")
        return [_check_value(f"{where}[{i}]", v, args[0]) for i, v in enumerate(value)]
    if tp is dict:
        if not isinstance(value, dict):
            raise EcmaError(f"config: {where} must be a mapping, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise EcmaError(f"config: {where} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r}")


_BOUND_OPS = {"ge": (">=", operator.ge), "gt": (">", operator.gt), "le": ("<=", operator.le), "lt": ("<", operator.lt)}


def _check_bounds(where: str, value: Any, bounds: dict) -> None:
    if value is None:  # an Optional setting left unset
        return
    for key, limit in bounds.items():
        symbol, holds = _BOUND_OPS[key]
        if limit is not None and not holds(value, limit):
            raise EcmaError(f"config: {where} must be {symbol} {limit:g}, got {value!r}")


def field_bounds(cls: type) -> dict[str, dict]:
    """name -> {ge, gt, le, lt} of the dataclass's bounded fields (None where a side is open)."""
    return {f.name: f.metadata["bounds"] for f in dataclasses.fields(cls) if "bounds" in f.metadata}


def build_section(cls: type, section: str, raw: Any) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise EcmaError(f"config: section {section!r} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise EcmaError(f"config: unknown key {section}.{unknown[0]} (known: {', '.join(sorted(names))})")
    values = {k: _check_value(f"{section}.{k}", v, hints[k]) for k, v in raw.items()}
    for name, bounds in field_bounds(cls).items():
        if name in values:
            _check_bounds(f"{section}.{name}", values[name], bounds)
    for f in dataclasses.fields(cls):
        kind = registered_kind(f)
        if kind and f.name in values:
            check_registered(f"{section}.{f.name}", values[f.name], kind)
    return cls(**values)


def check_registered(where: str, value: Any, kind: str) -> None:
    """``value`` must be one of the registered names of ``kind`` (the message a Literal's check gives)."""
    choices = registry.names(kind)
    if value not in choices:
        raise EcmaError(f"config: {where} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def read_yaml_file(path: str | os.PathLike) -> Any:
    """The parsed content of a YAML config file (an empty file: {}); one line naming the file when it is
    missing or not valid YAML."""
    p = Path(path)
    if not p.is_file():
        raise EcmaError(f"{p}: config file not found")
    try:
        return yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise EcmaError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
