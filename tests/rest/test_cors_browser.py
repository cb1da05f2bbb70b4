"""CORS in a real browser: a single-page app on another origin (tests/browser.py) reads
facade's discovery, runs a SMART standalone launch with PKCE, exchanges the code with fetch()
and calls the FHIR API with the token, all from page JavaScript, as patient apps do. When
FACADE_CORS_ORIGINS names other origins, the same page's calls are refused by the browser.
Needs Chromium at /usr/bin/chromium (the test FAILS without it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from facade.runtime import Runtime
from tests.browser import Browser, FacadeServer, RedirectCatcher, log_in_and_consent
from tests.tokens import token

PASSWORD = "a long browser password"
SCOPE = "launch/patient openid fhirUser patient/*.rs"

#: The app: no code in its URL → discovery and a redirect to authorize (PKCE, state in
#: sessionStorage); with a code → token exchange, a read and a search, with the token.
SPA = """<!doctype html><title>single-page app</title><script>
const FHIR = %(fhir)s, CLIENT = %(client)s, SCOPE = %(scope)s;
const REDIRECT = location.origin + location.pathname;
const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
async function app() {
  const config = await (await fetch(FHIR + "/.well-known/smart-configuration")).json();
  const query = new URLSearchParams(location.search);
  if (!query.has("code")) {
    const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
    const state = b64url(crypto.getRandomValues(new Uint8Array(8)));
    sessionStorage.setItem("pkce", JSON.stringify({verifier, state}));
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
    location.href = config.authorization_endpoint + "?" + new URLSearchParams({
      response_type: "code", client_id: CLIENT, redirect_uri: REDIRECT, scope: SCOPE,
      state, aud: FHIR, code_challenge: b64url(digest), code_challenge_method: "S256"});
    return;
  }
  const {verifier, state} = JSON.parse(sessionStorage.getItem("pkce"));
  if (query.get("state") !== state) throw new Error("state mismatch");
  const exchanged = await fetch(config.token_endpoint, {method: "POST", body: new URLSearchParams({
    grant_type: "authorization_code", code: query.get("code"), redirect_uri: REDIRECT,
    code_verifier: verifier, client_id: CLIENT})});
  const granted = await exchanged.json();
  const headers = {Authorization: "Bearer " + granted.access_token,
                   Accept: "application/fhir+json"};
  const read = await fetch(FHIR + "/Patient/" + granted.patient, {headers});
  const search = await fetch(FHIR + "/Condition?patient=" + granted.patient, {headers});
  const bundle = await search.json();
  window.appResult = {
    tokenStatus: exchanged.status, patient: granted.patient,
    readStatus: read.status, read: await read.json(), etag: read.headers.get("ETag"),
    searchStatus: search.status, searchType: bundle.resourceType,
    upstreamCalls: search.headers.get("X-Upstream-Calls")};
}
app().catch((e) => { window.appResult = {error: e.name + ": " + e.message}; });
</script>"""

#: The app with a token it already holds: one discovery read and one FHIR read.
HOLDER = """<!doctype html><title>app holding a token</title><script>
const FHIR = %(fhir)s, TOKEN = %(token)s, PATIENT = %(patient)s;
async function attempt(url, options) {
  try { return (await fetch(url, options)).status; } catch (e) { return e.name; }
}
(async () => {
  window.appResult = {
    discovery: await attempt(FHIR + "/.well-known/smart-configuration"),
    read: await attempt(FHIR + "/Patient/" + PATIENT,
                        {headers: {Authorization: "Bearer " + TOKEN}})};
})();
</script>"""


def _result(browser: Browser) -> dict[str, Any]:
    browser.wait_for("window.appResult !== undefined", "the app's result")
    result: dict[str, Any] = json.loads(browser.evaluate("JSON.stringify(window.appResult)"))
    return result


def test_a_browser_app_on_another_origin_launches_and_calls_the_api(
    browser: Browser, tmp_path: Path
) -> None:
    prepared: dict[str, str] = {}
    runtimes: list[Runtime] = []

    def on_ready(runtime: Runtime) -> None:
        assert runtime.authorization is not None and runtime.sandbox is not None
        patient = str(runtime.sandbox.dataset.endpoint("patients")[0]["id"])
        runtime.authorization.users.create("spa-patient", PASSWORD, f"Patient/{patient}")
        made = runtime.authorization.clients.register(
            name="Single-page app", auth_method="none", redirect_uris=[app.url], scope=""
        )
        prepared.update(patient=patient, client_id=made.client.client_id)
        runtimes.append(runtime)

    with RedirectCatcher() as app, FacadeServer(tmp_path / "facade", on_ready) as facade:
        assert app.origin != facade.base
        app.page = SPA % {
            "fhir": json.dumps(f"{facade.base}/fhir"),
            "client": json.dumps(prepared["client_id"]),
            "scope": json.dumps(SCOPE),
        }
        browser.open(app.url)
        log_in_and_consent(browser, "spa-patient", PASSWORD)
        result = _result(browser)

    assert "error" not in result, result
    assert result["tokenStatus"] == 200
    assert result["patient"] == prepared["patient"]
    assert result["readStatus"] == 200
    assert result["read"]["resourceType"] == "Patient"
    assert result["read"]["id"] == prepared["patient"]
    assert result["etag"], "ETag is exposed to the page"
    assert result["searchStatus"] == 200 and result["searchType"] == "Bundle"
    assert result["upstreamCalls"] is not None, "X-Upstream-Calls is exposed to the page"
    reads = runtimes[0].audit.query(client_id=prepared["client_id"])
    assert ("read", prepared["patient"], "success") in {
        (r.interaction, r.patient_id, r.outcome) for r in reads
    }


def test_a_page_on_an_origin_not_configured_is_refused(browser: Browser, tmp_path: Path) -> None:
    prepared: dict[str, str] = {}
    runtimes: list[Runtime] = []

    def on_ready(runtime: Runtime) -> None:
        assert runtime.sandbox is not None
        patient = str(runtime.sandbox.dataset.endpoint("patients")[0]["id"])
        prepared["patient"] = patient
        prepared["token"] = token(
            runtime, "patient/*.rs", patient_id=patient, client_id="held-token-app"
        )
        runtimes.append(runtime)

    with (
        RedirectCatcher() as app,
        FacadeServer(
            tmp_path / "facade", on_ready, cors_origins="https://the-only-app.example"
        ) as facade,
    ):
        app.page = HOLDER % {
            "fhir": json.dumps(f"{facade.base}/fhir"),
            "token": json.dumps(prepared["token"]),
            "patient": json.dumps(prepared["patient"]),
        }
        browser.open(app.url)
        result = _result(browser)

    # fetch() rejects with a TypeError: the browser withholds the answer (discovery) or
    # never sends the request (the read, whose preflight facade refused).
    assert result == {"discovery": "TypeError", "read": "TypeError"}
    assert runtimes[0].audit.query(client_id="held-token-app") == []
