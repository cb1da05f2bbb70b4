"""The generic code names no vendor and speaks no vendor's wire vocabulary.

Everything vendor-specific lives in a vendor's own packages (facade/upstream/<vendor>/,
mappings/<vendor>/) and reaches the generic code through its entry in the vendor table
(facade/vendors.py, the one generic module that names vendors). Comments and docstrings
count too: the generic code says "the vendor". Each vendor declares its wire vocabulary
(query parameters, paths) in its entry; the table tells this test what to look for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pytest

from facade.settings import Settings, SettingsError
from facade.vendors import DEFAULT_VENDOR, VENDORS, UnknownVendor, vendor, vendor_names

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("facade", "capability", "mappings")
TABLE = Path("facade/vendors.py")


def vendor_packages(root: Path) -> set[str]:
    """Vendors by name: the table's, and any package that looks like one (a vendor whose
    entry is not in the table yet still may not be named by the generic code)."""
    found = set(vendor_names())
    upstream = root / "facade" / "upstream"
    found |= {p.parent.name for p in upstream.glob("*/vendor.py")}
    found |= {p.name for p in (root / "mappings").iterdir() if (p / "__init__.py").exists()}
    return found


def generic_files(root: Path, vendors: Iterable[str]) -> list[Path]:
    own = [Path("facade/upstream") / v for v in vendors] + [Path("mappings") / v for v in vendors]
    files = []
    for top in SCANNED:
        for path in sorted((root / top).rglob("*.py")):
            relative = path.relative_to(root)
            if relative == TABLE or any(relative.is_relative_to(o) for o in own):
                continue
            files.append(relative)
    return files


def _word(text: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9_]){re.escape(text)}(?![A-Za-z0-9_])", re.IGNORECASE)


def offences(root: Path, names: Iterable[str], vocabulary: Iterable[str]) -> list[str]:
    """`path:line: word` for every vendor name or wire word in a generic file."""
    names = sorted(set(names))
    patterns = [(n, re.compile(re.escape(n), re.IGNORECASE)) for n in names]
    patterns += [(w, _word(w)) for w in sorted(set(vocabulary))]
    found = []
    for relative in generic_files(root, names):
        lines = (root / relative).read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            for word, pattern in patterns:
                if pattern.search(line):
                    found.append(f"{relative}:{number}: {word}")
    return found


def wire_vocabulary() -> set[str]:
    return {word for name in vendor_names() for word in vendor(name).wire_vocabulary}


def test_every_vendor_declares_its_wire_vocabulary() -> None:
    for name in vendor_names():
        assert vendor(name).wire_vocabulary, name


def test_generic_code_names_no_vendor_and_uses_no_wire_vocabulary() -> None:
    found = offences(ROOT, vendor_packages(ROOT), wire_vocabulary())
    assert found == [], "\n".join(found)


def test_the_check_sees_a_vendor_name_and_a_wire_word(tmp_path: Path) -> None:
    """The scan itself works: a generic module that names a vendor (in a comment) or spells
    its wire vocabulary is reported; the vendor's own package may."""
    (tmp_path / "facade" / "core").mkdir(parents=True)
    (tmp_path / "facade" / "upstream" / "acme").mkdir(parents=True)
    (tmp_path / "capability").mkdir()
    (tmp_path / "mappings").mkdir()
    (tmp_path / "facade" / "core" / "x.py").write_text(
        'page = {"page_sz": "250"}  # as Acme pages\nsize = default_page_sz\n'
    )
    (tmp_path / "facade" / "upstream" / "acme" / "client.py").write_text('{"page_sz": "1"}\n')
    found = offences(tmp_path, ["acme"], ["page_sz"])
    assert found == ["facade/core/x.py:1: acme", "facade/core/x.py:1: page_sz"]


def test_an_unknown_or_missing_vendor_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UnknownVendor, match="unknown vendor 'nope'"):
        vendor("nope")
    monkeypatch.setitem(VENDORS, "absent", "facade.upstream.absent.vendor:VENDOR")
    with pytest.raises(UnknownVendor, match="listed but its code is missing"):
        vendor("absent")


def test_the_default_vendor_is_the_tables_first() -> None:
    assert vendor_names()[0] == DEFAULT_VENDOR
    assert vendor(DEFAULT_VENDOR).registry().vendor == DEFAULT_VENDOR


def test_facade_vendor_must_name_a_vendor_of_the_table() -> None:
    with pytest.raises(SettingsError, match="FACADE_VENDOR: must be one of"):
        Settings.from_env({"FACADE_VENDOR": "nope"})
    assert Settings.from_env({}).vendor == DEFAULT_VENDOR
