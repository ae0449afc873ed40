"""The layers of twofold/ hold: no module imports from a layer above its own, web and cli
never import each other, and no import cycle joins modules of twofold/.

Every module under twofold/ is parsed with ``ast``, not imported, and every import counts:
at the top, inside functions (a cycle hidden in a function body is still a cycle, it only
fails later) and under ``if TYPE_CHECKING:``. A type-only import counts too: the importer
is written against the imported module's names, so the dependency is real even though
nothing runs; where a collaborator's type is needed across layers or both ways, declare a
``typing.Protocol`` in the lower module instead.

An import names the module it imports: ``from twofold.crypto import otp`` depends on
``twofold.crypto.otp``; ``from twofold.store.models import User`` on
``twofold.store.models`` (the package, not the parents it passes through).

Layers, lowest first (docs/architecture.md explains them). A module may import from its
own layer (without a cycle) or from any layer below.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LAYERS: list[tuple[str, list[str]]] = [
    # (name, module patterns); first match wins, "pkg.*" matches pkg and everything under it
    ("building blocks", ["twofold", "twofold.settings", "twofold.errors", "twofold.clock", "twofold.context"]),
    ("crypto", ["twofold.crypto.*"]),
    ("store", ["twofold.store.*"]),
    ("audit and throttle", ["twofold.audit", "twofold.throttle"]),
    # A factor's enrolment uses core services (sessions, security mail, re-authentication),
    # so it sits above core while the factor itself (verification) sits below it.
    ("factor enrolment", ["twofold.factors.*.enrollment", "twofold.factors.*.enrolment"]),
    ("factors", ["twofold.factors.*"]),
    ("core", ["twofold.core.*"]),
    ("wiring", ["twofold.wiring"]),
    ("front ends", ["twofold.web.*", "twofold.cli.*", "twofold.__main__"]),
]
# Rank of each layer above; the list above is in matching order, not rank order.
RANK = {
    "building blocks": 0,
    "crypto": 1,
    "store": 2,
    "audit and throttle": 3,
    "factors": 4,
    "core": 5,
    "factor enrolment": 6,
    "wiring": 7,
    "front ends": 8,
}
# Front ends side by side: neither may import the other.
SEPARATE = [("twofold.web", "twofold.cli")]


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    path: str  # relative to the repository
    line: int
    where: str  # "", " (in a function)", " (TYPE_CHECKING)"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} -> {self.imported}{self.where}"


def _pattern(glob: str) -> re.Pattern[str]:
    body = re.escape(glob.removesuffix(".*")).replace(r"\*", r"[^.]+")
    return re.compile(rf"{body}(\..+)?" if glob.endswith(".*") else body)


_PATTERNS = [(name, [_pattern(g) for g in globs]) for name, globs in LAYERS]


def layer_of(module: str) -> str | None:
    """The name of ``module``'s layer, or None when no layer claims it."""
    for name, patterns in _PATTERNS:
        if any(p.fullmatch(module) for p in patterns):
            return name
    return None


def describe(module: str) -> str:
    layer = layer_of(module)
    return f"{module} [layer {RANK[layer]} {layer}]" if layer else f"{module} [no layer]"


def modules(package_dir: Path) -> dict[str, Path]:
    """Every module of the package at ``package_dir`` by dotted name (``pkg/__init__.py`` is ``pkg``)."""
    found = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, in_function: bool = False, type_checking: bool = False):
    """Yield (import node, in a function?, under TYPE_CHECKING?) for every import below ``node``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, in_function, type_checking
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), in_function, True)
            for stmt in child.orelse:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), in_function, type_checking)
        else:
            function = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            yield from _walk(child, in_function or function, type_checking)


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` is or lies in (``pkg.mod.attr`` -> ``pkg.mod``)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(package_dir: Path) -> list[Import]:
    """Every import between modules of the package at ``package_dir``."""
    known = modules(package_dir)
    package = package_dir.name
    found: dict[tuple[str, str, int], Import] = {}
    for importer, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node, in_function, type_checking in _walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base_parts = importer.split(".")
                    if not is_package:
                        base_parts = base_parts[:-1]
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                # `from pkg import mod` depends on pkg.mod when that is a module, else on pkg.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
            where = " (TYPE_CHECKING)" if type_checking else (" (in a function)" if in_function else "")
            for target in targets:
                if target != package and not target.startswith(package + "."):
                    continue
                imported = _resolve(target, known)
                if imported and imported != importer:
                    relative = str(path.relative_to(package_dir.parent))
                    edge = Import(importer, imported, relative, node.lineno, where)
                    found.setdefault((importer, imported, node.lineno), edge)
    return list(found.values())


def unassigned(package_dir: Path) -> list[str]:
    return [name for name in modules(package_dir) if layer_of(name) is None]


def upward_imports(edges: list[Import]) -> list[str]:
    """One line per import that goes up a layer or across the front ends."""
    problems = []
    for edge in edges:
        low, high = layer_of(edge.importer), layer_of(edge.imported)
        if low is None or high is None:
            continue  # reported by the layer-assignment test
        if RANK[high] > RANK[low]:
            problems.append(f"{edge}: imports upward, {describe(edge.importer)} -> {describe(edge.imported)}")
        for left, right in SEPARATE:
            for a, b in ((left, right), (right, left)):
                if _under(edge.importer, a) and _under(edge.imported, b):
                    problems.append(f"{edge}: {a} must not import {b}")
    return problems


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def cycles(edges: list[Import]) -> list[list[Import]]:
    """One cycle (as its imports, in order) for each group of modules that import each other round."""
    graph: dict[str, dict[str, Import]] = defaultdict(dict)
    for edge in edges:
        graph[edge.importer].setdefault(edge.imported, edge)
    # Tarjan's strongly connected components, iteratively (no recursion limit on big trees).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return [_one_cycle(graph, component) for component in components]


def _one_cycle(graph: dict[str, dict[str, Import]], component: list[str]) -> list[Import]:
    """The shortest way round from the component's first module back to itself, as imports."""
    members = set(component)
    start = component[0]
    previous: dict[str, Import] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child, edge in sorted(graph[node].items()):
                if child not in members:
                    continue
                if child == start:
                    path = [edge]
                    while path[0].importer != start:
                        path.insert(0, previous[path[0].importer])
                    return path
                if child not in previous:
                    previous[child] = edge
                    following.append(child)
        frontier = following
    raise AssertionError(f"no way round {component}")  # pragma: no cover - a component always has one


def _cycle_report(cycle: list[Import]) -> str:
    names = " -> ".join([cycle[0].importer] + [edge.imported for edge in cycle])
    return "cycle " + names + "\n" + "\n".join(f"    {edge}" for edge in cycle)


# -- the rules, on twofold/ -------------------------------------------------------


def test_every_module_of_twofold_has_a_layer():
    missing = unassigned(ROOT / "twofold")
    assert not missing, (
        "modules with no layer (place each in LAYERS in tests/test_architecture.py and in docs/architecture.md):\n"
        + "\n".join(f"  {name}" for name in missing)
    )


def test_no_module_imports_from_a_layer_above_its_own():
    problems = upward_imports(imports(ROOT / "twofold"))
    assert not problems, f"{len(problems)} imports go up a layer or across front ends:\n" + "\n".join(
        f"  {line}" for line in problems
    )


def test_no_import_cycles_between_modules_of_twofold():
    found = cycles(imports(ROOT / "twofold"))
    assert not found, f"{len(found)} import cycles:\n" + "\n".join(f"  {_cycle_report(cycle)}" for cycle in found)


# -- the checker itself, on a tiny made-up package ------------------------------------


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root / "twofold"


def test_the_checker_catches_an_upward_import_a_cycle_and_a_module_without_a_layer(tmp_path):
    package = _package(
        tmp_path,
        {
            "twofold/__init__.py": "",
            "twofold/errors.py": "",
            "twofold/clock.py": "def now():\n    from twofold.web.app import app  # upward, hidden in a function\n",
            "twofold/core/__init__.py": "",
            "twofold/core/a.py": "from twofold.core import b\n",
            "twofold/core/b.py": "def later():\n    from . import a  # the way back, relative and in a function\n",
            "twofold/core/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from twofold.wiring import Services\n",
            "twofold/web/__init__.py": "",
            "twofold/web/app.py": "from twofold.cli import main\nfrom twofold.errors import TwofoldError\napp = None\n",
            "twofold/cli/__init__.py": "",
            "twofold/cli/main.py": "",
            "twofold/wiring.py": "",
            "twofold/newthing.py": "",
        },
    )
    edges = imports(package)
    problems = upward_imports(edges)
    assert problems == [
        "twofold/clock.py:2: twofold.clock -> twofold.web.app (in a function): imports upward, "
        "twofold.clock [layer 0 building blocks] -> twofold.web.app [layer 8 front ends]",
        "twofold/core/c.py:3: twofold.core.c -> twofold.wiring (TYPE_CHECKING): imports upward, "
        "twofold.core.c [layer 5 core] -> twofold.wiring [layer 7 wiring]",
        "twofold/web/app.py:1: twofold.web.app -> twofold.cli.main: twofold.web must not import twofold.cli",
    ]
    [cycle] = cycles(edges)
    assert [str(edge) for edge in cycle] == [
        "twofold/core/a.py:1: twofold.core.a -> twofold.core.b",
        "twofold/core/b.py:2: twofold.core.b -> twofold.core.a (in a function)",
    ]
    assert unassigned(package) == ["twofold.newthing"]


def test_the_checker_passes_a_package_that_keeps_its_layers(tmp_path):
    package = _package(
        tmp_path,
        {
            "twofold/__init__.py": "",
            "twofold/errors.py": "",
            "twofold/crypto/__init__.py": "",
            "twofold/crypto/otp.py": "from twofold.errors import TwofoldError\n",
            "twofold/factors/__init__.py": "",
            "twofold/factors/base.py": "",
            "twofold/factors/totp/__init__.py": "",
            "twofold/factors/totp/factor.py": "from twofold.crypto import otp\nfrom ..base import Factor\n",
            "twofold/factors/totp/enrollment.py": "from twofold.core.sessions import x\nfrom .factor import TotpFactor\n",
            "twofold/core/__init__.py": "",
            "twofold/core/sessions.py": "from twofold.factors.totp.factor import TotpFactor\n",
            "twofold/wiring.py": "import twofold.factors.totp.enrollment\n",
        },
    )
    edges = imports(package)
    assert {(e.importer, e.imported) for e in edges} == {
        ("twofold.crypto.otp", "twofold.errors"),
        ("twofold.factors.totp.factor", "twofold.crypto.otp"),
        ("twofold.factors.totp.factor", "twofold.factors.base"),
        ("twofold.factors.totp.enrollment", "twofold.core.sessions"),
        ("twofold.factors.totp.enrollment", "twofold.factors.totp.factor"),
        ("twofold.core.sessions", "twofold.factors.totp.factor"),
        ("twofold.wiring", "twofold.factors.totp.enrollment"),
    }
    assert upward_imports(edges) == []
    assert cycles(edges) == []
    assert unassigned(package) == []
