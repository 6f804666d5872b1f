"""The layering: bench -> backends, bench -> models, nothing else (checked on every import statement, via ast)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# which of our packages each package may import (besides itself)
ALLOWED = {"backends": set(), "models": set(), "bench": {"backends", "models"}}


def imported_packages(path: Path) -> set[str]:
    """The top-level names every `import` / `from ... import` in the file (at any depth) brings in."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_import_against_the_layering(package: str) -> None:
    forbidden = set(ALLOWED) - ALLOWED[package] - {package}
    bad = [f"{p.relative_to(ROOT)} imports {', '.join(sorted(imported_packages(p) & forbidden))}"
           for p in sorted((ROOT / package).rglob("*.py")) if imported_packages(p) & forbidden]
    assert not bad, "\n".join(bad)


def test_the_check_sees_function_level_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from bench.errors import UserError\n    import bench.config\n")
    assert imported_packages(module) == {"bench"}
