"""Rewrites the README's support matrix from the declarations: `python -m capability.readme`.

The README's block between the support-matrix markers is generated, never edited by hand;
tests/test_readme.py fails when it is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from capability.statement import support_matrix
from mappings.drchrono import REGISTRY

START = "<!-- support-matrix:start -->"
END = "<!-- support-matrix:end -->"


def with_matrix(readme: str) -> str:
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{support_matrix(REGISTRY)}\n{END}{tail}"


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("README.md")
    path.write_text(with_matrix(path.read_text()))
    print(f"updated the support matrix in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
