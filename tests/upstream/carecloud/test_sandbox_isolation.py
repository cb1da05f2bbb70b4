"""The CareCloud package stands alone: none of its modules imports another vendor's package."""

from __future__ import annotations

import ast
from pathlib import Path

import facade.upstream.carecloud as carecloud

PACKAGE = Path(carecloud.__file__).parent
OTHER_VENDORS = sorted(
    path.name
    for path in PACKAGE.parent.iterdir()
    if path.is_dir() and path != PACKAGE and (path / "__init__.py").exists()
)


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_there_is_another_vendor_to_stay_apart_from() -> None:
    assert OTHER_VENDORS


def test_no_carecloud_module_imports_another_vendor_package() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for name in _imports(path)
        for vendor in OTHER_VENDORS
        if name == f"facade.upstream.{vendor}" or name.startswith(f"facade.upstream.{vendor}.")
    ]
    assert offenders == []
