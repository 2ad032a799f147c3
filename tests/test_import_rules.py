"""The packages depend on each other one way only; every module is parsed with `ast`, nothing is imported.

    encoder -> retrieval -> ingest -> search_ui -> ksearch

`encoder` (text -> sparse vectors) needs none of the others; `retrieval` (passages, backends, search) uses the
encoder's feature names and Kiwi; `ingest` (reading, splitting, writing) writes `retrieval` passages into a
`retrieval` backend; the app (`search_ui`) and the CLI (`ksearch`, on top) use all of them. A package may import
itself and the packages to its left, never one to its right (imports inside functions and `TYPE_CHECKING` blocks
count too). Only applications read the KSEARCH_* settings: in the libraries, `retrieval.settings` is imported by
`retrieval.opening` alone, which takes the settings as an argument.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ORDER = ("encoder", "retrieval", "ingest", "search_ui", "ksearch")
LIBRARIES = ("encoder", "retrieval", "ingest")
SETTINGS_MODULE = "retrieval.settings"
SETTINGS_READERS = {"retrieval.opening", "retrieval.settings"}  # `opening` takes a Settings argument


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> list[Path]:
    return sorted(p for package in ORDER for p in (ROOT / package).rglob("*.py"))


def imported_modules(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file (or in `source`, as if it were that file)."""
    tree = ast.parse(path.read_text(encoding="utf-8") if source is None else source, filename=str(path))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
    return found


def violations(path: Path, source: str | None = None) -> list[str]:
    own = module_name(path)
    rank = ORDER.index(own.split(".")[0])
    out, seen = [], set()
    for line, name in imported_modules(path, source):
        top = name.split(".")[0]
        if top in ORDER and ORDER.index(top) > rank and (line, top) not in seen:
            seen.add((line, top))
            out.append(f"{path.relative_to(ROOT)}:{line}: {own} imports {name} ({own.split('.')[0]} comes before {top})")
        if own.split(".")[0] in LIBRARIES and own not in SETTINGS_READERS and (line, SETTINGS_MODULE) not in seen and (
                name == SETTINGS_MODULE or name.startswith(SETTINGS_MODULE + ".")):
            seen.add((line, SETTINGS_MODULE))
            out.append(f"{path.relative_to(ROOT)}:{line}: library module {own} reads the settings ({name}); "
                       f"take the values as arguments")
    return out


def test_every_package_has_modules():
    found = {module_name(p).split(".")[0] for p in modules()}
    assert found == set(ORDER)


def test_imports_go_one_way():
    problems = [v for path in modules() for v in violations(path)]
    assert not problems, "forbidden imports:\n" + "\n".join(problems)


@pytest.mark.parametrize("source, expected", [
    ("from ksearch.cli import app", "imports ksearch.cli"),
    ("def f():\n    from search_ui import app", "search_ui"),
    ("import ingest.worker", "ingest"),
    ("from retrieval.settings import get_settings", "reads the settings"),
    ("from retrieval import settings", "reads the settings"),
])
def test_the_checker_catches_a_forbidden_import(source, expected):
    probe = ROOT / "encoder" / "training" / "probe.py"  # only its name is used: the source is given
    assert any(expected in v for v in violations(probe, source)), violations(probe, source)


def test_allowed_imports_pass_the_checker():
    probe = ROOT / "search_ui" / "probe.py"
    assert violations(probe, "from encoder import SparseEncoder\nfrom ingest import ingest_path\nfrom . import charts") == []
