"""The package list in pyproject.toml must name every code folder.

pyproject maps the repository's root folders into the import package ``kglance`` and lists the
packages explicitly (setuptools cannot discover packages across a package-dir mapping). A
folder missing from the list works in the strict editable install only until the next
reinstall and is silently absent from wheels, so this test keeps the list complete.
"""

from __future__ import annotations

import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _setuptools() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        config = tomllib.load(f)
    section = config["tool"]["setuptools"]
    assert isinstance(section, dict)
    return section


def test_every_code_folder_is_a_listed_package() -> None:
    section = _setuptools()
    mapping = section["package-dir"]
    listed = section["packages"]
    assert isinstance(mapping, dict) and isinstance(listed, list)
    found = set()
    for package, folder in mapping.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base).parts
            found.add(".".join((package, *relative)))
    assert sorted(found - set(listed)) == []
    missing = [p for p in listed if p not in found and p != "kglance.operator"]
    assert missing == [], "listed packages without an __init__.py"
