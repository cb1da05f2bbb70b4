"""A standalone patient launch in real headless Chromium, over real HTTP.

facade runs under uvicorn on a loopback port; a tiny in-test app listens on another port
for the redirect (tests/browser.py). Chromium opens the authorize URL, logs in, consents and
lands on the app's redirect_uri; the test then exchanges the code with PKCE. It runs once per
vendor, the patient logging in being the vendor's first demo login (its `demo_accounts`).
Needs Debian's `chromium` package at /usr/bin/chromium: without it this test FAILS.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from facade.core.compartment import CompartmentMapping
from facade.core.registry import MappingRegistry
from facade.runtime import Runtime
from facade.vendors import vendor
from tests.browser import Browser, FacadeServer, RedirectCatcher, log_in_and_consent
from tests.chart import patient_of
from tests.vendors import VENDORS

PASSWORD = "a long browser password"
SCOPE = "launch/patient openid fhirUser offline_access patient/*.rs"


@VENDORS
def test_standalone_patient_launch_in_chromium(
    browser: Browser, tmp_path: Path, vendor_name: str
) -> None:
    entry = vendor(vendor_name)
    prepared: dict[str, str] = {}
    runtimes: list[Runtime] = []

    def on_ready(runtime: Runtime) -> None:
        assert runtime.authorization is not None and runtime.sandbox is not None
        patients = [
            user.removeprefix("Patient/")
            for _, user in entry.sandbox.demo_accounts(runtime.sandbox)
            if user.startswith("Patient/")
        ]
        patient, prepared["other"] = patients[0], patients[1]
        runtime.authorization.users.create("browser-patient", PASSWORD, f"Patient/{patient}")
        made = runtime.authorization.clients.register(
            name="Browser test app",
            auth_method="none",
            redirect_uris=[prepared["redirect_uri"]],
            scope="",
        )
        prepared.update(patient=patient, client_id=made.client.client_id)
        runtimes.append(runtime)

    with RedirectCatcher() as app:
        prepared["redirect_uri"] = app.url
        with FacadeServer(tmp_path / "facade", on_ready, vendor=vendor_name) as facade:
            fhir_base = f"{facade.base}/fhir"
            discovery = httpx.get(f"{fhir_base}/.well-known/smart-configuration").json()
            verifier = f"{secrets.token_hex(18)}-{secrets.token_hex(18)}"
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                .decode()
                .rstrip("=")
            )
            state = secrets.token_hex(8)
            query = urlencode(
                {
                    "response_type": "code",
                    "client_id": prepared["client_id"],
                    "redirect_uri": app.url,
                    "scope": SCOPE,
                    "state": state,
                    "aud": fhir_base,
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                }
            )
            browser.open(f"{discovery['authorization_endpoint']}?{query}")

            log_in_and_consent(
                browser,
                "browser-patient",
                PASSWORD,
                consent_shows="!!document.getElementById('offline-notice')",
            )
            browser.wait_for("!!document.getElementById('done')", "the app's redirect_uri")

            assert len(app.queries) == 1
            received = app.queries[0]
            assert received["state"] == [state] and "error" not in received
            token = httpx.post(
                discovery["token_endpoint"],
                data={
                    "grant_type": "authorization_code",
                    "code": received["code"][0],
                    "redirect_uri": app.url,
                    "code_verifier": verifier,
                    "client_id": prepared["client_id"],
                },
            )
            assert token.status_code == 200, token.text
            assert "no-store" in token.headers["cache-control"]
            body = token.json()
            assert body["token_type"] == "Bearer"
            assert body["patient"] == prepared["patient"]
            assert set(body["scope"].split()) == set(SCOPE.split())
            assert body["access_token"] and body["id_token"] and body["refresh_token"]
            assert_reads_the_whole_chart_and_nothing_else(
                entry.registry(),
                fhir_base,
                body["access_token"],
                prepared["patient"],
                prepared["other"],
            )
            # The audit log holds the launch (authorization, token) and the chart reads.
            records = runtimes[0].audit.query(client_id=prepared["client_id"])
            kinds = {(r.interaction, r.patient_id, r.outcome) for r in records}
            assert ("authorize", prepared["patient"], "success") in kinds
            assert ("token", prepared["patient"], "success") in kinds
            assert ("read", prepared["patient"], "success") in kinds
            assert ("search", prepared["patient"], "success") in kinds
            assert ("read", prepared["patient"], "not-found") in kinds  # the other patient


def assert_reads_the_whole_chart_and_nothing_else(
    registry: MappingRegistry, fhir_base: str, access_token: str, mine: str, other: str
) -> None:
    """The launch's token reads every patient-data type of its patient, and none of another."""
    headers = {"Authorization": f"Bearer {access_token}"}
    with httpx.Client(headers=headers, timeout=30, trust_env=False) as client:
        assert client.get(f"{fhir_base}/Patient/{mine}").status_code == 200
        assert client.get(f"{fhir_base}/Patient/{other}").status_code == 404
        without_data: list[str] = []
        for mapping in registry:
            if not isinstance(mapping, CompartmentMapping):
                continue
            url: str | None = f"{fhir_base}/{mapping.resource_type}?patient={mine}&_count=200"
            found: list[dict[str, Any]] = []
            while url:
                response = client.get(url)
                assert response.status_code == 200, (mapping.resource_type, response.text)
                bundle = response.json()
                found += [e["resource"] for e in bundle.get("entry", [])]
                url = next((k["url"] for k in bundle["link"] if k["relation"] == "next"), None)
            if not found:
                without_data.append(mapping.resource_type)
            for resource in found:
                assert patient_of(resource) == mine, (mapping.resource_type, resource["id"])
            theirs = client.get(f"{fhir_base}/{mapping.resource_type}?patient={other}").json()
            assert not theirs.get("entry"), mapping.resource_type
        assert without_data == [], "the showcase patient's chart spans every clinical type"
