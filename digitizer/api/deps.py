"""Dependencies shared by the routes (``Annotated`` aliases, FastAPI-template style)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from digitizer.api.ratelimit import FailedAuthLimiter
from digitizer.config import Settings
from digitizer.errors import NotAuthenticatedError, ServiceUnavailableError, TooManyFailedAuthError
from digitizer.services.intake import IntakeService
from digitizer.services.keys import Actor, authenticate, authenticate_async, require_role
from storage.asyncdb import UNAVAILABLE, AsyncDatabase
from storage.db import get_sessionmaker, session_scope
from storage.objects import ObjectStore

T = TypeVar("T")


async def get_app_settings(request: Request) -> Settings:
    # async: plain attribute reads run on the event loop, not via the thread pool
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    session = get_sessionmaker(settings.db.url)()
    try:
        yield session
        session.commit()
    except OperationalError as exc:
        session.rollback()
        raise ServiceUnavailableError("the database is unavailable; try again") from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# scope="function": the commit runs before the answer is sent. With the default scope it
# ran after, so a client could get 201/202 for a write whose commit then failed, or that a
# killed API never committed (found by the fault matrix: tests/reliability).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_store(request: Request) -> ObjectStore:
    return request.app.state.store


StoreDep = Annotated[ObjectStore, Depends(get_store)]


async def get_intake(request: Request) -> IntakeService:
    return request.app.state.intake


IntakeDep = Annotated[IntakeService, Depends(get_intake)]


@dataclass(frozen=True, slots=True)
class PresentedKey:
    """The key a request presents (X-API-Key, or Authorization: Bearer), not yet checked,
    and the rate-limit buckets a failed check counts against."""

    key: str | None
    buckets: list[str]
    limiter: FailedAuthLimiter | None

    async def check(self, work: Awaitable[T]) -> T:
        """Await ``work``, which authenticates :attr:`key`: a failed authentication counts
        against the limiter, an unreachable database is a 503."""
        try:
            return await unavailable_as_503(work)
        except NotAuthenticatedError:
            if self.limiter is not None:
                self.limiter.failed(self.buckets)
            raise


_DATABASE_DOWN: tuple[type[BaseException], ...] = (OperationalError, *UNAVAILABLE)


async def unavailable_as_503(work: Awaitable[T]) -> T:
    """Await ``work`` over the async pool; an unreachable database is a 503."""
    try:
        return await work
    except _DATABASE_DOWN as exc:
        raise ServiceUnavailableError("the database is unavailable; try again") from exc


async def get_presented_key(
    request: Request,
    x_api_key: Annotated[str | None, Header(description="Personal or client API key")] = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> PresentedKey:
    """The presented key; repeated failures from one client address, or for one key
    prefix, are refused with 429 for a while (``ratelimit``), before the database is
    asked."""
    key = x_api_key
    if key is None and authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    limiter: FailedAuthLimiter | None = getattr(request.app.state, "auth_limiter", None)
    buckets = FailedAuthLimiter.buckets(request.client.host if request.client else None, key)
    if limiter is not None and (wait := limiter.retry_after(buckets)) is not None:
        raise TooManyFailedAuthError(
            "too many failed authentication attempts; try again later", retry_after=wait
        )
    return PresentedKey(key, buckets, limiter)


async def get_actor(
    request: Request,
    settings: SettingsDep,
    presented: Annotated[PresentedKey, Depends(get_presented_key)],
) -> Actor:
    """The authenticated caller. On PostgreSQL the key is looked up over the async pool
    (no thread hop); on SQLite in a session of its own in the thread pool."""
    db: AsyncDatabase | None = getattr(request.app.state, "async_db", None)
    if db is not None:
        return await presented.check(authenticate_async(db, presented.key))
    return await presented.check(
        run_in_threadpool(_authenticate_in_session, settings.db.url, presented.key)
    )


def _authenticate_in_session(url: str, key: str | None) -> Actor:
    with session_scope(url) as session:
        return authenticate(session, key)


def requires(*roles: str) -> Callable[..., Awaitable[Actor]]:
    """A dependency that admits only ``roles`` (admin always); async, so the check runs on
    the event loop instead of a thread-pool hop."""

    async def dependency(actor: Annotated[Actor, Depends(get_actor)]) -> Actor:
        require_role(actor, roles)
        return actor

    dependency.roles = roles  # type: ignore[attr-defined]  # read by the authorization tests
    return dependency


def key_for(*roles: str) -> Callable[..., Awaitable[PresentedKey]]:
    """A dependency for routes that check the key themselves, in the same database round
    trip as their read (the portal's polling reads): it only declares ``roles`` (for the
    authorization tests) and applies the failed-attempt limit; the route must
    authenticate with :meth:`PresentedKey.check` and call ``require_role`` with the same
    roles before it answers."""

    async def dependency(
        presented: Annotated[PresentedKey, Depends(get_presented_key)],
    ) -> PresentedKey:
        return presented

    dependency.roles = roles  # type: ignore[attr-defined]  # read by the authorization tests
    return dependency


#: A stated purpose for reading another office's records (``access.PURPOSE_POLICY``).
Purpose = Annotated[
    str | None,
    Header(
        alias="X-Purpose",
        max_length=50,
        description="Why another office's record is read (inspection, complaint, legal_request, "
        "inter_office, verification, support); allowed per role, and audited",
    ),
]

#: Staff who digitize and watch documents.
Clerk = Annotated[Actor, Depends(requires("clerk", "approver"))]

#: Staff who approve documents and issue signed e-copies.
Approver = Annotated[Actor, Depends(requires("approver"))]
