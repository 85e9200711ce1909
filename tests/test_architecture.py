"""The package's structure: dependencies run one way, down the layers below, and no import circles.

Every ``import`` of every module of ``ecma`` is read with ``ast`` (those inside functions too: a lazy import is
still a dependency), resolved to the modules of the package it names, and checked against the layer order
written down once here. Within a layer, modules may import each other, as long as no circle forms.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ecma"

# Low to high. A module belongs to the first entry that is its name or a package above it.
LAYERS = (
    # the ground: errors, files, progress, safe loading, locks, command-line words, devices, the plug-in registry,
    # the OpenMP settings set before torch loads
    ("ecma", "ecma.errors", "ecma.io", "ecma.progress", "ecma.safe_load", "ecma.locks", "ecma.argv", "ecma.device",
     "ecma.registry", "ecma.runtime_env"),
    ("ecma.config",),  # every setting, typed and bounded
    ("ecma.data", "ecma.provenance"),  # what a dataset is: annotations, names, shards, batches, demos
    ("ecma.extract", "ecma.importers"),  # features: from videos, or from published files
    ("ecma.models",),  # the backbones, their losses, checkpoints
    ("ecma.evaluation", "ecma.training", "ecma.sweeps"),  # scoring and training a model; sweeps of training runs
    ("ecma.report", "ecma.parse"),  # what a person reads: tables, figures, parsed videos
    ("ecma.cli",),  # the command, on top
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports (a from-import of a module's attribute counts as the module)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for target in targets:
            while target and target not in known:  # an attribute of a module: the module itself
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("ecma"):
                out.add(target)
    # `import ecma.x.y` also runs the packages above it, but depends on y: keep the deepest name only
    return {t for t in out if not any(o != t and o.startswith(t + ".") for o in out) or t == "ecma"}


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imported(name, path, known) - {"ecma"} for name, path in mods.items()}


def layer_of(name: str) -> int:
    best = None
    for i, layer in enumerate(LAYERS):
        for prefix in layer:
            if (name == prefix or name.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (i, len(prefix))
    assert best is not None, f"{name} belongs to no layer: add it to LAYERS"
    return best[0]


def test_every_module_has_a_layer():
    for name in modules():
        layer_of(name)


def test_no_import_runs_up_the_layers():
    upward = [f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})"
              for a, targets in sorted(graph().items()) for b in sorted(targets) if layer_of(b) > layer_of(a)]
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import circles (strongly connected components of more than one module, or a module importing itself)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, ()):
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_there_are_no_import_circles():
    found = cycles(graph())
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_checks_see_a_circle_and_an_upward_import():
    """The checks themselves: a made-up circle is found, and an arrow from data to the CLI runs up."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_of("ecma.data.shards") < layer_of("ecma.cli.train")
    assert "ecma.models.contracts" in graph()["ecma.training.train"]


@pytest.mark.parametrize("name", ["ecma.config.sections", "ecma.models.coleaf", "ecma.registry", "ecma.sweeps.trials"])
def test_the_low_modules_that_plug_ins_meet_import_no_torch(name):
    """Config, registry, the backbones' registrations and the sweeps' trials load without torch: the Snakefile
    reads them on every run, and the registry imports the plug-ins while the config builds its class."""
    import subprocess
    import sys

    code = f"import sys, {name}; from ecma import registry; registry.backbones(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
