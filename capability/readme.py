"""Rewrites the README's generated blocks: `python -m capability.readme`.

The support matrix and the export `_since` note come from the default vendor's mapping
declarations (`with_matrix` takes another vendor's name), the settings table from the
settings class (facade/settings.py). The blocks between their markers are never edited by
hand; tests/test_readme.py fails when one is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from capability.statement import export_since_note, support_matrix
from facade.settings import settings_table
from facade.vendors import DEFAULT_VENDOR, vendor

START = "<!-- support-matrix:start -->"
END = "<!-- support-matrix:end -->"
SINCE_START = "<!-- export-since:start -->"
SINCE_END = "<!-- export-since:end -->"
SETTINGS_START = "<!-- settings:start -->"
SETTINGS_END = "<!-- settings:end -->"


def generated_block(readme: str, start: str, end: str) -> str:
    """The text between two markers, as the tests compare it."""
    return readme.split(start, 1)[1].split(end, 1)[0].strip()


def _with_block(readme: str, start: str, end: str, content: str) -> str:
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{content}\n{end}{tail}"


def with_matrix(readme: str, vendor_name: str | None = None) -> str:
    """The support matrix and export `_since` note of `vendor_name` (the README's: the
    default vendor's)."""
    registry = vendor(vendor_name or DEFAULT_VENDOR).registry()
    readme = _with_block(readme, START, END, support_matrix(registry))
    return _with_block(readme, SINCE_START, SINCE_END, export_since_note(registry))


def with_settings(readme: str) -> str:
    return _with_block(readme, SETTINGS_START, SETTINGS_END, settings_table())


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("README.md")
    path.write_text(with_settings(with_matrix(path.read_text())))
    print(f"updated the generated blocks (support matrix, export _since, settings) in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
