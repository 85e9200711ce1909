"""All settings of the package, typed, with their defaults and bounds, validated once.

Three jobs, three modules: :mod:`ecma.config.typed` (the loader: field types, bounds, runtime settings,
registered names), :mod:`ecma.config.sections` (the package's sections and ``EcmaConfig``),
:mod:`ecma.config.workflow` (the workflow's ``config.yaml``: datasets, variants, parse, sweeps); :mod:`ecma.config.schema`
generates the workflow's JSON schema from them. The names below are the public face of all four.
"""

from typing import Any

from ecma.config.sections import (
    DEVICE_PATTERN,
    ConfigSections,
    EvalConfig,
    ExtractConfig,
    LossConfig,
    ModelConfig,
    PseudoConfig,
    TrainConfig,
    config_class,
    config_from_dict,
    default_variants,
    load_config,
    merge_runtime,
    section_classes,
)
from ecma.config.typed import bounded, field_bounds, registered, runtime_keys, runtime_setting
from ecma.config.workflow import (
    DatasetConfig,
    DemoConfig,
    FeaturesConfig,
    ParseConfig,
    SweepConfig,
    SweepRange,
    WorkflowConfig,
    load_workflow_config,
    workflow_config_from_dict,
)

__all__ = [
    "DEVICE_PATTERN", "ConfigSections", "DatasetConfig", "DemoConfig", "EcmaConfig", "EvalConfig", "ExtractConfig",
    "FeaturesConfig", "LossConfig", "ModelConfig", "ParseConfig", "PseudoConfig", "SweepConfig", "SweepRange", "TrainConfig", "WorkflowConfig",
    "bounded", "config_class", "config_from_dict", "default_variants", "field_bounds", "load_config",
    "load_workflow_config", "merge_runtime", "registered", "runtime_keys", "runtime_setting", "section_classes",
    "workflow_config_from_dict",
]


def __getattr__(name: str) -> Any:
    if name == "EcmaConfig":  # made from the registered sections (ecma.config.sections.config_class)
        return config_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
