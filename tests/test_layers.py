"""The layers of docs/architecture.md hold: annotator/ imports neither dask nor the packages above
it, and each of its folders imports only the folders below it."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# annotator's folders from the ground up; a folder may import those on its own floor or below
FLOORS = [("core",), ("media", "face", "console"), ("segment", "label"), ("config", "store"),
          ("shard", "datasets", "export", "augment", "serve"), ("composites",)]
FLOOR = {name: i for i, names in enumerate(FLOORS) for name in names}


def _imports(path: Path):
    """Absolute module names `path` imports (relative ones resolved), top level and inside functions."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            yield module
            yield from (f"{module}.{a.name}" for a in node.names)


FILES = sorted(p for p in (REPO / "annotator").rglob("*.py"))


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "annotator" and len(parts) > 1 else None


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_annotator_imports_downwards_only(path):
    names = set(_imports(path))
    assert not {n for n in names if n.split(".")[0] in ("dask", "distributed", "pipelines", "fas_train")}
    own = _room(".".join(path.relative_to(REPO).with_suffix("").parts))
    if own is None or own == "__init__":
        return
    assert own in FLOOR, f"annotator/{own} is on no floor of FLOORS (docs/architecture.md)"
    above = {n for n in names if _room(n) in FLOOR and FLOOR[_room(n)] > FLOOR[own]}
    assert not above, f"{path.relative_to(REPO)} imports from a higher floor: {sorted(above)}"


def test_every_floor_is_a_folder_or_file_of_annotator():
    rooms = {p.stem for p in (REPO / "annotator").iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert rooms - {"__init__"} == set(FLOOR)
