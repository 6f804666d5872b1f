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
    module.write_text("def f():\n    from bench.errors import UserError\n    import bench.config.sweep\n")
    assert imported_packages(module) == {"bench"}


def bench_imports(path: Path) -> set[str]:
    """The bench sub-packages (or top-level modules) a file imports: `bench.run.sweep` -> `run`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
        for mod in mods:
            parts = mod.split(".")
            if parts[0] == "bench" and len(parts) > 1:
                names.add(parts[1])
            elif parts[0] == "bench" and isinstance(node, ast.ImportFrom):
                names.update(a.name for a in node.names)
    return names


READ_SIDE = ("report", "gate", "recommend", "compare")
# inside bench/: who may import what (besides itself and errors). The read side never runs or measures anything.
INSIDE = {**{part: {"records", "stats", "config", *READ_SIDE} for part in READ_SIDE},
          "measure": {"records", "stats", "config"}, "records": {"stats", "config"}, "stats": set(),
          "config": {"measure", "stats"}, "run": {"measure", "records", "stats", "config", *READ_SIDE}}


@pytest.mark.parametrize("part", sorted(INSIDE))
def test_inside_bench_each_part_imports_only_the_parts_below_it(part: str) -> None:
    root = ROOT / "bench"
    files = sorted((root / part).rglob("*.py")) if (root / part).is_dir() else [root / f"{part}.py"]
    allowed = INSIDE[part] | {part, "errors"}
    bad = [f"{p.relative_to(ROOT)} imports bench.{', bench.'.join(sorted(bench_imports(p) - allowed))}"
           for p in files if bench_imports(p) - allowed]
    assert not bad, "\n".join(bad)


def test_bench_top_level_holds_only_the_entry_points_and_the_packages_that_name_their_role():
    top = sorted(p.name for p in (ROOT / "bench").glob("*.py"))
    assert len(top) <= 12, top  # 41 flat modules before the redesign
    names = {p.stem for p in (ROOT / "bench").rglob("*.py")}
    assert not {"record", "records"} <= names  # one name per concept: records/schema.py vs records/rundir.py
