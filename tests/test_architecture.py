"""Rules of the package's layout that a reader relies on, checked on the source.

- The library speaks Python: no module outside ``insar_raster/cli/`` names a
  command-line flag in a string (an error, a warning, a log line); errors name the
  Python parameter (``InputError(param=...)``) and the CLI maps it to its flag.
- No library module imports ``insar_raster.cli`` or ``argparse``.
"""

import ast
import re
from pathlib import Path

import pytest

from insar_raster.cli import main
from insar_raster.cli._flags import Flags
from insar_raster.errors import InputError, OutputExistsError

PACKAGE = Path(__file__).resolve().parents[1] / "insar_raster"
LIBRARY = sorted(
    p for p in PACKAGE.rglob("*.py") if "cli" not in p.relative_to(PACKAGE).parts and p.name != "__main__.py"
)
FLAG = re.compile(r"(?<![\w-])--[a-z]")


def _docstrings(tree) -> set:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _flag_strings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = node.values
            for i, part in enumerate(parts):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    dangling = part.value.endswith("--") and i + 1 < len(parts)  # f"--{name}"
                    if FLAG.search(part.value) or dangling:
                        found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if FLAG.search(node.value):
                found.append(f"{path.name}:{node.lineno}: {node.value!r}")
    return found


def test_the_rule_finds_flags(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        'def f(name):\n    """Docs may say --flag."""\n    raise ValueError("--resolution", f"--{name}")\n'
    )
    assert len(_flag_strings(sample)) == 2


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_library_messages_name_no_command_line_flag(path):
    assert _flag_strings(path) == []


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_library_errors_pass_parameters_as_param(path):
    """``InputError("resolution", ...)`` would print a parameter as if it were a file."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "InputError" and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                assert not re.fullmatch(r"[a-z_]+", first.value), (
                    f"{path.name}:{node.lineno}: InputError({first.value!r}, ...): use param={first.value!r}"
                )


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_library_does_not_import_the_cli_or_argparse(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        for name in names:
            assert not name.startswith("insar_raster.cli") and name != "argparse", f"{path.name} imports {name}"


def test_cli_prints_parameters_as_its_flags():
    flags = Flags(
        {"method": "--method", "overwrite": "--overwrite", "resolution": "--resolution", "pretrained": "--model"}
    )
    error = InputError(None, "cannot be tiled", "use method='nearest'", param="resolution")
    assert error.message == "resolution: cannot be tiled (use method='nearest')"
    assert flags.message(error) == "--resolution: cannot be tiled (use --method nearest)"
    assert (
        flags.message(OutputExistsError("out.tif")) == "out.tif: output already exists (pass --overwrite to replace it)"
    )
    # Unknown names and non-assignments stay as they are.
    assert flags.translate("east>=west, proj=utm, window=3") == "east>=west, proj=utm, window=3"


def test_cli_error_names_the_flag(tmp_path, capsys):
    points = tmp_path / "p.csv"
    points.write_text("x,y,20200101,20200113\n0,0,1,2\n10,10,1,2\n")
    code = main(["grid", str(points), "--input-crs", "EPSG:3035", "--crs", "EPSG:4326", "-o", str(tmp_path / "c.nc")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("insar-raster grid: error: --crs: ") and "not a projected CRS" in err[-1]


def _import_graph() -> dict:
    """Module -> the package modules it imports (at top level or inside functions)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        graph[name] = {t for t in targets if t in modules and t not in (name, "insar_raster")}
    return graph


def _cycles(graph: dict) -> list:
    seen, cycles = {}, []

    def visit(node, stack):
        seen[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in seen:
                visit(nxt, stack)
        stack.pop()
        seen[node] = "done"

    for node in sorted(graph):
        if node not in seen:
            visit(node, [])
    return cycles


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    """Not even through imports inside functions: each module can be read after the ones it imports."""
    assert _cycles(_import_graph()) == []


def test_arrows_point_down():
    """The cube and the forecaster do not reach up into the GIS outputs for their grid, and
    nothing below ``forecast`` reads a model file (``insar_raster.info`` is not GIS)."""
    graph = _import_graph()
    assert "insar_raster.gis.raster" not in graph["insar_raster.forecast.forecaster"]
    for module, targets in graph.items():
        if module.startswith(("insar_raster.io", "insar_raster.grid", "insar_raster.gis")):
            assert not any(t.startswith(("insar_raster.forecast", "insar_raster.evaluate")) for t in targets), module


def test_io_imports_only_io():
    """``io`` is the bottom room (points and cubes in and out): it imports nothing from the
    rooms above it, not even inside a function. A format that needs them (GeoTIFF cubes
    and styles: ``gis/write.py``) dispatches from above; the size check it needs is
    ``io/budget.py``."""
    above = tuple(f"insar_raster.{room}" for room in ("grid", "gis", "forecast", "evaluate", "models", "cli"))
    for module, targets in _import_graph().items():
        if module.startswith("insar_raster.io"):
            assert not [t for t in targets if t.startswith(above)], module


def test_readme_layout_names_every_module():
    """README's layout section matches the tree: every module of every room is named on
    its room's lines (``cli/`` is summarised as one module per command)."""
    readme = (PACKAGE.parent / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("```")[1]
    rooms, room = {}, None
    for line in layout.splitlines():
        head = re.match(r"  (\w+)/ ", line)
        if head or re.match(r"  \w+\.py ", line):
            room = head[1] if head else ""
        if room is not None:
            rooms.setdefault(room, "")
            rooms[room] += line
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        if path.name in ("__init__.py", "__main__.py") or parts[0] == "cli":
            continue
        room = parts[0] if len(parts) > 1 else ""
        assert re.search(rf"(?<![\w/]){re.escape(path.name)}", rooms.get(room, "")), f"README layout misses {path}"


def test_architecture_map_names_every_module_and_no_other():
    """docs/architecture.md's module map is the tree: every module (``__init__.py`` of a
    room aside) named under its room, and no module named there that is gone."""
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    section = doc.split("## Modules", 1)[1].split("\n## ", 1)[0]
    named = set()
    for bullet in re.split(r"\n- ", section)[1:]:
        room = re.match(r"`(\w+)/`", bullet)[1]
        prefix = "" if room == "insar_raster" else f"{room}/"
        named |= {prefix + name for name in re.findall(r"`(\w+\.py)`", bullet)}
    tree = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if not (path.name == "__init__.py" and path.parent != PACKAGE / "cli")
    }
    assert tree - named == set(), f"docs/architecture.md misses {sorted(tree - named)}"
    assert named - tree == set(), f"docs/architecture.md names modules that are gone: {sorted(named - tree)}"
