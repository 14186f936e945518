"""Lean dispatch for the hottest routes: the same endpoint functions, called without
FastAPI's router walk and dependency solving.

Every portal polls every citizen it serves, so the portal's list and fetch calls are
most of the API's traffic. Served through FastAPI they spend about 0.4 ms of CPU per
call (a quarter of the API's share, measured with ``bench.vault``) before the endpoint
runs: matching the path against every route of every included router, then solving
the dependency tree (each header and dependency validated one by one). Their
parameters are few and plain (path parameters, a header or two, objects held in
``app.state``), so a Starlette route in front of the router resolves them directly and
calls the endpoint.

The endpoints stay declared on their FastAPI routers: that declaration is what the
OpenAPI schema, the documentation and the authorization tests read, and it remains the
contract. A lean route resolves each parameter by name from :data:`RESOLVERS`; an
endpoint that gains a parameter no resolver knows fails when the app is built, never
silently. Exceptions take the same path as everywhere (the app's problem handlers sit
around the router), and the middlewares (request id, security headers, body limit)
wrap these routes like any other.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digitizer.api.deps import get_presented_key

Resolver = Callable[[Request], Any]


async def _presented(request: Request) -> Any:
    headers = request.headers
    return await get_presented_key(request, headers.get("x-api-key"), headers.get("authorization"))


#: How a lean route gets each endpoint parameter, by name (async resolvers are awaited).
#: ``presented`` is the key as ``deps.key_for`` hands it over; such endpoints check the
#: key and the role themselves.
RESOLVERS: dict[str, Resolver] = {
    "request": lambda request: request,
    "settings": lambda request: request.app.state.settings,
    "store": lambda request: request.app.state.store,
    "presented": _presented,
    "if_none_match": lambda request: request.headers.get("if-none-match"),
}


def lean_route(path: str, endpoint: Callable[..., Awaitable[Response]]) -> Route:
    """A GET route for ``path`` (the endpoint's full path) that calls ``endpoint`` with
    its path parameters and the :data:`RESOLVERS` of its other parameters.

    Raises:
        ValueError: the endpoint has a parameter that is neither in the path nor resolvable.
    """
    names = list(inspect.signature(endpoint).parameters)
    in_path = {name for name in names if "{" + name + "}" in path}
    unknown = [name for name in names if name not in in_path and name not in RESOLVERS]
    if unknown:
        raise ValueError(f"{endpoint.__name__}: no lean resolver for {', '.join(unknown)}")
    resolvers = [(name, RESOLVERS[name]) for name in names if name not in in_path]
    awaited = {name for name, resolve in resolvers if inspect.iscoroutinefunction(resolve)}

    async def serve(request: Request) -> Response:
        arguments: dict[str, Any] = dict(request.path_params)
        for name, resolve in resolvers:
            value = resolve(request)
            arguments[name] = await value if name in awaited else value
        return await endpoint(**arguments)

    route = Route(path, serve, methods=["GET"], name=f"lean:{endpoint.__name__}")
    route.methods = {"GET"}  # as the FastAPI route: no implicit HEAD
    return route


def install(app: FastAPI, routes: list[Route]) -> None:
    """Put ``routes`` in front of the app's router (their paths are served by them)."""
    app.router.routes[0:0] = routes
