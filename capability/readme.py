"""Rewrites the README's support matrix and its export `_since` note from the declarations:
`python -m capability.readme`.

The README's blocks between the support-matrix and export-since markers are generated,
never edited by hand;
tests/test_readme.py fails when it is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from capability.statement import export_since_note, support_matrix
from mappings.drchrono import REGISTRY

START = "<!-- support-matrix:start -->"
END = "<!-- support-matrix:end -->"


SINCE_START = "<!-- export-since:start -->"
SINCE_END = "<!-- export-since:end -->"


def with_matrix(readme: str) -> str:
    readme = _replace(readme, START, END, support_matrix(REGISTRY))
    return _replace(readme, SINCE_START, SINCE_END, export_since_note(REGISTRY))


def _replace(readme: str, start: str, end: str, block: str) -> str:
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{block}\n{end}{tail}"


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("README.md")
    path.write_text(with_matrix(path.read_text()))
    print(f"updated the support matrix in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
