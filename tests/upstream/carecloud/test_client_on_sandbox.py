"""The CareCloud client against the CareCloud sandbox itself: the connect login with the
sandbox's own user, every page of /patients through the Link header, unpaged encounters,
records by GUID, the C-CDA, /authorization's practice context, and the sandbox's fault plan
(500, 429, expired sessions) answered as the client promises.

The fake in fake_carecloud.py covers what the sandbox cannot be told to do (a vendor that
takes each TOTP code once); both follow the same wire contract.
"""

from __future__ import annotations

import argparse
import copy
import io
import shlex
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from facade.clock import FakeClock
from facade.settings import Settings
from facade.upstream.budget import UpstreamBudget, metered
from facade.upstream.cache import ResponseCache
from facade.upstream.carecloud.client import CareCloudClient, ClientPolicy
from facade.upstream.carecloud.connection import add_connect_arguments, connect, log_in
from facade.upstream.carecloud.credentials import MemoryKeeper
from facade.upstream.carecloud.practice_context import load_practice_context
from facade.upstream.carecloud.sandbox.app import create_sandbox_app
from facade.upstream.carecloud.sandbox.dataset import CareCloudDataset
from facade.upstream.carecloud.sandbox.generator import generate
from facade.upstream.carecloud.sandbox.serve import connect_hint, write_credentials
from facade.upstream.carecloud.sandbox.state import Fault, SandboxState
from facade.upstream.carecloud.session import CareCloudSession

BASE_URL = "http://carecloud.sandbox"
START = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
FAST = ClientPolicy(timeout_seconds=0.05, retries=3, max_wait_seconds=10.0)


@dataclass
class OnSandbox:
    state: SandboxState
    clock: FakeClock
    keeper: MemoryKeeper
    client: CareCloudClient

    def logins(self) -> list[int]:
        return [e.status for e in self.state.request_log if e.endpoint == "authenticate"]


@pytest.fixture(scope="module")
def practice() -> CareCloudDataset:
    return generate(120, 5)  # 120 patients: three pages of 50


@pytest.fixture
async def sandbox(practice: CareCloudDataset) -> AsyncIterator[OnSandbox]:
    clock = FakeClock(START)
    state = SandboxState.create(copy.deepcopy(practice), seed=5, clock=clock.now)
    user = state.default_user
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_sandbox_app(state))
    ) as http:
        credentials = await log_in(
            http, BASE_URL, user.username, user.password, user.totp_secret, clock
        )
        keeper = MemoryKeeper(credentials)
        client = CareCloudClient(
            http,
            CareCloudSession(http, keeper, clock),
            UpstreamBudget(clock, 1000, None),
            ResponseCache(clock),
            clock,
            FAST,
        )
        yield OnSandbox(state, clock, keeper, client)


async def test_every_patient_arrives_through_the_link_header(sandbox: OnSandbox) -> None:
    with metered() as meter:
        patients = await sandbox.client.list_all("patients", {}, reason="test")
    assert len(patients) == len(sandbox.state.dataset.patients) == 120
    assert len({p["id"] for p in patients}) == 120
    assert meter.count == 3  # 50 a page: the fewest calls the API allows


async def test_a_filtered_list_keeps_its_filter_on_every_page(sandbox: OnSandbox) -> None:
    await sandbox.client.list_all("patients", {"status": "A"}, reason="test")
    pages = sandbox.state.api_requests("patients")
    assert all(entry.params.get("status") == "A" for entry in pages)


async def test_encounters_of_a_patient_are_one_call(sandbox: OnSandbox) -> None:
    patient = sandbox.state.dataset.patients[0]["id"]
    with metered() as meter:
        encounters = await sandbox.client.list_all(
            "encounters", {"patient_id": patient}, reason="test"
        )
    assert meter.count == 1
    assert encounters and {e["patient_id"] for e in encounters} == {patient}


async def test_records_by_guid_and_the_ccda(sandbox: OnSandbox) -> None:
    patient = sandbox.state.dataset.patients[3]
    record = await sandbox.client.get_record("patients", patient["id"], reason="test")
    assert record is not None and record["id"] == patient["id"]
    unknown = "00000000-0000-4000-8000-000000000000"
    assert await sandbox.client.get_record("patients", unknown, reason="test") is None
    ccda = await sandbox.client.get_document(f"/patients/{patient['id']}/ccda", reason="test")
    assert ccda is not None and b"ClinicalDocument" in ccda


async def test_practice_context_names_the_business_entity(sandbox: OnSandbox) -> None:
    context = await load_practice_context(sandbox.client, 3600)
    assert context.practice_group_id == sandbox.keeper.credentials.business_entity_id
    assert str(context.timezone) == "America/New_York"


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.THROTTLED])
async def test_a_planned_fault_is_retried_to_success(sandbox: OnSandbox, fault: Fault) -> None:
    sandbox.state.fail_call(1, fault)
    await sandbox.client.get_path("/authorization", reason="test")
    statuses = [e.status for e in sandbox.state.api_requests("authorization")]
    assert statuses == [500 if fault is Fault.SERVER_ERROR else 429, 200]


async def test_an_expired_session_is_renewed_and_the_call_retried(sandbox: OnSandbox) -> None:
    first = sandbox.keeper.credentials.session_token
    sandbox.state.fail_call(1, Fault.EXPIRE_SESSION)
    await sandbox.client.get_path("/authorization", reason="test")
    assert [e.status for e in sandbox.state.api_requests("authorization")] == [401, 200]
    assert sandbox.keeper.credentials.session_token != first
    assert sandbox.logins() == [200, 200]  # connect's login, then the refresh grant


async def test_after_twelve_hours_the_client_logs_in_with_a_fresh_code(
    sandbox: OnSandbox,
) -> None:
    sandbox.clock.advance(13 * 3600)
    await sandbox.client.get_path("/authorization", reason="test")
    # connect's login, the dead refresh token, the new login.
    assert sandbox.logins() == [200, 401, 200]


async def test_a_year_and_a_half_of_appointments_arrives_in_93_day_windows(
    sandbox: OnSandbox,
) -> None:
    start, end = "2025-06-01", "2026-12-31"
    appointments = await sandbox.client.list_all(
        "appointments", {"start_date": start, "end_date": end}, reason="test"
    )
    expected = {
        a["id"]
        for a in sandbox.state.dataset.appointments
        if start <= datetime.fromisoformat(a["start_time"]).date().isoformat() <= end
    }
    assert expected and {a["id"] for a in appointments} == expected
    asked = sandbox.state.api_requests("appointments")
    assert all(entry.status == 200 for entry in asked)
    windows = {(entry.params["start_date"], entry.params["end_date"]) for entry in asked}
    assert len(windows) == 7  # 579 days, 93 at a time


async def test_a_strict_sandbox_refuses_the_spent_code_once_and_takes_the_next(
    sandbox: OnSandbox,
) -> None:
    """With single-use codes, a code another login spent (`facade connect` run again) is
    refused; the client's one retry sends the next step's code, which the step window takes."""
    sandbox.state.single_use_codes = True
    user = sandbox.state.default_user
    transport = httpx.ASGITransport(app=create_sandbox_app(sandbox.state))
    async with httpx.AsyncClient(transport=transport) as other:
        await log_in(other, BASE_URL, user.username, user.password, user.totp_secret, sandbox.clock)
    sandbox.state.expire_all_sessions()
    sandbox.state.refresh_grants.clear()
    await sandbox.client.get_path("/authorization", reason="test")
    # connect, the other connect, the dead refresh token, the spent code, the next step's.
    assert sandbox.logins() == [200, 200, 401, 401, 200]


async def test_the_sandboxs_connect_hint_connects(
    practice: CareCloudDataset, tmp_path: Path
) -> None:
    """`facade sandbox carecloud` prints a connect command and writes its login files; that
    command, word for word, logs in and stores the connection."""
    clock = FakeClock(START)
    state = SandboxState.create(copy.deepcopy(practice), seed=5, clock=clock.now)
    write_credentials(state, tmp_path / "login")
    words = shlex.split(connect_hint(state, BASE_URL, tmp_path / "login"))
    assert words[:3] == ["facade", "connect", "carecloud"]
    parser = argparse.ArgumentParser()
    add_connect_arguments(parser)
    args = parser.parse_args([*words[3:], "--data-dir", str(tmp_path / "data")])
    stdout, stderr = io.StringIO(), io.StringIO()
    code = await connect(
        args,
        Settings(),
        transport=httpx.ASGITransport(app=create_sandbox_app(state)),
        clock=clock,
        stdin=io.StringIO(""),
        stdout=stdout,
        stderr=stderr,
    )
    assert code == 0, stderr.getvalue()
    assert [e.status for e in state.request_log if e.endpoint == "authenticate"] == [200]
    assert (tmp_path / "data" / "facade.db").exists()
