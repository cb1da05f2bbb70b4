"""The README is part of the product: its support matrix and settings table are generated
from, and checked against, the code."""

from __future__ import annotations

from pathlib import Path

from capability import support_matrix
from capability.readme import SETTINGS_END, SETTINGS_START, generated_block
from capability.statement import export_since_note
from facade.settings import setting_names, settings_table
from mappings.drchrono import REGISTRY

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_support_matrix_is_the_one_the_declarations_generate() -> None:
    start = README.index("<!-- support-matrix:start -->") + len("<!-- support-matrix:start -->")
    end = README.index("<!-- support-matrix:end -->")
    assert README[start:end].strip() == support_matrix(REGISTRY), (
        "the README is out of date: run .venv/bin/python -m capability.readme"
    )


def test_export_since_note_is_the_one_the_declarations_generate() -> None:
    start = README.index("<!-- export-since:start -->") + len("<!-- export-since:start -->")
    end = README.index("<!-- export-since:end -->")
    assert README[start:end].strip() == export_since_note(REGISTRY), (
        "the README is out of date: run .venv/bin/python -m capability.readme"
    )


def test_the_settings_table_is_the_one_the_settings_class_generates() -> None:
    assert generated_block(README, SETTINGS_START, SETTINGS_END) == settings_table(), (
        "the README is out of date: run .venv/bin/python -m capability.readme"
    )
    for name in setting_names():
        assert f"| `{name}` |" in README, name


def test_the_two_commands_exist_and_are_executable() -> None:
    root = Path(__file__).resolve().parents[1]
    for script in ("scripts/serve.sh", "scripts/test.sh", ".ci/run"):
        assert f"./{script}" in README or script == ".ci/run"
        path = root / script
        assert path.exists() and path.stat().st_mode & 0o111, script
