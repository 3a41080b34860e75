"""Module sources -> one self-contained Python file, for the deployable export.

`--mode=export` writes the twins and the predictor as single files that need neither JAX nor
this repository. They are made from the very modules the project runs (no second copy to keep in
step): each module's source in dependency order, with imports of the bundled modules removed
(their names are then defined in the same file) and imports of modules bundled into another file
renamed (`renames`, e.g. asd_jax.pytorch.twins -> asd_twins). Any other import of asd_jax, a
name defined by two bundled modules, or an import under another name is an error, so a bundle
either stands alone or is not written. Reads source files only; imports nothing.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from pathlib import Path

PACKAGE = "asd_jax"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def source_path(module: str) -> Path:
    """The source file of an asd_jax module (a package's __init__.py)."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        raise ValueError(f"{module} is not a module of {PACKAGE}")
    base = PACKAGE_DIR.joinpath(*parts[1:])
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _defined_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _rewrite(module: str, text: str, bundled: set[str], renames: Mapping[str, str]) -> str:
    """The module's source with its imports of bundled modules dropped and renamed ones rewritten."""
    lines = text.splitlines()
    edits: dict[int, tuple[int, str | None]] = {}  # first line -> (last line, replacement or None)
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == PACKAGE for a in node.names):
            raise ValueError(f"{module}: `import {node.names[0].name}` cannot be bundled; use `from ... import ...`")
        if not isinstance(node, ast.ImportFrom) or node.level:
            continue
        indent = " " * node.col_offset
        if node.module == "__future__":
            edits[node.lineno] = (node.end_lineno, None)
        elif node.module and node.module.split(".")[0] == PACKAGE:
            if any(a.asname not in (None, a.name) for a in node.names):
                raise ValueError(f"{module}: `from {node.module} import ... as ...` cannot be bundled")
            if node.module in bundled:
                edits[node.lineno] = (node.end_lineno, None if not node.col_offset else f"{indent}pass")
            elif node.module in renames:
                names = ", ".join(a.name for a in node.names)
                edits[node.lineno] = (node.end_lineno, f"{indent}from {renames[node.module]} import {names}")
            else:
                raise ValueError(f"{module} imports {node.module}, which is neither bundled nor renamed")
    out, skip_to = [], 0
    for number, line in enumerate(lines, start=1):
        if number <= skip_to:
            continue
        if number in edits:
            skip_to, replacement = edits[number]
            if replacement is not None:
                out.append(replacement)
            continue
        out.append(line)
    return "\n".join(out).strip("\n")


def bundle(modules: Sequence[str], *, title: str, renames: Mapping[str, str] | None = None) -> str:
    """The source of one file holding `modules` (dependencies first), headed by `title`."""
    renames = dict(renames or {})
    defined_by: dict[str, str] = {}
    parts = [f'"""{title}"""', "", "from __future__ import annotations"]
    for module in modules:
        text = source_path(module).read_text()
        for name in _defined_names(ast.parse(text)):
            if name in defined_by:
                raise ValueError(f"{name} is defined by both {defined_by[name]} and {module}; they cannot share one file")
            defined_by[name] = module
        parts += ["", "", f"# {'-' * 30} {module} {'-' * 30}", "", _rewrite(module, text, set(modules), renames)]
    source = "\n".join(parts) + "\n"
    compile(source, title, "exec")  # a syntax error is ours, found before the file is written
    return source
