"""The README is part of the product: its support matrix and settings table are generated
from, and checked against, the code, and its walkthroughs (the tour, the SMART standalone
launch, the backend-service key) are run as written against a real server
(tests/readme_shell.py)."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from capability.readme import (
    SETTINGS_END,
    SETTINGS_START,
    generated_block,
    matrix_markers,
    since_markers,
    vendor_blocks,
)
from facade.errors import FacadeError
from facade.settings import setting_names, settings_table
from facade.vendors import DEFAULT_VENDOR, vendor
from tests.browser import Browser, RedirectCatcher, log_in_and_consent
from tests.readme_shell import Scratch, Walkthrough, section, shell_blocks
from tests.vendors import ALL_VENDORS, VENDORS

SMART_WALKTHROUGH = "SMART standalone launch, step by step"

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("vendor_name", ALL_VENDORS)
def test_each_vendors_support_matrix_is_the_one_its_declarations_generate(
    vendor_name: str,
) -> None:
    matrix, _ = vendor_blocks(vendor_name)
    assert generated_block(README, *matrix_markers(vendor_name)) == matrix, (
        "the README is out of date: run .venv/bin/python -m capability.readme"
    )


@pytest.mark.parametrize("vendor_name", ALL_VENDORS)
def test_each_vendors_export_since_note_is_the_one_its_declarations_generate(
    vendor_name: str,
) -> None:
    _, since = vendor_blocks(vendor_name)
    assert generated_block(README, *since_markers(vendor_name)) == since, (
        "the README is out of date: run .venv/bin/python -m capability.readme"
    )


def test_a_vendor_without_a_changed_since_filter_says_since_is_filtered_locally() -> None:
    for name in ALL_VENDORS:
        _, since = vendor_blocks(name)
        local = "facade filters `_since` locally" in since
        assert local == (not vendor(name).wire.since_param), name


def test_the_settings_table_is_the_one_the_settings_class_generates() -> None:
    assert generated_block(README, SETTINGS_START, SETTINGS_END) == settings_table(), (
        "the README is out of date: run .venv/bin/python -m capability.readme"
    )
    for name in setting_names():
        assert f"| `{name}` |" in README, name


def test_every_error_code_facade_emits_is_in_the_errors_table() -> None:
    importlib.import_module("facade.app")  # every route's module, so every error class
    table = section("Errors", README)
    codes = {cls.code for cls in _subclasses(FacadeError)} | {FacadeError.code}
    for code in sorted(codes):
        row = next((line for line in table.splitlines() if f"| `{code}` |" in line), None)
        assert row is not None, f"the README's error table lacks {code}"
    for code, status in (
        ("unauthorized", 401),
        ("forbidden", 403),
        ("rate-limited", 429),
        ("internal-error", 500),
    ):
        assert f"| {status} | `{code}` |" in table


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    return found.union(*(_subclasses(sub) for sub in found))


def test_the_two_commands_exist_and_are_executable() -> None:
    root = Path(__file__).resolve().parents[1]
    for script in ("scripts/serve.sh", "scripts/test.sh", ".ci/run"):
        assert f"./{script}" in README or script == ".ci/run"
        path = root / script
        assert path.exists() and path.stat().st_mode & 0o111, script


# -- the walkthroughs, run as written -------------------------------------------------------


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Scratch]:
    made = Scratch(tmp_path)
    yield made
    made.stop()


@VENDORS
def test_the_tour_runs_as_written_on_any_port(scratch: Scratch, vendor_name: str) -> None:
    """Every vendor answers the tour unchanged apart from the vendor flag (and the vendor's
    name where the server says what it connected to)."""
    tour = Walkthrough.of("A 30-second tour")
    assert tour.server_args == ["--patients", "100", "--seed", "1"]
    assert scratch.port != 8080
    flag = [] if vendor_name == DEFAULT_VENDOR else ["--vendor", vendor_name]
    written, served = vendor(DEFAULT_VENDOR).title, vendor(vendor_name).title
    expected = [line.replace(written, served) for line in tour.expected_output]
    scratch.serve([*tour.server_args, *flag], tuple(expected))

    result = scratch.run(tour.script)

    assert result.returncode == 0, result.stderr + result.stdout
    assert '"Patient"' in result.stdout and '"match"' in result.stdout
    assert "HTTP/1.1 400" in result.stdout and "favourite-colour" in result.stdout
    assert "HTTP/1.1 401" in result.stdout


def test_the_smart_standalone_launch_runs_as_written(scratch: Scratch) -> None:
    walk = Walkthrough.of(SMART_WALKTHROUGH)
    scratch.serve(["--patients", "10"], ("connected to",))

    result = scratch.run(walk.script)

    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    assert "http://localhost:9000/callback?code=" in out
    token = json.loads((scratch.directory / "token.json").read_text())
    accounts = json.loads((scratch.directory / ".facade" / "demo-accounts.json").read_text())
    maria = next(a for a in accounts if a["username"] == "maria.garcia")
    assert f"Patient/{token['patient']}" == maria["fhirUser"]
    assert "patient/*.rs" in token["scope"]
    assert out.rstrip().endswith("403")


def test_the_smart_launch_browser_step_in_chromium(scratch: Scratch, browser: Browser) -> None:
    """Step 3 as a person does it: the printed URL opened in a real (headless) browser, the
    demo patient logged in and Allow pressed; the app's redirect URI receives the code,
    and steps 4 and 5 run with it."""
    steps = shell_blocks(section(SMART_WALKTHROUGH))
    assert len(steps) == 5, "steps 1, 2, 3 (curl), 4 and 5"
    with RedirectCatcher() as app:
        scratch.ports["9000"] = app.url.rsplit(":", 1)[1].split("/")[0]
        scratch.serve(["--patients", "10"], ("connected to",))
        keep = "declare -p FHIR REDIRECT CLIENT_ID TOKEN_URL VERIFIER STATE URL > vars.sh"
        prepared = scratch.run([*steps[0].splitlines(), *steps[1].splitlines(), keep])
        assert prepared.returncode == 0, prepared.stderr
        url = prepared.stdout.strip().splitlines()[-1]
        accounts = json.loads((scratch.directory / ".facade" / "demo-accounts.json").read_text())
        maria = next(a for a in accounts if a["username"] == "maria.garcia")

        browser.open(url)
        log_in_and_consent(
            browser,
            "maria.garcia",
            maria["password"],
            consent_shows="document.body.innerText.includes('Read and search your health records')",
        )
        browser.wait_for("!!document.getElementById('done')", "the app's redirect URI")

    [received] = app.queries
    assert received["state"] == parse_qs(urlsplit(url).query)["state"]
    code = received["code"][0]
    finished = scratch.run(
        ["source vars.sh", f"CODE={code}", *steps[3].splitlines(), *steps[4].splitlines()]
    )
    assert finished.returncode == 0, finished.stderr + finished.stdout
    token = json.loads((scratch.directory / "token.json").read_text())
    assert f"Patient/{token['patient']}" == maria["fhirUser"]
    assert finished.stdout.rstrip().endswith("403")


def test_the_backend_key_walkthrough_runs_as_written(scratch: Scratch) -> None:
    walk = Walkthrough.of("Backend services: a key and a Bulk export, step by step")
    scratch.serve(["--patients", "10"], ("connected to",))

    result = scratch.run(walk.script)

    assert result.returncode == 0, result.stderr + result.stdout
    assert re.search(r"^-rw------- .* backend-key\.json$", result.stdout, re.MULTILINE)
    assert '"alg": "ES384"' in result.stdout
    assert "counts verified" in result.stdout
    files = sorted(p.name for p in (scratch.directory / "nightly").glob("*.ndjson"))
    assert any(name.startswith("Patient") for name in files)
    assert any(name.startswith("Condition") for name in files)
