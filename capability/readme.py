"""Rewrites the README's generated blocks: `python -m capability.readme`.

Each vendor in the table has its own support matrix and export `_since` note, generated from
its mapping declarations and its wire rules, between markers that carry its name; the
settings table comes from the settings class (facade/settings.py). The blocks between their
markers are never edited by hand; tests/test_readme.py fails when one is out of date.
`python -m capability.readme --print VENDOR` prints one vendor's blocks instead.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from capability.statement import export_since_note, support_matrix
from facade.settings import settings_table
from facade.vendors import vendor, vendor_names

SETTINGS_START = "<!-- settings:start -->"
SETTINGS_END = "<!-- settings:end -->"


def matrix_markers(vendor_name: str) -> tuple[str, str]:
    return (
        f"<!-- support-matrix:{vendor_name}:start -->",
        f"<!-- support-matrix:{vendor_name}:end -->",
    )


def since_markers(vendor_name: str) -> tuple[str, str]:
    return f"<!-- export-since:{vendor_name}:start -->", f"<!-- export-since:{vendor_name}:end -->"


def generated_block(readme: str, start: str, end: str) -> str:
    """The text between two markers, as the tests compare it."""
    return readme.split(start, 1)[1].split(end, 1)[0].strip()


def _with_block(readme: str, start: str, end: str, content: str) -> str:
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{content}\n{end}{tail}"


def vendor_blocks(vendor_name: str) -> tuple[str, str]:
    """Vendor `vendor_name`'s support matrix and export `_since` note."""
    entry = vendor(vendor_name)
    registry = entry.registry()
    return support_matrix(registry), export_since_note(registry, entry.wire)


def with_matrix(readme: str, vendor_name: str) -> str:
    """`readme` with the support matrix and export `_since` note of `vendor_name` rewritten."""
    matrix, since = vendor_blocks(vendor_name)
    readme = _with_block(readme, *matrix_markers(vendor_name), matrix)
    return _with_block(readme, *since_markers(vendor_name), since)


def with_settings(readme: str) -> str:
    return _with_block(readme, SETTINGS_START, SETTINGS_END, settings_table())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m capability.readme")
    parser.add_argument("readme", nargs="?", type=Path, default=Path("README.md"))
    parser.add_argument(
        "--print",
        dest="shown",
        metavar="VENDOR",
        choices=vendor_names(),
        help="print this vendor's support matrix and export _since note; change no file",
    )
    args = parser.parse_args(argv)
    if args.shown:
        print("\n\n".join(vendor_blocks(args.shown)))
        return 0
    readme = with_settings(args.readme.read_text())
    for name in vendor_names():
        readme = with_matrix(readme, name)
    args.readme.write_text(readme)
    print(
        "updated the generated blocks (each vendor's support matrix and export _since, "
        f"settings) in {args.readme}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
