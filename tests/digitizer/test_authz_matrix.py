"""The authorization matrix: every route of the app has one explicit decision in EXPECTED.

The routes come from ``create_app(settings).routes``: a route without a row fails
``test_every_route_has_a_decision``, and so does a row without a route.

HOW TO ADD A ROUTE: add ONE line to EXPECTED (keep the groups; any order works):

    ("METHOD", "/v1/path/{param}"): Rule(ROLES, SCOPE),          # or Rule(PUBLIC)

- ROLES: the roles that pass (``STAFF`` = clerk, approver, admin; admin passes every
  role check, so list it too). Every other role gets 403, no key 401.
- SCOPE: ``None``; ``OFFICE`` when a path parameter names an office's record (document,
  batch, e-copy): another office's answers exactly like a missing id (404), and GET
  routes with an ``X-Purpose`` header open it for an allowed purpose (audited);
  ``OFFICE_LIST`` when the route lists records (another office's never appear);
  ``CITIZEN`` for portal routes: another citizen's record answers like a missing one
  and never appears.
- ``body=``: a valid request body (JSON dict, or ``lambda world: {"files": ...}``) for
  routes that need one to reach the scope check (the role sweep sends none: 401/403
  must come before body validation).
- A new path parameter: say how to fill it in ``World.param`` (own/other/missing).

PAGE ROUTES (``/web/...``, ``digitizer.web``) are decided the same way, but called as a
browser: with a session cookie of the role's key (and the session's ``X-CSRF-Token``,
which every page POST checks) instead of a key. A page without a session answers 303 to
``/web/login`` (where the API answers 401); a role not in the row gets a 403 page.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select

from digitizer.api.app import create_app
from digitizer.config import AuthSettings, Settings
from digitizer.services import websessions
from digitizer.services.keys import authenticate, create_key
from digitizer.services.wiring import citizen_registry
from fixtures.idp import TestIdentityProvider
from storage.db import AuditEvent, BatchItem, ConsentGrant, Document, ECopy, session_scope, utcnow
from tests import samples
from tests.signing.conftest import SigningEnv, env, office_signing

__all__ = ["env"]

PUBLIC = None
OFFICE = "office"
OFFICE_LIST = "office_list"
CITIZEN = "citizen"

ROLES = ("clerk", "approver", "verifier", "portal", "admin")
STAFF = frozenset({"clerk", "approver", "admin"})
APPROVERS = frozenset({"approver", "admin"})
ADMIN = frozenset({"admin"})
PORTAL = frozenset({"portal", "admin"})


class Rule(NamedTuple):
    """The decision for one route."""

    roles: frozenset[str] | None  # None: public
    scope: str | None = None
    body: Any = None


def _upload(world: World) -> dict[str, Any]:
    return {"files": {"file": ("scan.png", samples.png([secrets.token_hex(4)]), "image/png")}}


def _batch(world: World) -> dict[str, Any]:
    png = samples.png([secrets.token_hex(4)])
    return {"files": [("files", ("1.png", png, "image/png"))]}


def _verify(world: World) -> dict[str, Any]:
    return {"files": {"file": ("a.pdf", b"%PDF-1.7 not really", "application/pdf")}}


CONSENT = {"doc_types": ["birth_certificate"], "purpose": "Xét hồ sơ nhập học"}

# fmt: off
EXPECTED: dict[tuple[str, str], Rule] = {
    # -- public ------------------------------------------------------------------------
    ("GET", "/openapi.json"): Rule(PUBLIC),
    ("GET", "/docs"): Rule(PUBLIC),
    ("GET", "/docs/oauth2-redirect"): Rule(PUBLIC),
    ("GET", "/redoc"): Rule(PUBLIC),
    ("GET", "/healthz"): Rule(PUBLIC),
    ("GET", "/readyz"): Rule(PUBLIC),
    ("GET", "/problems/{slug}"): Rule(PUBLIC),
    ("GET", "/v1/verify/{code}"): Rule(PUBLIC),
    # -- documents ---------------------------------------------------------------------
    ("POST", "/v1/documents"): Rule(STAFF, body=_upload),
    ("POST", "/v1/batches"): Rule(STAFF, body=_batch),
    ("GET", "/v1/documents/{document_id}"): Rule(STAFF, OFFICE),
    ("GET", "/v1/batches/{batch_id}"): Rule(STAFF, OFFICE),
    ("POST", "/v1/documents/{document_id}/reprocess"): Rule(STAFF, OFFICE),
    ("POST", "/v1/documents/{document_id}/issue"): Rule(APPROVERS, OFFICE, body=lambda w: {"json": {"office": w.office}}),  # noqa: E501
    ("GET", "/v1/ecopies/{ecopy_id}/download"): Rule(STAFF, OFFICE),
    ("GET", "/v1/documents/{document_id}/searchable.pdf"): Rule(STAFF, OFFICE),
    ("GET", "/v1/documents/{document_id}/text"): Rule(STAFF, OFFICE),
    # -- verification ------------------------------------------------------------------
    ("POST", "/v1/verify"): Rule(STAFF | {"verifier"}, body=_verify),
    # -- audit -------------------------------------------------------------------------
    ("GET", "/v1/audit"): Rule(ADMIN),
    ("GET", "/v1/documents/{document_id}/audit"): Rule(STAFF, OFFICE),
    # -- vault (staff) -----------------------------------------------------------------
    ("GET", "/v1/ecopies/{ecopy_id}"): Rule(STAFF, OFFICE),
    ("POST", "/v1/ecopies/{ecopy_id}/revoke"): Rule(APPROVERS, OFFICE, body={"json": {"reason": "Cấp nhầm"}}),  # noqa: E501
    # The citizen named by their ID token (X-Citizen-Token), present at the counter.
    ("POST", "/v1/citizens/export"): Rule(APPROVERS, body={"json": {"purpose": "Công dân yêu cầu"}}),  # noqa: E501
    # -- portal ------------------------------------------------------------------------
    ("POST", "/v1/portal/consents"): Rule(PORTAL, CITIZEN, body={"json": CONSENT}),
    ("GET", "/v1/portal/consents"): Rule(PORTAL, CITIZEN),
    ("DELETE", "/v1/portal/consents/{grant_id}"): Rule(PORTAL, CITIZEN),
    ("GET", "/v1/portal/citizens/{citizen_ref}/documents"): Rule(PORTAL, CITIZEN),
    ("GET", "/v1/portal/citizens/{citizen_ref}/documents/{ecopy_id}"): Rule(PORTAL, CITIZEN),
    # -- webhooks ----------------------------------------------------------------------
    ("POST", "/v1/subscribers"): Rule(ADMIN),
    ("GET", "/v1/subscribers"): Rule(ADMIN),
    ("POST", "/v1/subscribers/{subscriber_id}/secret"): Rule(ADMIN),
    ("DELETE", "/v1/subscribers/{subscriber_id}"): Rule(ADMIN),
    # -- search ------------------------------------------------------------------------
    ("POST", "/v1/search"): Rule(STAFF, OFFICE_LIST, body={"json": {}}),
    # -- review ------------------------------------------------------------------------
    ("GET", "/v1/review"): Rule(STAFF, OFFICE_LIST),
    ("GET", "/v1/review/{document_id}"): Rule(STAFF, OFFICE),
    ("GET", "/v1/review/{document_id}/pages/{index}.png"): Rule(STAFF, OFFICE),
    ("PUT", "/v1/review/{document_id}"): Rule(STAFF, OFFICE, body={"json": {}}),
    ("POST", "/v1/review/{document_id}/approve"): Rule(STAFF, OFFICE),
    # -- web pages (session cookie; see PAGE ROUTES above) -----------------------------
    ("GET", "/web/login"): Rule(PUBLIC),
    ("POST", "/web/login"): Rule(PUBLIC),
    ("GET", "/web/static/{name}"): Rule(PUBLIC),
    ("GET", "/web/"): Rule(STAFF | {"verifier"}),
    ("POST", "/web/logout"): Rule(STAFF | {"verifier"}),
    ("GET", "/web/verify"): Rule(STAFF | {"verifier"}),
    ("POST", "/web/verify"): Rule(STAFF | {"verifier"}),
    ("GET", "/web/batches/new"): Rule(STAFF),
    ("POST", "/web/batches"): Rule(STAFF),
    ("GET", "/web/batches/{batch_id}"): Rule(STAFF, OFFICE),
    ("GET", "/web/batches/{batch_id}/rows"): Rule(STAFF, OFFICE),
    ("POST", "/web/documents/{document_id}/reprocess"): Rule(STAFF, OFFICE),
    ("GET", "/web/review"): Rule(STAFF, OFFICE_LIST),
    ("GET", "/web/review/{document_id}"): Rule(STAFF, OFFICE),
    ("GET", "/web/review/{document_id}/pages/{index}.png"): Rule(STAFF, OFFICE),
    ("POST", "/web/review/{document_id}"): Rule(STAFF, OFFICE),
    ("GET", "/web/documents/{document_id}"): Rule(STAFF, OFFICE),
    ("GET", "/web/documents/{document_id}/original"): Rule(STAFF, OFFICE),
    ("GET", "/web/documents/{document_id}/searchable.pdf"): Rule(STAFF, OFFICE),
    ("GET", "/web/ecopies/{ecopy_id}/download"): Rule(STAFF, OFFICE),
    ("GET", "/web/search"): Rule(STAFF),
    ("POST", "/web/search"): Rule(STAFF, OFFICE_LIST, body={"data": {}}),
}
# fmt: on

#: Purposes used to read another office's records (must be allowed for the role).
PURPOSE_BY_ROLE = {"approver": "inter_office", "admin": "inspection", "verifier": "verification"}

OFFICE_A = "ubnd-tinh-ninh-binh"
OFFICE_B = "ubnd-tinh-quang-tri"
PID_A = "001203004567"
PID_B = "079198001234"
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


# -- the app's routes ----------------------------------------------------------------------
@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str
    roles: frozenset[str] | None  # from requires(...) in the dependencies; None: none
    headers: frozenset[str]  # header parameters, lower case


def _walk(dep: Any, roles: set[str], headers: set[str]) -> bool:
    """Collect header parameters and ``requires`` roles; True when a role check is found."""
    headers.update(p.alias.lower() for p in dep.header_params)
    gated = False
    for sub in dep.dependencies:
        if hasattr(sub.call, "roles"):
            gated = True
            roles.update(sub.call.roles)
        gated = _walk(sub, roles, headers) or gated
    return gated


def _routes(app: Any) -> list[RouteInfo]:
    found: list[RouteInfo] = []
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        roles: set[str] = set()
        headers: set[str] = set()
        gated = _walk(dependant, roles, headers) if dependant is not None else False
        for method in sorted(route.methods or {"*"}):
            if method in ("HEAD", "OPTIONS"):
                continue
            found.append(
                RouteInfo(
                    method=method,
                    path=route.path or "",
                    roles=frozenset(roles | {"admin"}) if gated else None,
                    headers=frozenset(headers),
                )
            )
    return found


def _order(route: RouteInfo) -> tuple[int, str]:
    # Reads first, then writes, deletions (and signing out) last: a write must not spoil
    # a later check.
    if route.path == "/web/logout":
        return (4, route.path)
    return (
        {"GET": 0, "POST": 1, "PUT": 1, "PATCH": 1, "DELETE": 2}.get(route.method, 3),
        route.path,
    )


@pytest.fixture
def app_settings(settings: Settings, env: SigningEnv) -> Settings:
    """One office with a signing key (A), generous failed-auth limits (many 401s here)."""
    return settings.model_copy(
        update={
            "auth": AuthSettings(max_failures=100_000, window_s=60),
            "signing": office_signing(env, OFFICE_A),
        }
    )


@pytest.mark.smoke
def test_every_route_has_a_decision(app_settings: Settings) -> None:
    routes = {(r.method, r.path): r for r in _routes(create_app(app_settings))}
    missing = sorted(set(routes) - set(EXPECTED))
    stale = sorted(set(EXPECTED) - set(routes))
    assert not missing, f"routes without a row in EXPECTED (add one line each): {missing}"
    assert not stale, f"rows in EXPECTED without a route (remove them): {stale}"
    wrong = []
    for key, route in routes.items():
        expected = EXPECTED[key].roles
        if route.roles != expected:
            wrong.append(f"{key}: declared {sorted(route.roles or [])}, expected {expected}")
    assert not wrong, "declared roles differ from EXPECTED:\n" + "\n".join(wrong)


# -- the world the requests run in ---------------------------------------------------------
@dataclass
class World:
    settings: Settings
    api: TestClient
    office: str = OFFICE_A
    keys: dict[str, str] = field(default_factory=dict)  # role -> key (office A; portal none)
    #: role -> (cookie, CSRF token) of a web session opened with that role's key
    sessions: dict[str, tuple[str, str]] = field(default_factory=dict)
    own: dict[str, str] = field(default_factory=dict)  # param -> value (office A, citizen A)
    other: dict[str, str] = field(default_factory=dict)  # office B, citizen B
    token_a: str = ""
    #: Identifiers of office B and citizen B that must never appear in A's answers.
    foreign: set[str] = field(default_factory=set)
    #: Document ids behind each of the other office's objects (for the audit check).
    other_docs: dict[str, set[str]] = field(default_factory=dict)

    def param(self, name: str, which: str) -> str:
        if name == "slug":
            return "not-found"
        if name == "index":
            return "0"
        if name == "code":
            return self.own["code"]
        if which == "missing" or name not in self.own:
            return secrets.token_hex(16)
        return (self.own if which == "own" else self.other)[name]

    def url(self, path: str, which: str = "own") -> str:
        return _PARAM.sub(lambda m: self.param(m.group(1), which), path)

    def call(
        self,
        route: RouteInfo,
        role: str | None,
        which: str = "own",
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        token: bool = True,
    ) -> Any:  # the test client's response
        sent = {"X-Citizen-Token": self.token_a} if token else {}
        if role is not None and is_page(route):
            cookie, csrf = self.sessions[role]
            sent.update({"Cookie": f"{websessions.COOKIE}={cookie}", "X-CSRF-Token": csrf})
        elif role is not None:
            sent["X-API-Key"] = self.keys[role]
        sent.update(headers or {})
        kwargs = body(self) if callable(body) else dict(body or {})
        return self.api.request(
            route.method,
            self.url(route.path, which),
            headers=sent,
            follow_redirects=False,
            **kwargs,
        )


def is_page(route: RouteInfo) -> bool:
    """A web page: called with a browser session instead of a key."""
    return route.path.startswith("/web/")


def _key(settings: Settings, role: str, office: str | None) -> tuple[str, str]:
    with session_scope(settings.db.url) as session:
        row, secret = create_key(session, name=f"Người dùng {role}", role=role, office=office)
        return row.id, secret


def _build(settings: Settings) -> World:
    api = TestClient(create_app(settings), raise_server_exceptions=False)
    world = World(settings=settings, api=api)
    for role in ROLES:
        world.keys[role] = _key(settings, role, None if role == "portal" else OFFICE_A)[1]
        with session_scope(settings.db.url) as session:
            actor = authenticate(session, world.keys[role])
            cookie, user = websessions.open_session(session, settings, actor)
            world.sessions[role] = (cookie, user.csrf_token)
    portal_a = _key(settings, "portal", None)  # the client the tests call as
    world.keys["portal"] = portal_a[1]
    portal_b = _key(settings, "portal", None)  # another client, trusted by citizen B
    idp = TestIdentityProvider(settings.embedded.home / "idp")
    world.token_a = idp.token(PID_A)
    for label, office, pid, target in (
        ("a", OFFICE_A, PID_A, world.own),
        ("b", OFFICE_B, PID_B, world.other),
    ):
        clerk = _key(settings, "clerk", office)[1]
        headers = {"X-API-Key": clerk}
        doc = api.post(
            "/v1/documents",
            headers=headers,
            data={"citizen_pid": pid},
            files={"file": (f"{label}.png", samples.png([f"Giấy khai sinh {label}"]), "image/png")},
        )
        assert doc.status_code == 202, doc.text
        batch = api.post(
            "/v1/batches",
            headers=headers,
            files=[
                ("files", (f"{label}1.png", samples.png([f"Công văn {label}1"]), "image/png")),
                ("files", (f"{label}2.png", samples.png([f"Công văn {label}2"]), "image/png")),
            ],
        )
        assert batch.status_code == 202, batch.text
        target["document_id"] = doc.json()["documents"][0]["id"]
        target["batch_id"] = batch.json()["batch"]["id"]
        with session_scope(settings.db.url) as session:
            citizen = citizen_registry(settings).get_or_create(session, pid)
            ecopy = ECopy(
                document_id=target["document_id"],
                code=secrets.token_urlsafe(16),
                office_code=office,
                issuer=f"Ủy ban nhân dân {label}",
                doc_type="birth_certificate",
                object_key=f"ecopies/{target['document_id']}/test.pdf",
                sha256=secrets.token_hex(32),
                citizen_id=citizen.id,
            )
            session.add(ecopy)
            grant = ConsentGrant(
                citizen_id=citizen.id,
                client_id=(portal_a if label == "a" else portal_b)[0],
                doc_types=["birth_certificate"],
                purpose="Xét hồ sơ",
                expires_at=utcnow().replace(year=utcnow().year + 1),
            )
            session.add(grant)
            session.flush()
            target.update(
                ecopy_id=ecopy.id, code=ecopy.code, citizen_ref=citizen.id, grant_id=grant.id
            )
            batch_docs = set(
                session.scalars(
                    select(BatchItem.document_id).where(BatchItem.batch_id == target["batch_id"])
                )
            )
            row = session.get(Document, target["document_id"])
            assert row is not None
            # Outputs as the pipeline records them, so that the links are issued.
            row.results = {
                **(row.results or {}),
                "searchable_pdf": f"derived/{row.sha256}/pdf-test/searchable.pdf",
                "text": f"derived/{row.sha256}/ocr-test/text.txt",
            }
            if label == "b":
                # Waiting for review, so that office queues have something to leak.
                for doc_id in {target["document_id"], *batch_docs}:
                    row = session.get(Document, doc_id)
                    assert row is not None
                    row.state = "needs_review"
                world.other_docs = {
                    "document_id": {target["document_id"]},
                    "ecopy_id": {target["document_id"]},
                    "batch_id": batch_docs,
                }
                world.foreign = {
                    target["document_id"],
                    target["batch_id"],
                    ecopy.id,
                    citizen.id,
                    grant.id,
                    *batch_docs,
                }
    return world


@pytest.fixture
def world(app_settings: Settings) -> World:
    return _build(app_settings)


def _app_routes(world: World) -> Iterator[tuple[RouteInfo, Rule]]:
    for route in sorted(_routes(world.api.app), key=_order):
        rule = EXPECTED.get((route.method, route.path))
        if rule is not None:  # rows and routes are compared by test_every_route_has_a_decision
            yield route, rule


def _problem(response: Any) -> tuple[int, Any]:
    """Status and body without ``instance`` (the path, which holds the id asked for)."""
    try:
        body = response.json()
    except ValueError:
        return response.status_code, response.text
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "instance"}
    return response.status_code, body


def _requester(rule: Rule) -> str:
    assert rule.roles is not None
    order = ("portal",) if rule.scope == CITIZEN else ("clerk", "approver", "verifier", "admin")
    return next(role for role in (*order, "admin") if role in rule.roles)


# -- the matrix ----------------------------------------------------------------------------
@pytest.mark.smoke
def test_every_route_answers_every_role_as_decided(world: World) -> None:
    """401 without a key, 403 for a role not in the row, never 401/403 for one in it.

    No body is sent: a 422 for an allowed role still proves that authentication and the
    role check ran, and a 401/403 for the others proves they run before body validation.
    """
    failures: list[str] = []
    for route, rule in _app_routes(world):
        anonymous = world.call(route, None)
        if rule.roles is PUBLIC:
            if anonymous.status_code in (401, 403):
                failures.append(f"{route.method} {route.path}: public, got {anonymous.status_code}")
            continue
        if is_page(route):
            location = anonymous.headers.get("location", "")
            if anonymous.status_code != 303 or not location.startswith("/web/login"):
                failures.append(
                    f"{route.method} {route.path} without session: {anonymous.status_code} "
                    f"{location!r}, expected 303 to /web/login"
                )
        elif anonymous.status_code != 401:
            failures.append(f"{route.method} {route.path} without key: {anonymous.status_code}")
        for role in ROLES:
            status = world.call(route, role).status_code
            if role in rule.roles and status in (401, 403):
                failures.append(f"{route.method} {route.path} as {role}: allowed, got {status}")
            if role not in rule.roles and status != 403:
                failures.append(
                    f"{route.method} {route.path} as {role}: expected 403, got {status}"
                )
    assert not failures, "\n".join(failures)


@pytest.mark.smoke
def test_another_office_is_answered_like_a_missing_record(world: World) -> None:
    """Own office: found; other office: exactly the answer for a missing id; with a purpose
    the role allows (GET routes with X-Purpose): opened, and audited with that purpose."""
    failures: list[str] = []
    for route, rule in _app_routes(world):
        if rule.scope != OFFICE:
            continue
        name = f"{route.method} {route.path}"
        role = _requester(rule)
        other = _problem(world.call(route, role, "other", body=rule.body))
        missing = _problem(world.call(route, role, "missing", body=rule.body))
        if other != missing:
            failures.append(f"{name}: other office {other} differs from missing {missing}")
        purposeful = route.method == "GET" and "x-purpose" in route.headers
        if purposeful:
            failures += _check_purpose(world, route, rule)
        own = _problem(world.call(route, role, "own", body=rule.body))
        if own == missing:
            failures.append(f"{name}: own office answers like a missing id {own}: vacuous check")
    assert not failures, "\n".join(failures)


def _check_purpose(world: World, route: RouteInfo, rule: Rule) -> list[str]:
    name = f"{route.method} {route.path}"
    assert rule.roles is not None
    role = next(r for r in ("approver", "verifier", "admin") if r in rule.roles)
    purpose = PURPOSE_BY_ROLE[role]
    with session_scope(world.settings.db.url) as session:
        before = session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    opened = world.call(route, role, "other", headers={"X-Purpose": purpose})
    own = world.call(route, role, "own")
    problems = []
    if opened.status_code != own.status_code:
        problems.append(
            f"{name} with X-Purpose {purpose}: {opened.status_code}, own {own.status_code}"
        )
    param = next((p for p in _PARAM.findall(route.path) if p in world.other_docs), None)
    with session_scope(world.settings.db.url) as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.seq > (before or 0), AuditEvent.purpose == purpose)
        ).all()
        audited = {e.document_id for e in events}
    if param is None or not world.other_docs[param] <= audited:
        problems.append(f"{name} with X-Purpose {purpose}: no audit event with the purpose")
    # A purpose the role may not state is refused whatever the record (nothing learnt).
    clerk_refused = world.call(route, "clerk", "other", headers={"X-Purpose": purpose})
    if "clerk" in (rule.roles or ()) and clerk_refused.status_code != 403:
        problems.append(f"{name}: a clerk stating a purpose got {clerk_refused.status_code}")
    return problems


@pytest.mark.smoke
def test_office_lists_never_show_another_office(world: World) -> None:
    failures = []
    for route, rule in _app_routes(world):
        if rule.scope != OFFICE_LIST:
            continue
        response = world.call(route, _requester(rule), body=rule.body)
        if response.status_code >= 400:
            failures.append(f"{route.method} {route.path}: {response.status_code} {response.text}")
        leaked = sorted(i for i in world.foreign if i in response.text)
        if leaked:
            failures.append(f"{route.method} {route.path}: shows another office's {leaked}")
    assert not failures, "\n".join(failures)


@pytest.mark.smoke
def test_another_citizen_is_answered_like_a_missing_one(world: World) -> None:
    """Portal routes: another citizen's record answers like a missing one and never shows;
    routes that act for a citizen need the citizen's ID token besides the portal key."""
    failures: list[str] = []
    for route, rule in _app_routes(world):
        if rule.scope != CITIZEN:
            continue
        name = f"{route.method} {route.path}"
        role = _requester(rule)
        if "x-citizen-token" in route.headers:
            alone = world.call(route, role, body=rule.body, token=False)
            if alone.status_code != 401:
                failures.append(f"{name}: a portal key alone got {alone.status_code}")
        missing = None
        if _PARAM.search(route.path):
            other = _problem(world.call(route, role, "other", body=rule.body))
            missing = _problem(world.call(route, role, "missing", body=rule.body))
            if other != missing:
                failures.append(f"{name}: other citizen {other} differs from missing {missing}")
        own = world.call(route, role, "own", body=rule.body)
        if missing is not None and _problem(own) == missing:
            failures.append(f"{name}: own citizen answers like a missing one: vacuous check")
        leaked = sorted(i for i in world.foreign if i in own.text)
        if leaked:
            failures.append(f"{name}: shows another citizen's or office's {leaked}")
    assert not failures, "\n".join(failures)


def test_rows_are_well_formed() -> None:
    for key, rule in EXPECTED.items():
        method, path = key
        assert method in {"GET", "POST", "PUT", "PATCH", "DELETE", "*"}, key
        assert path.startswith("/"), key
        if rule.roles is not None:
            assert rule.roles and rule.roles <= set(ROLES) and "admin" in rule.roles, key
        assert rule.scope in (None, OFFICE, OFFICE_LIST, CITIZEN), key
        assert rule.roles is not None or rule.scope is None, key
