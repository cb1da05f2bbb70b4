"""The CareCloud package stands alone: no module of it imports another vendor's package."""

from __future__ import annotations

import ast
from pathlib import Path

import facade.upstream.carecloud as carecloud

PACKAGE = Path(carecloud.__file__).parent


def test_no_carecloud_module_imports_drchrono() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {name}" for name in names if "drchrono" in name]
    assert offenders == []
