"""The package's structure: modules import each other one way (no cycles, imports inside
functions included), docs/DESIGN.md lists every module once and the layers packages keep,
only `innrsic.compute` starts processes, and every test file mirrors a module or is listed in
DESIGN.md's Tests section."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import innrsic

PACKAGE_ROOT = Path(innrsic.__file__).resolve().parent
DESIGN = Path(__file__).resolve().parents[1] / "docs" / "DESIGN.md"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its body (``TYPE_CHECKING`` blocks
    included, as they state a dependency too)."""
    modules = {module_name(p): p for p in PACKAGE_ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target.startswith("innrsic"):
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path that returns to its start, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_graph_is_read():
    graph = import_graph()
    assert "innrsic.cli" in graph and "innrsic.errors" in graph["innrsic.rsic.container"]


def test_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph collapsed to the package's first level (``innrsic.rsic``, ...)."""

    def first(name: str) -> str:
        return ".".join(name.split(".")[:2])

    packages: dict[str, set[str]] = {}
    for module, imported in graph.items():
        packages.setdefault(first(module), set()).update(
            first(other) for other in imported if first(other) != first(module)
        )
    return packages


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_packages_depend_one_way():
    cycle = find_cycle(package_graph(import_graph()))
    assert cycle is None, "packages import each other: " + " -> ".join(cycle or [])


def table_rows(heading: str) -> list[list[str]]:
    """The cells of the table under ``## heading``, header and rule left out."""
    section = DESIGN.read_text(encoding="utf-8").split(f"## {heading}\n", 1)[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def unquote(cell: str) -> str:
    return re.fullmatch(r"`([^`]+)`", cell).group(1)  # type: ignore[union-attr]


def test_every_module_is_listed_once():
    listed = [unquote(row[0]) for row in table_rows("Modules")]
    actual = sorted(
        str(path.relative_to(PACKAGE_ROOT).with_suffix(""))
        for path in PACKAGE_ROOT.rglob("*.py")
    )
    assert sorted(listed) == actual
    assert len(set(listed)) == len(listed)


def test_packages_import_only_lower_layers():
    layers = {f"innrsic.{unquote(row[1])}": int(row[0]) for row in table_rows("Layers")}
    packages = package_graph(import_graph())
    assert set(packages) - {"innrsic"} == set(layers)
    upward = [
        f"{package} (layer {layers[package]}) imports {other} (layer {layers[other]})"
        for package, imported in packages.items() if package in layers
        for other in imported if other in layers and layers[other] >= layers[package]
    ]
    assert not upward, "\n".join(upward)


def test_every_test_file_mirrors_a_module_or_is_listed():
    tests = DESIGN.parents[1] / "tests"
    section = DESIGN.read_text(encoding="utf-8").split("## Tests\n", 1)[1].split("\n## ")[0]
    listed = set(re.findall(r"`([\w/]+\.py)`", section))
    stray = []
    for path in sorted(tests.rglob("test_*.py")):
        rel = path.relative_to(tests)
        folder, name = rel.parent, path.stem.removeprefix("test_")
        package = PACKAGE_ROOT / folder
        mirrors = (
            (package / f"{name}.py").is_file()
            or (folder.parts and name == folder.name and (package / "__init__.py").is_file())
            or folder.parts[:1] == ("benchmarks",)
            or (folder == Path("scripts") and (tests.parent / "scripts" / f"{name}.py").is_file())
        )
        if not mirrors and rel.as_posix() not in listed:
            stray.append(rel.as_posix())
    assert not stray, f"neither a module's tests nor listed in DESIGN.md's Tests: {stray}"


PROCESS_STARTERS = ("multiprocessing", "ProcessPoolExecutor", "LocalCluster")


def process_starters(source: str) -> list[str]:
    """What `source` imports or names that starts worker processes (`PROCESS_STARTERS`, as a
    module, a submodule such as ``torch.multiprocessing`` or a name)."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names += [alias.name for alias in node.names]
            names.append(getattr(node, "module", None) or "")
        elif isinstance(node, ast.Attribute):
            names.append(node.attr)
    return [name for name in names if set(name.split(".")) & set(PROCESS_STARTERS)]


def test_finds_a_planted_process_start():
    planted = "import torch.multiprocessing\nfrom distributed import LocalCluster\nimport os"
    assert process_starters(planted) == ["torch.multiprocessing", "LocalCluster"]
    assert process_starters("import concurrent.futures\nconcurrent.futures.ProcessPoolExecutor")


def test_processes_start_only_in_compute():
    starts = {
        str(path.relative_to(PACKAGE_ROOT)): found
        for path in sorted(PACKAGE_ROOT.rglob("*.py"))
        if path.relative_to(PACKAGE_ROOT).parts[0] != "compute"
        and (found := process_starters(path.read_text(encoding="utf-8")))
    }
    assert not starts, f"work fans out to processes only through innrsic.compute: {starts}"
