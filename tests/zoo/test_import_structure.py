"""The package structure: no import cycles, imports only go down the layers, and `import zoo`
loads the registry and the models only (docs/architecture.md, "Layers")."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("losses", "callbacks", "zoo")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path, own: str, known: set) -> set:
    """Project modules that `path` imports at module level (function bodies excluded)."""
    tree = ast.parse(path.read_text())
    found = set()
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    for node in tree.body:
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != own:
                found.add(name)
    return found


def import_graph() -> dict:
    files = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    known = {module_name(p) for p in files}
    return {module_name(p): project_imports(p, module_name(p), known) for p in files}


def find_cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def without_package_inits(graph):
    """A package's __init__ importing its own submodules is not a cycle through the package."""
    return {node: {n for n in targets if not node.startswith(n + ".")}
            for node, targets in graph.items()}


def test_the_graph_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(without_package_inits(import_graph()))
    assert cycle is None, " -> ".join(cycle)


def test_imports_go_down_the_layers():
    graph = import_graph()
    rules = {  # a module under the key may not import a module under any of the values
        "losses": ("callbacks", "zoo"),
        "callbacks": ("zoo",),
        "zoo.models": ("zoo.datasets", "zoo.training", "zoo.evaluation"),
        "zoo.datasets": ("zoo.models", "zoo.training", "zoo.evaluation"),
        "zoo.evaluation": ("zoo.training",),
        "zoo.boxes": ("zoo.models", "zoo.datasets", "zoo.training", "zoo.evaluation"),
        "zoo.registry": ("zoo.models", "zoo.datasets", "zoo.training", "zoo.evaluation"),
    }
    wrong = [(module, target) for module, targets in graph.items() for target in targets
             for layer, forbidden in rules.items()
             if (module == layer or module.startswith(layer + "."))
             and any(target == f or target.startswith(f + ".") for f in forbidden)]
    assert wrong == []


def test_import_zoo_loads_models_and_the_registry_only():
    code = ("import sys, zoo; print(' '.join(sorted(m for m in sys.modules "
            "if m.startswith('zoo'))))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, check=True).stdout.split()
    assert "zoo.registry" in loaded and "zoo.models.detector" in loaded
    heavy = [m for m in loaded if m.split(".")[1:2] and m.split(".")[1] in
             ("training", "datasets", "evaluation", "reference")]
    assert heavy == []
