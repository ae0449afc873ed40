"""Everything twofold/ imports from outside the standard library is a dependency of the package
(``[project].dependencies`` in pyproject.toml), not only of the test or bench extras: the README's
first command installs the package alone, and a module imported from a test-only package there
fails to start (``ModuleNotFoundError`` at ``twofold serve``).

Modules are parsed with ``ast``, not imported, so an import inside a function counts too.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    """A requirement's distribution name, normalised (PEP 503): ``psycopg[binary]>=3.1`` -> ``psycopg``."""
    found = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert found, requirement
    return re.sub(r"[-_.]+", "-", found.group(0)).lower()


def declared(extra: str | None = None) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    listed = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return {_name(requirement) for requirement in listed}


def imported_top_levels(package: Path) -> dict[str, str]:
    """Every top-level module name imported absolutely under ``package``, with one file that does."""
    found: dict[str, str] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(package.parent)))
    return found


def undeclared(package: Path, allowed: set[str]) -> dict[str, str]:
    """Third-party modules imported under ``package`` whose distribution is not in ``allowed``."""
    distributions = packages_distributions()
    missing = {}
    for module, where in imported_top_levels(package).items():
        if module in sys.stdlib_module_names or module == "twofold" or module == "__future__":
            continue
        names = {_name(d) for d in distributions.get(module, [module])}
        if not names & allowed:
            missing[module] = where
    return missing


def test_everything_twofold_imports_is_a_dependency_of_the_package():
    assert undeclared(ROOT / "twofold", declared()) == {}


def test_the_check_finds_a_module_from_the_test_extra(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "sender.py").write_text("def send():\n    import httpx\n    from pytest import fixture\n")
    missing = undeclared(package, declared() - {"httpx"})
    assert set(missing) == {"httpx", "pytest"}
    assert "httpx" in declared("test")  # a test-only package here would be the failure this test prevents
