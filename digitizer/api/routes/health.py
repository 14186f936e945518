"""Health (public): liveness, readiness, and the problem type pages."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from digitizer.api.deps import SettingsDep, StoreDep
from digitizer.errors import PROBLEM_TYPES, NotFoundError
from digitizer.models import Health
from storage.db import ping
from workers.queues import get_redis

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(settings: SettingsDep, store: StoreDep) -> JSONResponse:
    """Readiness: database, object store and queue reachable."""
    checks: dict[str, str] = {}
    try:
        ping(settings.db.url)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    checks["object_store"] = "ok" if store.ping() else "unavailable"
    try:
        get_redis(settings.redis.url).ping()
        checks["queue"] = "ok"
    except Exception as exc:
        # Uploads still work without Redis (outbox); report it, do not fail readiness.
        checks["queue"] = f"degraded: {type(exc).__name__}"
    ready = checks["database"] == "ok" and checks["object_store"] == "ok"
    body = Health(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/problems/{slug}")
def problem_type(slug: str) -> dict[str, object]:
    """What a problem type means (the ``type`` URIs of error responses point here)."""
    cls = PROBLEM_TYPES.get(slug)
    if cls is None:
        raise NotFoundError("no such problem type")
    return {
        "type": cls.type_uri(),
        "title": cls.title,
        "status": cls.status,
        "description": (cls.__doc__ or cls.title).strip(),
    }
