"""The portal's polling reads are served by lean routes in front of FastAPI's router:
the same endpoints, the same answers, the same documentation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from digitizer.api import lean
from digitizer.api.app import create_app
from digitizer.api.routes import portal as portal_routes
from digitizer.config import Settings
from fixtures.idp import TestIdentityProvider
from tests.digitizer import vault_env
from tests.digitizer.vault_env import PID, api, issue, key, processed_document

env, idp, vault_settings = vault_env.env, vault_env.idp, vault_env.vault_settings  # fixtures

DOCS = "/v1/portal/citizens/{ref}/documents"


def _without_lean_routes(settings: Settings) -> TestClient:
    app = create_app(settings)
    app.router.routes[:] = [r for r in app.router.routes if r not in portal_routes.LEAN_ROUTES]
    return TestClient(app, raise_server_exceptions=False)


def _answer(response: httpx.Response) -> tuple[Any, ...]:
    headers = {k: v for k, v in response.headers.items() if k not in ("x-request-id", "date")}
    body = response.json() if response.content else None
    if isinstance(body, dict):
        body.pop("instance", None)  # carries the request id
        if body.get("download_url"):  # presigned links differ by their signing time
            body["download_url"] = body["download_url"].split("?")[0]
            body.pop("link_expires_at")
    return response.status_code, headers, body


@pytest.mark.smoke
def test_lean_and_routed_answers_are_the_same(
    vault_settings: Settings, idp: TestIdentityProvider
) -> None:
    """GIVEN the same requests to an app with and without the lean routes THEN status,
    headers and body agree, for answers with data and for each refusal."""
    birth = issue(api(vault_settings, "approver"), processed_document(vault_settings))
    _, portal_key = key(vault_settings, "portal", name="Cổng A")
    lean_app = TestClient(create_app(vault_settings), raise_server_exceptions=False)
    routed = _without_lean_routes(vault_settings)
    granted = lean_app.post(
        "/v1/portal/consents",
        json={"doc_types": ["birth_certificate"], "purpose": "Nhập học", "valid_days": 30},
        headers={"X-API-Key": portal_key, "X-Citizen-Token": idp.token(PID)},
    )
    assert granted.status_code == 201, granted.text
    docs = DOCS.format(ref=granted.json()["citizen_ref"])
    listed = lean_app.get(docs, headers={"X-API-Key": portal_key})
    etag = listed.headers["etag"]
    _, clerk_key = key(vault_settings, "clerk", vault_env.OFFICE)
    cases: list[tuple[str, dict[str, str]]] = [
        (docs, {"X-API-Key": portal_key}),
        (docs, {"Authorization": f"Bearer {portal_key}"}),
        (docs, {"X-API-Key": portal_key, "If-None-Match": etag}),
        (f"{docs}/{birth['id']}", {"X-API-Key": portal_key}),
        (f"{docs}/{'0' * 32}", {"X-API-Key": portal_key}),
        (DOCS.format(ref="f" * 40), {"X-API-Key": portal_key}),
        (docs, {}),
        (docs, {"X-API-Key": portal_key[:-3] + "abc"}),
        (docs, {"X-API-Key": clerk_key}),
    ]
    for path, headers in cases:
        served = lean_app.get(path, headers=headers)
        assert _answer(served) == _answer(routed.get(path, headers=headers)), (path, headers)
    statuses = [lean_app.get(path, headers=headers).status_code for path, headers in cases]
    assert statuses == [200, 200, 304, 200, 404, 404, 401, 401, 403]
    assert lean_app.head(docs, headers={"X-API-Key": portal_key}).status_code == 405


def test_lean_routes_serve_the_reads_and_the_schema_still_documents_them(
    vault_settings: Settings,
) -> None:
    app = create_app(vault_settings)
    first = app.router.routes[: len(portal_routes.LEAN_ROUTES)]
    assert first == portal_routes.LEAN_ROUTES
    scope = {"type": "http", "method": "GET", "path": DOCS.format(ref="abc") + "/def"}
    matched = [route.name for route in first if route.matches(scope)[0].name == "FULL"]
    assert matched == ["lean:fetch_document"]
    schema = app.openapi()["paths"]
    listed = schema["/v1/portal/citizens/{citizen_ref}/documents"]["get"]
    headers = {p["name"].lower() for p in listed["parameters"] if p["in"] == "header"}
    assert {"x-api-key", "if-none-match"} <= headers
    assert "304" in listed["responses"]
    assert "/v1/portal/citizens/{citizen_ref}/documents/{ecopy_id}" in schema


def test_an_endpoint_with_an_unresolvable_parameter_is_refused() -> None:
    async def endpoint(citizen_ref: str, request: Request, purpose: str) -> Any:
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="no lean resolver for purpose"):
        lean.lean_route("/v1/x/{citizen_ref}", endpoint)
