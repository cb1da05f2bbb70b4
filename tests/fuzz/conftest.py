"""Fixtures of the fuzz tests: a fresh facade per test module. Hypothesis keeps its own files
(its constants and unicode caches; the example database is off) in a temporary directory
removed at the end of the run, never in the checkout."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from tests.fuzz.harness import FuzzTarget


def pytest_configure(config: pytest.Config) -> None:
    # Before collection ends: Hypothesis' plugin writes its constants cache then.
    home = tempfile.mkdtemp(prefix="facade-hypothesis-")
    set_hypothesis_home_dir(home)
    config.add_cleanup(lambda: shutil.rmtree(home, ignore_errors=True))


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    built = FuzzTarget(tmp_path_factory.mktemp("fuzz") / "data")
    yield built
    built.close()
