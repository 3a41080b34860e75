"""The package's layers import downwards only (base → data → models → training → evaluation →
modes), and the PyTorch side leans on base alone (only modes use it), so a newcomer can tell from a file's folder what
it may use."""

from __future__ import annotations

import ast

from conftest import ROOT

LAYERS = ("base", "data", "models", "training", "evaluation", "modes")
PYTORCH_MAY_USE = ("base", "pytorch")


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports_of(path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("asd_jax.")}


def test_every_import_points_down_a_layer():
    package = ROOT / "asd_jax"
    problems = []
    for path in sorted(package.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        source = layer_of(module)
        if source not in LAYERS + ("pytorch",):
            continue
        for target in imports_of(path):
            layer = layer_of(target)
            if source == "pytorch":
                ok = layer in PYTORCH_MAY_USE
            elif layer == "pytorch":
                ok = source == "modes"
            else:
                ok = layer in LAYERS and LAYERS.index(layer) <= LAYERS.index(source)
            if not ok:
                problems.append(f"{module} ({source}) imports {target} ({layer})")
    assert not problems, "\n".join(problems)


def test_the_layer_check_would_catch_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from asd_jax.training import loop\nimport asd_jax.modes\n")
    assert {layer_of(t) for t in imports_of(bad)} == {"training", "modes"}
