"""The lookup spill: practice lists on disk, found by field, resumable page by page."""

from __future__ import annotations

from pathlib import Path

import pytest

from facade.bulk.spill import LookupSpill, canonical, list_name
from facade.upstream.drchrono.wire import WIRE

APPOINTMENTS = "appointments?verbose=true&since=1970-01-01T00:00:00"


def test_pages_commit_with_their_progress_and_survive_reopening(tmp_path: Path) -> None:
    spill = LookupSpill(tmp_path)
    assert spill.progress("lab_results") is None
    spill.add_page("lab_results", [{"id": 1, "lab_test": 7}, {"id": 2, "lab_test": 7}], "u2")
    assert spill.progress("lab_results") == ("u2", False, 2)
    spill.close()
    reopened = LookupSpill(tmp_path)  # a restarted worker
    reopened.add_page("lab_results", [{"id": 3, "lab_test": "8"}], None)
    assert reopened.progress("lab_results") == (None, True, 3)
    assert [r["id"] for r in reopened.records("lab_results", 1, 5)] == [2, 3]
    assert [r["id"] for r in reopened.find("lab_results", "lab_test", "7")] == [1, 2]
    assert [r["id"] for r in reopened.find("lab_results", "lab_test", 8)] == [3]
    assert reopened.one("lab_results", 3) == {"id": 3, "lab_test": "8"}
    assert reopened.one("lab_results", 4) is None
    assert reopened.find("lab_tests", "id", 1) == []  # lists do not mix


def test_a_page_added_after_a_lookup_is_found(tmp_path: Path) -> None:
    spill = LookupSpill(tmp_path)
    spill.add_page("orders", [{"id": 1, "patient": 5}], "next")
    assert len(spill.find("orders", "patient", 5)) == 1
    spill.add_page("orders", [{"id": 2, "patient": 5}], None)
    assert [r["id"] for r in spill.find("orders", "patient", 5)] == [1, 2]


def test_list_names_ignore_parameter_order_and_page_size() -> None:
    paging = WIRE.paging_params
    same = list_name("appointments", {"since": "1970-01-01T00:00:00", "verbose": "true"})
    assert canonical(APPOINTMENTS, paging) == same
    assert (
        list_name(
            "appointments",
            {"verbose": "true", "page_size": "50", "since": "1970-01-01T00:00:00"},
            paging,
        )
        == same
    )
    assert list_name("lab_tests", {"page_size": "250"}, paging) == "lab_tests"


def test_names_are_one_list_however_written(tmp_path: Path) -> None:
    spill = LookupSpill(tmp_path)
    spill.add_page(APPOINTMENTS, [{"id": "9_1", "patient": 5}], None)
    written = list_name("appointments", {"since": "1970-01-01T00:00:00", "verbose": "true"})
    assert spill.one(written, "9_1") == {"id": "9_1", "patient": 5}


def test_only_plain_field_names_become_index_expressions(tmp_path: Path) -> None:
    spill = LookupSpill(tmp_path)
    spill.add_page("orders", [{"id": 1}], None)
    with pytest.raises(ValueError):
        spill.find("orders", "id') = 1 OR ('1", 1)


def test_the_file_is_owner_only_and_delete_removes_it(tmp_path: Path) -> None:
    spill = LookupSpill(tmp_path)
    spill.add_page("orders", [{"id": 1}], None)
    assert spill.path.stat().st_mode & 0o777 == 0o600
    spill.delete()
    assert list(tmp_path.iterdir()) == []
